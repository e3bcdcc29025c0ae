"""1 vs N server processes, and client processes with one vs several connections each.

Each configuration gets its own `serve` (on the database the main run seeded) and the same
closed-loop load; the figures that count are same-run ratios: N processes over 1, and several
connections per client process over one (SO_REUSEPORT balances connections, so one connection
per client process can leave workers idle).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import figures as fig
from bench import load
from bench.serverproc import ServerProcess
from server.processes.children import default_processes  # what `serve` picks without --processes

KINDS = (("noop", "noop"), ("get", "get"), ("update_resolve_toggle", "resolve"))


def scenarios(quick: bool) -> list[load.Scenario]:
    # Shorter than the main scenarios: ten runs must fit the bench's time budget.
    secs, warm = (1.0, 0.5) if quick else (3.0, 1.0)
    # Ids no other scenario of the run touches (quick: 12k groups, full: 100k).
    block = (11_513, 480) if quick else (91_001, 4096)
    return [load.Scenario(name, kind, seconds=secs, warmup=warm, block=block) for name, kind in KINDS]


def _measure(server: ServerProcess, sc: load.Scenario, target: load.Target) -> dict[str, Any]:
    cpu = server.cpu()
    raw = load.run(sc, target)
    time.sleep(0.3)
    cpu = server.cpu() - cpu
    figures = {**fig.latency_figures(raw), "connections": sc.procs * sc.connections}
    # CPU of the supervisor and every worker, per measured call (warm-up calls add a little).
    figures["server_cpu_ms_per_call"] = round(1000 * cpu / max(raw["calls"], 1), 3)
    print(f"    {sc.name:24s} {figures['throughput_rps']:8.1f} req/s  p50 {figures['p50_ms']} ms  "
          f"connections {figures['connections']}  codes {raw['codes']}", flush=True)  # fmt: skip
    return figures


def _run_config(url: str, workdir: Path, processes: int, target: load.Target, quick: bool) -> dict[str, Any]:
    print(f"  -- serve --processes {processes}", flush=True)
    server = ServerProcess(url=url, workdir=workdir, processes=processes)
    server.start(timeout=60.0)
    target = replace(target, address=server.address)
    try:
        figures = {sc.name: _measure(server, sc, target) for sc in scenarios(quick)}
        fig.add_ratios(figures)
        # One client process, 24 calls in flight: over one connection (one worker, whatever N
        # is) and over four (spread by the kernel's hash of each connection).
        alone = replace(scenarios(quick)[1], procs=1, conc=24)
        for connections in (1, 4):
            sc = replace(alone, name=f"get_1_client_{connections}_connections", connections=connections)
            figures[sc.name] = _measure(server, sc, target)
    finally:
        server.stop()
    return figures


def compare(url: str, *, workdir: Path, quick: bool, target: load.Target) -> dict[str, Any]:
    """Throughput of the same scenarios under `--processes 1` and `--processes N` (N = CPUs).

    PostgreSQL only: the issue's targets are PostgreSQL's, SQLite has one writer whatever N is,
    and `make bench` has 10 minutes for both backends.
    """
    if not url.startswith("postgres"):
        return {"skipped": "the process comparison runs on PostgreSQL only (time budget)"}
    n = default_processes()
    configs = {str(p): _run_config(url, workdir, p, target, quick) for p in sorted({1, n})}
    speedup = {name: _ratio(configs[str(n)][name], configs["1"][name]) for name, _ in KINDS if n > 1}
    alone = configs[str(n)]
    return {
        "processes": n,
        "client_processes": load.Scenario("x", "x").procs,
        "connections_per_client_process": load.Scenario("x", "x").connections,
        "configs": configs,
        "speedup_n_over_1": speedup,
        "get_1_client_4_over_1_connections": _ratio(
            alone["get_1_client_4_connections"], alone["get_1_client_1_connections"]
        ),
    }


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    return round(a["throughput_rps"] / b["throughput_rps"], 2) if b.get("throughput_rps") else None


def markdown(data: dict[str, Any]) -> list[str]:
    """The section under a backend's table in BENCHMARKS.md."""
    if "skipped" in data:
        return [f"Processes: {data['skipped']}.", ""]
    n, configs = data["processes"], data["configs"]
    out = [
        f"Processes ({data['client_processes']} client processes x "
        f"{data['connections_per_client_process']} connections each, 12 calls in flight per "
        f"client process): `serve --processes 1` vs `--processes {n}` (the default, one per CPU).",
        "",
        "| scenario | " + " | ".join(f"req/s @{p}" for p in configs) + " | @N / @1 | "
        + " | ".join(f"server CPU ms/call @{p}" for p in configs) + " |",
        "|---" * (2 + 2 * len(configs)) + "|",
    ]  # fmt: skip
    for name, _ in KINDS:
        rates = [configs[p][name]["throughput_rps"] for p in configs]
        cpus = [configs[p][name]["server_cpu_ms_per_call"] for p in configs]
        speedup = data["speedup_n_over_1"].get(name)
        out.append(f"| {name} | " + " | ".join(map(str, rates)) + f" | {speedup or '-'} | "
                   + " | ".join(map(str, cpus)) + " |")  # fmt: skip
    one, four = (configs[str(n)][f"get_1_client_{c}_connections"]["throughput_rps"] for c in (1, 4))
    out += [
        "",
        f"One client process (24 in flight) against `--processes {n}`: `get` over one connection "
        f"{one} req/s, over four {four} req/s ({data['get_1_client_4_over_1_connections']}x; one "
        "connection always reaches a single worker; the client shares the same cores).",
        "",
    ]
    return out
