"""Would an asyncio server be cheaper? The same bare server in both of grpcio's models.

    PYTHONPATH=.:generated python -m bench.aio_probe URL [--rounds 7]

URL is a database the bench data set was seeded into (bench/perf_probe.py seeds one). A bare
server answers Health/Check (the no-op) and GetGroup, running our GetGroup statement (captured
in-process) with psycopg and returning a reply built once: no code of ours around the call. It
runs twice, two processes each on one port (SO_REUSEPORT), as `serve` does:
- sync: grpcio's thread-pool server (12 threads), a psycopg connection per thread;
- aio: `grpc.aio` on one event loop per process, psycopg AsyncConnections (8 per process).
Both are up at once and loaded in alternated rounds (the first is warm-up); medians are printed.
Scratch evidence for BENCHMARKS.md, not a target of `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from issues.v1 import issue_service_pb2 as pb

from bench import load
from bench.serverproc import cpu_seconds, free_port, wait_serving

SERVING = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING).SerializeToString()
MODES = ("sync", "aio")


def capture(url: str, path: Path) -> None:
    """GetGroup's statement and parameters, and a reply, from the core in-process."""
    from server.core import update
    from server.core.commands import Caller
    from server.storage.db import make_database
    from server.storage.models import db
    from server.transport import convert

    make_database(url, workers=1)
    seen: list[tuple[str, Any]] = []
    db.obj.query_hooks.append(lambda event: seen.append((event.sql, event.params)))
    caller = Caller("probe", frozenset({"event:read", "event:write"}), 1)
    view = update.get_group(caller=caller, organization_id=1, group_id=5000)
    ((sql, params),) = seen
    message = pb.GetGroupResponse()
    convert.fill_group(message.group, view)
    reply = message.SerializeToString()
    path.write_bytes(pickle.dumps({"sql": sql, "params": params, "reply": reply, "url": url}))


def _handlers(check: Any, get: Any) -> Any:
    methods = {
        "/grpc.health.v1.Health/Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=health_pb2.HealthCheckRequest.FromString, response_serializer=bytes
        ),
        "/issues.v1.IssueService/GetGroup": grpc.unary_unary_rpc_method_handler(
            get, request_deserializer=pb.GetGroupRequest.FromString, response_serializer=bytes
        ),
    }

    class Handler(grpc.GenericRpcHandler):
        def service(self, details: Any) -> Any:
            return methods.get(details.method)

    return Handler()


def _connect_args(plan: dict[str, Any]) -> dict[str, Any]:
    from server.storage.db import SESSION_OPTIONS, pool_adapters

    return {"autocommit": True, "options": SESSION_OPTIONS, "context": pool_adapters(), "prepare_threshold": 1}


def serve_sync(plan: dict[str, Any], address: str) -> None:
    import psycopg

    local = threading.local()

    def get(request: Any, context: Any) -> bytes:
        if getattr(local, "conn", None) is None:
            local.conn = psycopg.connect(plan["url"], **_connect_args(plan))
        local.conn.execute(plan["sql"], {**plan["params"], "gid": request.group_id}).fetchall()
        return bytes(plan["reply"])

    server = grpc.server(futures.ThreadPoolExecutor(12), handlers=[_handlers(lambda r, c: SERVING, get)],
                         options=[("grpc.so_reuseport", 1)])  # fmt: skip
    server.add_insecure_port(address)
    server.start()
    server.wait_for_termination()


async def serve_aio(plan: dict[str, Any], address: str) -> None:
    import psycopg

    pool: asyncio.Queue[Any] = asyncio.Queue()
    for _ in range(8):
        pool.put_nowait(await psycopg.AsyncConnection.connect(plan["url"], **_connect_args(plan)))

    async def check(request: Any, context: Any) -> bytes:
        return SERVING

    async def get(request: Any, context: Any) -> bytes:
        conn = await pool.get()
        try:
            await (await conn.execute(plan["sql"], {**plan["params"], "gid": request.group_id})).fetchall()
        finally:
            pool.put_nowait(conn)
        return bytes(plan["reply"])

    server = grpc.aio.server(handlers=[_handlers(check, get)], options=[("grpc.so_reuseport", 1)])
    server.add_insecure_port(address)
    await server.start()
    await server.wait_for_termination()


def _start(mode: str, plan: Path) -> tuple[str, list[subprocess.Popen[bytes]]]:
    address = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "bench.aio_probe", "--serve", mode, "--plan", str(plan), address]
    procs = [subprocess.Popen(command) for _ in range(2)]
    wait_serving(address, alive=lambda: all(p.poll() is None for p in procs))
    return address, procs


def compare(url: str, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="issues-aio-") as tmp:
        plan = Path(tmp) / "plan.pickle"
        capture(url, plan)
        servers = {mode: _start(mode, plan) for mode in MODES}
        results: dict[tuple[str, str], list[tuple[float, float]]] = {}
        try:
            for round_ in range(rounds):
                for mode in MODES if round_ % 2 == 0 else MODES[::-1]:
                    address, procs = servers[mode]
                    target = load.Target(address=address, organization_id=1, groups=90_000)
                    for kind in ("noop", "get"):
                        sc = load.Scenario(kind, kind, seconds=2.5, warmup=0.5)
                        measured = load.run_measured(
                            sc, target, server_cpu=lambda p=procs: sum(cpu_seconds(x.pid) for x in p)
                        )
                        cpu = measured.per_call(measured.raw["calls"])["server_cpu_ms_per_call"]
                        results.setdefault((mode, kind), []).append((measured.raw["throughput"], cpu))
        finally:
            for _, procs in servers.values():
                for proc in procs:
                    proc.kill()
            load.close_pools()
    for mode in MODES:
        noop = statistics.median(rps for rps, _ in results[(mode, "noop")][1:])
        for kind in ("noop", "get"):
            rounds_ = results[(mode, kind)][1:]
            rps, cpu = (statistics.median(x[i] for x in rounds_) for i in (0, 1))
            print(f"{mode:4s} {kind:4s} {rps:7.0f} req/s, x its no-op {rps / noop:.3f}, server CPU {cpu:.3f} ms/call")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.aio_probe")
    parser.add_argument("url", help="the database URL, or with --serve the address to serve on")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--serve", choices=MODES)
    parser.add_argument("--plan", type=Path)
    args = parser.parse_args()
    if args.serve is None:
        compare(args.url, args.rounds)
        return
    plan = pickle.loads(args.plan.read_bytes())
    if args.serve == "sync":
        serve_sync(plan, args.url)
    else:
        asyncio.run(serve_aio(plan, args.url))


if __name__ == "__main__":
    main()
