"""The floor of one call: the same statements behind a gRPC server with no code of ours in it.

The harness captures, in-process through the core, the statements of one GetGroup and of one
resolve and one unresolve of a template group, grouped by network round trip as the server
sends them, and takes a reply of each from the real server. `python -m bench.bare PLAN ADDRESS`
then serves IssueService/GetGroup and UpdateGroup from as many processes as the real server
(SO_REUSEPORT), with as many threads, by replaying those round trips for the requested group
on bare psycopg connections (one per thread, the server's session settings), through the same
libpq path as the server (server/storage/wire.py: one flush per round trip, prepared statements),
and answering with the captured reply's bytes. No interceptors, access log,
metrics, permission logic, peewee or protobuf building: what a call costs there is what
Python's gRPC server, psycopg and PostgreSQL cost for these statements. A same-run ratio to the
no-op above the bare server's cannot be reached by a server built on that stack, on that
machine, that sends these statements.
"""

from __future__ import annotations

import argparse
import pickle
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import load
from bench.figures import add_ratios, latency_figures
from bench.serverproc import ACTING_USER, TOKEN, cpu_seconds, free_port, wait_serving

RoundTrip = list[tuple[str, Any]]  # statements sent together (psycopg pipeline), with their params


def template_group(target: load.Target) -> int:
    """A group of the data set outside every scenario's block (the last ids are never used)."""
    return target.groups - 9


def substitute(value: Any, template: int, group_id: int) -> Any:
    """A captured parameter with the template group's id replaced by group_id, in JSON cells too."""
    if isinstance(value, int) and not isinstance(value, bool):
        return group_id if value == template else value
    if isinstance(value, str):
        return re.sub(rf"\b{template}\b", str(group_id), value)
    if isinstance(value, list):
        return [substitute(v, template, group_id) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, template, group_id) for k, v in value.items()}
    return value


def capture(url: str, *, organization_id: int, user_id: int, template: int) -> dict[str, list[RoundTrip]]:
    """The round trips of a resolve, an unresolve and a GetGroup of the template group."""
    from server.core import update
    from server.core.commands import Caller, UpdateCommand
    from server.storage.db import make_database
    from server.storage.models import db

    make_database(url, workers=2)
    database = db.obj
    trips: list[RoundTrip] = []
    pipeline, run = database._pipeline, database._run

    def pipelined(statements: list[tuple[str, Any]]) -> Any:
        trips.append(list(statements))
        return pipeline(statements)

    def alone(sql: str, params: Any) -> Any:
        trips.append([(sql, params)])
        return run(sql, params)

    caller = Caller("bare", frozenset({"event:read", "event:write"}), user_id)
    captured: dict[str, list[RoundTrip]] = {}
    database._pipeline, database._run = pipelined, alone  # this instance only, for this capture
    try:
        for status in ("resolved", "unresolved", "resolved", "unresolved"):  # the first pair warms up
            trips.clear()
            update.update_group(caller=caller, organization_id=organization_id, group_id=template,
                                command=UpdateCommand(status=status))  # fmt: skip
            captured[status] = list(trips)
        trips.clear()
        update.get_group(caller=caller, organization_id=organization_id, group_id=template)
        captured["get"] = list(trips)
    finally:
        del database._pipeline, database._run
        database.close_all()
    return captured


def replies(address: str, *, organization_id: int, template: int) -> dict[str, bytes]:
    """The real server's replies for the template group (resolve, unresolve, GetGroup)."""
    import grpc
    from issues.v1 import issue_service_pb2 as pb
    from issues.v1 import issue_service_pb2_grpc

    metadata = (("authorization", f"Bearer {TOKEN}"), ("x-acting-user-id", ACTING_USER))
    out: dict[str, bytes] = {}
    with grpc.insecure_channel(address) as channel:
        stub = issue_service_pb2_grpc.IssueServiceStub(channel)
        for name, status in (("resolved", pb.STATUS_UPDATE_RESOLVED), ("unresolved", pb.STATUS_UPDATE_UNRESOLVED)):
            req = pb.UpdateGroupRequest(organization_id=organization_id, group_id=template,
                                        patch=pb.GroupPatch(status=status))  # fmt: skip
            out[name] = stub.UpdateGroup(req, metadata=metadata, timeout=30).SerializeToString()
        get = pb.GetGroupRequest(organization_id=organization_id, group_id=template)
        out["get"] = stub.GetGroup(get, metadata=metadata, timeout=30).SerializeToString()
    return out


def _replay(conn: Any, trips: list[RoundTrip], *, template: int, group_id: int) -> None:
    from server.storage import wire

    for trip in trips:
        statements = [(sql, substitute(params, template, group_id)) for sql, params in trip]
        rows = wire.run(conn, statements, prepare=True)  # the server's own libpq path
        if rows is not None:
            rows[-1].fetchall()
            continue
        if len(statements) == 1:
            cursor = conn.execute(*statements[0])
        else:
            with conn.pipeline():
                cursors = [conn.execute(sql, params) for sql, params in statements]
            cursor = cursors[-1]
        if cursor.description:  # the server reads the last statement's rows of each round trip
            cursor.fetchall()


def check_replay(url: str, trips: dict[str, list[RoundTrip]], *, template: int, group_id: int) -> None:
    """The replayed resolve and unresolve change group_id (not the template) as the server would:
    a floor that wrote nothing, or wrote to the wrong group, would flatter every figure."""
    import psycopg

    from server.storage.db import SESSION_OPTIONS

    read = 'SELECT "status", "version" FROM "group" WHERE "id" = %s'
    with psycopg.connect(url, autocommit=True, options=SESSION_OPTIONS) as conn:
        before = conn.execute(read, [template]).fetchone()
        _, version = conn.execute(read, [group_id]).fetchone() or (None, 0)
        _replay(conn, trips["resolved"], template=template, group_id=group_id)
        resolved = conn.execute(read, [group_id]).fetchone()
        _replay(conn, trips["unresolved"], template=template, group_id=group_id)
        unresolved = conn.execute(read, [group_id]).fetchone()
        after = conn.execute(read, [template]).fetchone()
    if resolved != (1, version + 1) or unresolved != (0, version + 2) or after != before:
        seen = f"{resolved}, {unresolved}, template {before} -> {after}"
        raise RuntimeError(f"bare replay does not do the server's writes: {seen}")


def serve(plan_path: Path, address: str, *, threads: int) -> None:
    """One bare serving process (several share the port)."""
    import grpc
    import psycopg
    from grpc_health.v1 import health, health_pb2_grpc
    from issues.v1 import issue_service_pb2 as pb

    from server.storage.db import SESSION_OPTIONS, pool_adapters

    plan = pickle.loads(plan_path.read_bytes())
    trips, answers, url, template = plan["statements"], plan["replies"], plan["url"], plan["template"]
    local = threading.local()

    def connection() -> Any:
        if getattr(local, "conn", None) is None:  # autocommit: BEGIN and COMMIT were captured
            local.conn = psycopg.connect(url, autocommit=True, options=SESSION_OPTIONS, context=pool_adapters())
        return local.conn

    def update_group(request: Any, context: Any) -> bytes:
        kind = "resolved" if request.patch.status == pb.STATUS_UPDATE_RESOLVED else "unresolved"
        _replay(connection(), trips[kind], template=template, group_id=request.group_id)
        return bytes(answers[kind])

    def get_group(request: Any, context: Any) -> bytes:
        _replay(connection(), trips["get"], template=template, group_id=request.group_id)
        return bytes(answers["get"])

    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
        "UpdateGroup": grpc.unary_unary_rpc_method_handler(
            update_group, request_deserializer=pb.UpdateGroupRequest.FromString, response_serializer=bytes
        ),
        "GetGroup": grpc.unary_unary_rpc_method_handler(
            get_group, request_deserializer=pb.GetGroupRequest.FromString, response_serializer=bytes
        ),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads), options=[("grpc.so_reuseport", 1)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("issues.v1.IssueService", handlers),))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    server.add_insecure_port(address)
    server.start()
    server.wait_for_termination()


@dataclass
class BareServer:
    """`processes` bare serving processes on one free loopback port."""

    plan_path: Path
    processes: int
    threads: int
    port: int = 0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "bench.bare", str(self.plan_path), self.address]
        command += ["--threads", str(self.threads)]
        self.procs = [subprocess.Popen(command) for _ in range(self.processes)]
        wait_serving(self.address, alive=lambda: all(p.poll() is None for p in self.procs))

    def cpu(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=10)


def _scenario(server_cpu: Callable[[], float], sc: load.Scenario, target: load.Target) -> dict[str, Any]:
    measured = load.run_measured(sc, target, server_cpu=server_cpu)
    calls = measured.raw["calls"] * (sc.warmup + sc.seconds) / sc.seconds  # warm-up calls burn CPU too
    return {**latency_figures(measured.raw), **measured.per_call(calls)}


def prepare(*, url: str, server_address: str, target: load.Target, workdir: Path) -> Path:
    """Capture the statements and replies, check the replay, and write the bare server's plan."""
    org, template = target.organization_id, template_group(target)
    plan: dict[str, Any] = {
        "url": url,
        "template": template,
        "replies": replies(server_address, organization_id=org, template=template),
        "statements": capture(url, organization_id=org, user_id=int(ACTING_USER), template=template),
    }
    check_replay(url, plan["statements"], template=template, group_id=template - 1)
    plan_path = workdir / "bare-plan.pickle"
    plan_path.write_bytes(pickle.dumps(plan))
    return plan_path


def measure(*, bare: BareServer, server: Any, target: load.Target, scenarios: list[load.Scenario],
            first_touch: load.Scenario | None = None) -> dict[str, Any]:  # fmt: skip
    """A fresh no-op of ours, then each other scenario on our server (warm: it ran them before)
    and on the bare server, after a short unmeasured run there: both sides have prepared their
    statements on their connections, so neither pays PostgreSQL's planning of first runs.

    `first_touch`, on the bare server only, last: resolves of groups nothing has changed yet, as
    our server's own resolve scenario runs them (its block must be one no scenario touches). Its
    first changes cost PostgreSQL about twice a warm group's (the subscription inserted, the inbox
    row deleted, pages first written since the checkpoint): the floor of the scenario the
    resolve target is measured on."""
    statements = pickle.loads(bare.plan_path.read_bytes())["statements"]
    bare.start()
    try:
        noop, *rest = scenarios
        figures = {"noop": _scenario(server.cpu, noop, target)}  # ours: the ratios' base
        bare_target = load.Target(address=bare.address, organization_id=target.organization_id, groups=target.groups)
        for sc in rest:
            figures[f"{sc.name} (ours, warm)"] = _scenario(server.cpu, sc, target)
            load.run(replace(sc, name=f"{sc.name}-prime", seconds=2.0, warmup=0.5), bare_target)
            figures[f"{sc.name} (bare, warm)"] = _scenario(bare.cpu, sc, bare_target)
        if first_touch is not None:  # no priming run: it would touch the block's groups
            figures[f"{first_touch.name} (bare, first touch)"] = _scenario(bare.cpu, first_touch, bare_target)
    finally:
        bare.stop()
    add_ratios(figures)
    for name, f in figures.items():
        print(f"  {name:34s} {f['throughput_rps']:8.1f} req/s  x no-op {f['ratio_to_noop']}  "
              f"server CPU {f['server_cpu_ms_per_call']} ms  PostgreSQL {f['postgres_cpu_ms_per_call']} ms",
              flush=True)  # fmt: skip
    return {
        "processes": bare.processes,
        "threads": bare.threads,
        "round_trips": {k: len(v) for k, v in statements.items()},
        "statements": {k: sum(len(t) for t in v) for k, v in statements.items()},
        "scenarios": figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare")
    parser.add_argument("plan", type=Path)
    parser.add_argument("address")
    parser.add_argument("--threads", type=int, default=12)
    args = parser.parse_args()
    serve(args.plan, args.address, threads=args.threads)


if __name__ == "__main__":
    main()
