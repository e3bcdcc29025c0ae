"""Closed-loop load from separate client processes (spawned, so no grpc state crosses a fork)."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from bench.serverproc import ACTING_USER, TOKEN


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # noop | get | resolve | assign | bookmark | ignore | bulk
    procs: int = 2
    conc: int = 12  # coroutines per process: 24 in flight, under the server's 32-RPC admission cap
    block: tuple[int, int] = (1, 0)  # (first group id, how many ids) this scenario may touch
    bulk_size: int = 0
    seconds: float = 8.0
    warmup: float = 1.5
    total_calls: int = 0  # when > 0: run exactly this many calls (after warm-up) instead of seconds
    # Channels per client process, each its own TCP connection: the server's workers share the
    # port with SO_REUSEPORT, which balances connections, not calls.
    connections: int = 4


@dataclass(frozen=True)
class Target:
    address: str
    organization_id: int
    groups: int  # ids 1..groups exist


def _slot_ids(sc: Scenario, slot: int) -> list[int]:
    first, count = sc.block
    slots = sc.procs * sc.conc
    per = max(count // slots, 1)
    return list(range(first + slot * per, first + (slot + 1) * per))


def _builder(sc: Scenario, target: Target, slot: int, stubs: Any) -> Callable[[int], Awaitable[Any]]:
    """A function call number k -> the awaitable RPC, for one concurrent slot."""
    from grpc_health.v1 import health_pb2
    from issues.v1 import issue_service_pb2 as pb

    ids = _slot_ids(sc, slot)
    org = target.organization_id
    meta = (("authorization", f"Bearer {TOKEN}"), ("x-acting-user-id", ACTING_USER))

    def md(k: int) -> tuple[tuple[str, str], ...]:
        return (*meta, ("x-request-id", f"{sc.name}.{slot}.{k}"))

    def toggle(k: int, n: int) -> bool:
        return (k // n) % 2 == 0

    def single(k: int, patch_on: Any, patch_off: Any) -> Awaitable[Any]:
        gid = ids[k % len(ids)]
        patch = patch_on if toggle(k, len(ids)) else patch_off
        req = pb.UpdateGroupRequest(organization_id=org, group_id=gid, patch=patch)
        return stubs.issues.UpdateGroup(req, metadata=md(k), timeout=30)

    unresolve = pb.GroupPatch(status=pb.STATUS_UPDATE_UNRESOLVED)
    patches = {
        "resolve": (pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED), unresolve),
        "assign": (
            pb.GroupPatch(assigned_to=pb.AssigneeUpdate(user_id=1)),
            pb.GroupPatch(assigned_to=pb.AssigneeUpdate(unassign=True)),
        ),
        "bookmark": (pb.GroupPatch(is_bookmarked=True), pb.GroupPatch(is_bookmarked=False)),
        "ignore": (
            pb.GroupPatch(
                status=pb.STATUS_UPDATE_IGNORED,
                status_details=pb.StatusDetailsUpdate(ignore_count=100),
            ),
            unresolve,
        ),
    }
    if sc.kind == "noop":
        return lambda k: stubs.health.Check(health_pb2.HealthCheckRequest(), timeout=30)
    if sc.kind == "get":
        return _get(target, slot, stubs, md)
    if sc.kind in patches:
        on, off = patches[sc.kind]
        return lambda k: single(k, on, off)
    if sc.kind == "mix":  # the memory run: reads and the three most common single updates in turn
        kinds = [patches["resolve"], patches["bookmark"], patches["assign"]]
        return _mix(_get(target, slot, stubs, md), single, kinds)
    if sc.kind == "bulk_query":
        return _bulk_query(org, 1 + slot % 10, stubs, md)
    return _bulk(sc, ids, org, stubs, md)


def _mix(
    get: Callable[[int], Awaitable[Any]],
    single: Callable[[int, Any, Any], Awaitable[Any]],
    kinds: list[tuple[Any, Any]],
) -> Callable[[int], Awaitable[Any]]:
    def mix(k: int) -> Awaitable[Any]:
        if k % 4 == 0:
            return get(k)
        on, off = kinds[k % 4 - 1]
        return single(k // 4, on, off)

    return mix


def _get(target: Target, slot: int, stubs: Any, md: Callable[[int], Any]) -> Callable[[int], Awaitable[Any]]:
    """GetGroup of a random group among all of them (a fixed seed per slot)."""
    import random

    from issues.v1 import issue_service_pb2 as pb

    rng = random.Random(slot)
    return lambda k: stubs.issues.GetGroup(
        pb.GetGroupRequest(organization_id=target.organization_id, group_id=rng.randint(1, target.groups)),
        metadata=md(k),
        timeout=30,
    )


def _bulk(
    sc: Scenario, ids: list[int], org: int, stubs: Any, md: Callable[[int], Any]
) -> Callable[[int], Awaitable[Any]]:
    """BulkUpdateGroups by ids: resolve then unresolve each chunk of bulk_size ids in turn."""
    from issues.v1 import issue_service_pb2 as pb

    size = sc.bulk_size
    chunks = [ids[i : i + size] for i in range(0, len(ids) - size + 1, size)]

    def bulk(k: int) -> Awaitable[Any]:
        on = (k // len(chunks)) % 2 == 0
        status = pb.STATUS_UPDATE_RESOLVED if on else pb.STATUS_UPDATE_UNRESOLVED
        req = pb.BulkUpdateGroupsRequest(
            organization_id=org,
            group_ids=chunks[k % len(chunks)],
            patch=pb.GroupPatch(status=status),
        )
        return stubs.issues.BulkUpdateGroups(req, metadata=md(k), timeout=60)

    return bulk


def _bulk_query(org: int, project: int, stubs: Any, md: Callable[[int], Any]) -> Callable[[int], Awaitable[Any]]:
    """BulkUpdateGroups by search: resolve the first page (1000) of the project's unresolved
    issues, then unresolve the first page of its resolved ones, in turn; one project per slot."""
    from issues.v1 import issue_service_pb2 as pb

    def bulk(k: int) -> Awaitable[Any]:
        on = k % 2 == 0
        req = pb.BulkUpdateGroupsRequest(
            organization_id=org,
            project_ids=[project],
            query="is:unresolved" if on else "is:resolved",
            patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED if on else pb.STATUS_UPDATE_UNRESOLVED),
        )
        return stubs.issues.BulkUpdateGroups(req, metadata=md(k), timeout=60)

    return bulk


class _Stubs:
    def __init__(self, channel: Any) -> None:
        from grpc_health.v1 import health_pb2_grpc
        from issues.v1 import issue_service_pb2_grpc

        self.issues = issue_service_pb2_grpc.IssueServiceStub(channel)
        self.health = health_pb2_grpc.HealthStub(channel)


async def _slot(call: Callable[[int], Awaitable[Any]], plan: dict[str, Any], out: dict[str, Any]) -> None:
    import grpc

    k = 0
    while True:
        now = time.perf_counter()
        if now >= plan["end"] or (plan["quota"] and out["calls"] >= plan["quota"]):
            return
        measuring = now >= plan["measure_from"]
        try:
            await call(k)
            code = "OK"
        except grpc.RpcError as exc:
            code = exc.code().name
        if measuring:
            out["latencies"].append((time.perf_counter() - now) * 1000)
            out["codes"][code] += 1
            out["calls"] += 1
        k += 1


async def _process_main(sc: Scenario, target: Target, proc_index: int) -> dict[str, Any]:
    import grpc

    start = time.perf_counter()
    plan = {
        "measure_from": start + sc.warmup,
        "quota": sc.total_calls // sc.procs if sc.total_calls else 0,
        "end": start + sc.warmup + sc.seconds,  # with total_calls: a cap, not the plan
    }
    out: dict[str, Any] = {"latencies": [], "codes": Counter(), "calls": 0}
    options = [("grpc.use_local_subchannel_pool", 1)]  # or equal channels share one connection
    channels = [grpc.aio.insecure_channel(target.address, options=options) for _ in range(sc.connections)]
    try:
        stubs = [_Stubs(channel) for channel in channels]
        slots = [proc_index * sc.conc + c for c in range(sc.conc)]
        calls = [_builder(sc, target, slot, stubs[i % len(stubs)]) for i, slot in enumerate(slots)]
        await asyncio.gather(*(_slot(call, plan, out) for call in calls))
    finally:
        for channel in channels:
            await channel.close()
    elapsed = time.perf_counter() - plan["measure_from"]
    return {
        "latencies": out["latencies"],
        "codes": dict(out["codes"]),
        "calls": out["calls"],
        "elapsed": elapsed,
    }


def _run_process(args: tuple[dict[str, Any], dict[str, Any], int]) -> dict[str, Any]:
    sc_dict, target_dict, index = args
    sc = Scenario(**{**sc_dict, "block": tuple(sc_dict["block"])})
    return asyncio.run(_process_main(sc, Target(**target_dict), index))


_pools: dict[int, Any] = {}


def _pool(procs: int) -> Any:
    """Client processes are spawned once and reused: spawning (and importing grpc) costs ~1 s."""
    if procs not in _pools:
        _pools[procs] = multiprocessing.get_context("spawn").Pool(procs)
    return _pools[procs]


def spawn_clients(procs: int) -> None:
    """Start the client processes now (not inside a measured scenario)."""
    _pool(procs)


def clients_cpu() -> float:
    """CPU seconds used so far by every live client process (they are reused across scenarios)."""
    from bench.serverproc import cpu_seconds

    total = 0.0
    for pool in _pools.values():
        for process in pool._pool:  # multiprocessing keeps its workers there
            try:
                total += cpu_seconds(process.pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
    return total


def close_pools() -> None:
    for pool in _pools.values():
        pool.close()
        pool.join()
    _pools.clear()


@dataclass(frozen=True)
class Measured:
    raw: dict[str, Any]  # what run() returns
    server_cpu: float  # seconds, over the whole run (warm-up included)
    postgres_cpu: float
    clients_cpu: float

    def per_call(self, calls: float) -> dict[str, float]:
        """CPU ms per call of the server, PostgreSQL (every postgres process) and the clients."""
        calls = max(calls, 1)
        return {
            "server_cpu_ms_per_call": round(1000 * self.server_cpu / calls, 3),
            "postgres_cpu_ms_per_call": round(1000 * self.postgres_cpu / calls, 3),
            "client_cpu_ms_per_call": round(1000 * self.clients_cpu / calls, 3),
        }


def run_measured(sc: Scenario, target: Target, *, server_cpu: Callable[[], float], settle: float = 0.0) -> Measured:
    """run(), with the CPU each tenant of the cores spent meanwhile. `settle`: seconds to wait
    before the server's CPU is read (its last access lines still being written)."""
    from bench.serverproc import postgres_cpu

    spawn_clients(sc.procs)  # spawned before the clocks start
    cpu, pg, clients = server_cpu(), postgres_cpu(), clients_cpu()
    raw = run(sc, target)
    pg, clients = postgres_cpu() - pg, clients_cpu() - clients
    time.sleep(settle)
    return Measured(raw, server_cpu() - cpu, pg, clients)


def run(sc: Scenario, target: Target) -> dict[str, Any]:
    """Run a scenario from sc.procs client processes; merged latencies, codes and throughput."""
    tasks = [(asdict(sc), asdict(target), i) for i in range(sc.procs)]
    parts = _pool(sc.procs).map(_run_process, tasks)
    latencies = sorted(x for p in parts for x in p["latencies"])
    codes: Counter[str] = Counter()
    for p in parts:
        codes.update(p["codes"])
    throughput = sum(p["calls"] / p["elapsed"] for p in parts if p["elapsed"] > 0)
    return {
        "latencies": latencies,
        "codes": dict(codes),
        "calls": sum(p["calls"] for p in parts),
        "throughput": throughput,
    }
