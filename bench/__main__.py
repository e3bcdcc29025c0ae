"""`python -m bench [--quick]`: seed, start the real server per backend, load it, report."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import bare, dataset, floor, load, processes, report
from bench import events as bench_events
from bench.serverproc import ACTING_USER, ServerProcess

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


def scenarios(quick: bool) -> list[load.Scenario]:
    """Each scenario owns a disjoint block of group ids, so none undoes another's work."""
    secs, warm = (1.5, 0.5) if quick else (5.0, 1.5)
    s = 1 if quick else 8  # block scale: quick data has 12k groups, full 100k
    base = {"seconds": secs, "warmup": warm}
    return [
        load.Scenario("noop", "noop", **base),
        load.Scenario("get", "get", **base),
        load.Scenario("update_resolve_toggle", "resolve", block=(1, 512 * s), **base),
        load.Scenario("update_assign_toggle", "assign", block=(1001 * s, 512 * s), **base),
        load.Scenario("update_bookmark_toggle", "bookmark", block=(2001 * s, 512 * s), **base),
        load.Scenario("update_ignore_count_toggle", "ignore", block=(3001 * s, 512 * s), **base),
        load.Scenario("bulk_ids_1", "bulk", bulk_size=1, block=(4001 * s, 512 * s), **base),
        load.Scenario("bulk_ids_100", "bulk", bulk_size=100, conc=2, block=(5001 * s, 1600 * s), **base),
        load.Scenario("bulk_ids_1000", "bulk", bulk_size=1000, conc=1, block=(7001 * s, 4000 * s), **base),
    ]


def query_scenario(quick: bool) -> load.Scenario:
    secs, warm = (1.5, 0.5) if quick else (5.0, 1.5)
    return load.Scenario("bulk_query_1000", "bulk_query", conc=1, seconds=secs, warmup=warm)


def memory_scenario(quick: bool, calls: int, cap_seconds: float) -> load.Scenario:
    first = 11001 if quick else 90_001
    return load.Scenario(
        "memory_mix",
        "mix",
        block=(first, 512),
        total_calls=calls,
        seconds=cap_seconds,
        warmup=0.5 if quick else 2.0,
    )


class Budget:
    """The whole run's time budget: the memory run (the only open-ended part) is capped by it,
    so a slow or busy machine gets a shorter memory run, reported as such, instead of a kill."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def memory_cap(self, backend: str, quick: bool) -> float:
        if quick:
            return 15.0
        if backend == "sqlite":  # PostgreSQL still has to run after it
            return 45.0
        return max(20.0, self.deadline - time.monotonic() - 30.0)


BUDGET = Budget(560.0)


def memory_calls(quick: bool, backend: str) -> int:
    # The 20,000-call target is PostgreSQL's; SQLite gets a shorter run to keep `make bench`
    # near 10 minutes on 2 vCPUs.
    if quick:
        return 1000
    return 20_000 if backend == "postgresql" else 3000


def _pg_admin(sql: str, admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
        conn.execute(sql)


def _pg_reachable(admin_url: str) -> str | None:
    try:
        _pg_admin("SELECT 1", admin_url)
    except Exception as exc:  # any failure means "not reachable": the run goes on with SQLite
        return f"PostgreSQL not reachable at {admin_url}: {exc.__class__.__name__}"
    return None


def _analyze(url: str) -> None:
    """What autovacuum's analyze would have done by now (this machine's PostgreSQL runs with
    autovacuum=off). Without it the statistics stay those of the freshly seeded data, where every
    group's snooze, assignee, bookmark and seen tables are empty: plans of later statements, and
    the generic plans the server's connections cached, keep sequential scans of tables the
    update scenarios have grown to thousands of rows (GetGroup went from ~1 to 18 ms of
    PostgreSQL CPU per call on 2026-12-01). Run between scenarios, outside the measured windows."""
    if url.startswith("postgres"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")


def _run_scenario(server: ServerProcess, sc: load.Scenario, target: load.Target) -> dict[str, Any]:
    offset = server.log_offset()
    measured = load.run_measured(sc, target, server_cpu=server.cpu, settle=0.3)  # last access lines
    raw = measured.raw
    lines = [x for x in server.access_lines(offset) if str(x.get("request_id", "")).startswith(sc.name + ".")]
    figures = {
        "in_flight": sc.procs * sc.conc,
        **report.latency_figures(raw),
        **report.server_figures(lines),
        # CPU of the server (all threads), PostgreSQL and the clients per call, warm-up calls
        # included when they are logged.
        **measured.per_call(len(lines) or raw["calls"]),
    }
    print(
        f"  {sc.name:28s} {figures['throughput_rps']:8.1f} req/s  p50 {figures['p50_ms']} ms  "
        f"p99 {figures['p99_ms']} ms  SQL/call {figures.get('sql_per_call_median')}  "
        f"codes {raw['codes']}",
        flush=True,
    )
    return figures


def _query_selection(server: ServerProcess) -> tuple[bool, str]:
    """Whether the server can select by search query, and a note for the report."""
    import grpc
    from issues.v1 import issue_service_pb2 as pb
    from issues.v1 import issue_service_pb2_grpc

    from bench.serverproc import TOKEN

    with grpc.insecure_channel(server.address) as channel:
        stub = issue_service_pb2_grpc.IssueServiceStub(channel)
        req = pb.BulkUpdateGroupsRequest(
            organization_id=dataset.ORG_ID,
            query="is:unresolved",
            validate_only=True,
            patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED),
        )
        try:
            stub.BulkUpdateGroups(req, metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=30)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return False, (
                    "BulkUpdateGroups by query skipped: the server answers UNIMPLEMENTED (search is not built yet)."
                )
            return False, f"BulkUpdateGroups by query skipped: probe failed: {exc.code().name}"
    return True, (
        "bulk_query_1000: BulkUpdateGroups by query (is:unresolved / is:resolved in one project, "
        "first page of 1000), run after the memory run."
    )


def _targets(figures: dict[str, dict[str, Any]], memory: dict[str, Any], bulk_floor: dict[str, Any]) -> dict[str, Any]:
    """Issue 13's done-when figures (same-run ratios); the floor only on PostgreSQL."""
    bulk = figures.get("bulk_ids_1000", {})
    resolve = figures["update_resolve_toggle"]
    targets = {
        "resolve_ratio>=0.20": (resolve.get("ratio_to_noop") or 0) >= 0.20,
        "resolve_cpu<=5x_noop": (resolve.get("cpu_x_noop") or 1e9) <= 5,
        "get_ratio>=0.35": (figures["get"].get("ratio_to_noop") or 0) >= 0.35,
        "bulk1000_sql<=12": (bulk.get("sql_per_call_max") or 999) <= 12,
        "memory_growth<=10%": (memory.get("growth_pct") or 0) <= 10,
    }
    if bulk_floor.get("floor_ms_p50"):
        targets["bulk1000_server<=1.5x_floor"] = (bulk_floor.get("server_x_floor") or 1e9) <= 1.5
    return targets


def _bulk_floor(url: str, figures: dict[str, dict[str, Any]], quick: bool) -> dict[str, Any]:
    """PostgreSQL alone on a bulk resolve's statements, against the server's time for the call."""
    s = 1 if quick else 8
    bulk = next(sc for sc in scenarios(quick) if sc.name == "bulk_ids_1000")
    # bulk_ids_1000's block, after its run: one block of 1000 ids per bulk call it had in flight.
    blocks = [list(range(7001 * s + 1000 * i, 7001 * s + 1000 * (i + 1))) for i in range(bulk.procs * bulk.conc)]
    measured = floor.measure(url, organization_id=dataset.ORG_ID, user_id=int(ACTING_USER), id_blocks=blocks)
    server_ms = figures.get("bulk_ids_1000", {}).get("server_ms_p50")
    if server_ms:
        measured["server_ms_p50"] = server_ms
        # Like for like: the server's p50 with N bulk calls in flight over PostgreSQL's with N.
        measured["server_x_floor"] = round(server_ms / measured["floor_in_flight_ms_p50"], 2)
        measured["server_x_floor_alone"] = round(server_ms / measured["floor_ms_p50"], 2)
    print(f"  bulk floor: {measured}", flush=True)
    return measured


def _bare_floor(url: str, server: ServerProcess, target: load.Target, workdir: Path, quick: bool) -> dict[str, Any]:
    """GetGroup and resolve toggles on a bare server replaying our statements (bench/bare.py)."""
    from server.processes.children import default_processes
    from server.transport.app import RESERVE_THREADS, Config

    picked = {sc.name: sc for sc in scenarios(quick)}
    runs = [picked["noop"], picked["get"], picked["update_resolve_toggle"]]
    plan = bare.prepare(url=url, server_address=server.address, target=target, workdir=workdir)
    floor_server = bare.BareServer(
        plan_path=plan, processes=default_processes(), threads=Config.workers + RESERVE_THREADS
    )
    # Groups past every other scenario's block (processes: 91,001-95,096) and before the template's.
    first_touch = None if quick else replace(runs[-1], block=(95_101, 4_800))
    return bare.measure(bare=floor_server, server=server, target=target, scenarios=runs, first_touch=first_touch)


def run_backend(url: str, *, quick: bool, workdir: Path) -> dict[str, Any]:
    backend = "postgresql" if url.startswith("postgres") else "sqlite"
    shape = dataset.QUICK if quick else dataset.FULL
    started = time.perf_counter()
    counts = dataset.seed(url, shape)
    print(f"  seeded {counts} in {time.perf_counter() - started:.1f}s", flush=True)
    server = ServerProcess(url=url, workdir=workdir)
    server.start()
    target = load.Target(address=server.address, organization_id=dataset.ORG_ID, groups=shape.groups)
    try:
        figures: dict[str, dict[str, Any]] = {}
        for sc in scenarios(quick):
            figures[sc.name] = _run_scenario(server, sc, target)
            _analyze(url)
        report.add_ratios(figures)
        bulk_floor = _bulk_floor(url, figures, quick) if backend == "postgresql" else {}
        bare_floor = _bare_floor(url, server, target, workdir, quick) if backend == "postgresql" else {}
        by_processes = processes.compare(url, workdir=workdir, quick=quick, target=target)
        cap = BUDGET.memory_cap(backend, quick)
        memory = _memory(server, memory_scenario(quick, memory_calls(quick, backend), cap), target)
        searchable, note = _query_selection(server)
        if searchable:
            by_query = query_scenario(quick)
            figures[by_query.name] = _run_scenario(server, by_query, target)
            report.add_ratios(figures)
        notes = [note]
        event_figures = bench_events.measure(url=url, server=server, target=target, quick=quick, workdir=workdir)
    finally:
        code = server.stop()
    notes.append(f"server exit code after SIGTERM: {code} (stopped in {server.stop_seconds} s)")
    if code != 0:  # killed past its shutdown bound, or failed: what it said last is the lead
        tail = server.log_path.read_text(errors="replace").splitlines()[-8:]
        notes.append("server log, last lines: " + " / ".join(f"`{line[:300]}`" for line in tail))
    return {
        "dataset": counts,
        "server": f"--processes default ({processes.default_processes()}), 8 threads each, "
        "ISSUES_COUNT_QUERIES=1, JSON access log to a file",
        "processes": by_processes,
        "scenarios": figures,
        "memory": memory,
        "bulk_floor": bulk_floor,
        "bare_floor": bare_floor,
        "targets": _targets(figures, memory, bulk_floor),
        "notes": notes,
        "events": event_figures,
    }


def _memory(server: ServerProcess, sc: load.Scenario, target: load.Target) -> dict[str, Any]:
    # Warm first (caches, pools, lazily built protobuf classes), then measure RSS across the run.
    load.run(replace(sc, name="memory_warm", total_calls=min(sc.total_calls // 10, 1000)), target)
    before = server.memory()
    run = load.run(sc, target)
    after = server.memory()
    growth = 100.0 * (after["VmRSS"] - before["VmRSS"]) / before["VmRSS"]
    print(
        f"  memory: RSS {before['VmRSS']} -> {after['VmRSS']} kB ({growth:+.1f} %), peak {after['VmHWM']} kB",
        flush=True,
    )
    return {
        "calls": run["calls"],
        "codes": run["codes"],
        "before_kb": before["VmRSS"],
        "after_kb": after["VmRSS"],
        "peak_kb": after["VmHWM"],
        "growth_pct": round(growth, 2),
        "planned_calls": sc.total_calls,
        "capped_by_time_budget": run["calls"] < sc.total_calls,
    }


def _sqlite(workdir: Path, quick: bool) -> dict[str, Any]:
    return run_backend(f"sqlite:///{workdir / 'bench.db'}", quick=quick, workdir=workdir)


def _postgres(workdir: Path, quick: bool, admin_url: str) -> dict[str, Any]:
    missing = _pg_reachable(admin_url)
    if missing:
        return {"skipped": missing}
    name = f"issues_bench_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}"', admin_url)
    try:
        return run_backend(f"{admin_url.rsplit('/', 1)[0]}/{name}", quick=quick, workdir=workdir)
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin_url)


def _meta(quick: bool) -> dict[str, Any]:
    import grpc
    import peewee

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if quick else "full",
        "command": "make bench-quick" if quick else "make bench",
        "machine": f"{os.cpu_count()} vCPU ({cpu}), {platform.system()} {platform.release()}",
        "versions": f"Python {platform.python_version()}, grpcio {grpc.__version__}, peewee {peewee.__version__}",
        "load": "spawned Python grpc.aio client processes, closed loop, same 2 vCPUs as the server",
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small data, short runs (< 2 minutes)")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--json", type=Path, default=None, help="default bench/results.json (quick: build/)")
    parser.add_argument("--markdown", type=Path, default=None, help="default BENCHMARKS.md (quick: none)")
    args = parser.parse_args(argv)
    global BUDGET
    BUDGET = Budget(100.0 if args.quick else 560.0)
    json_path = args.json or (ROOT / "build" / "bench-quick.json" if args.quick else ROOT / "bench" / "results.json")
    md_path = args.markdown or (None if args.quick else ROOT / "BENCHMARKS.md")
    results: dict[str, Any] = {"meta": _meta(args.quick), "backends": {}}
    for backend in args.backends.split(","):
        print(f"== {backend} ==", flush=True)
        with tempfile.TemporaryDirectory(prefix="issues-bench-") as tmp:
            if backend == "sqlite":
                results["backends"]["sqlite"] = _sqlite(Path(tmp), args.quick)
            elif backend == "postgres":
                results["backends"]["postgresql"] = _postgres(Path(tmp), args.quick, args.pg_admin_url)
            else:
                print(f"unknown backend {backend!r}", file=sys.stderr)
                return 2
    load.close_pools()
    results["meta"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report.write(results, json_path=json_path, md_path=md_path)
    bench_events.write_markdown(results, md_path)
    print(f"wrote {json_path}" + (f" and {md_path}" if md_path else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
