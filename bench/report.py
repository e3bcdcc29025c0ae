"""Figures from raw samples, results.json and the generated part of BENCHMARKS.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.figures import add_ratios, latency_figures, percentile, server_figures

__all__ = ["add_ratios", "latency_figures", "markdown", "percentile", "server_figures", "write"]

START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    out = [
        START,
        "",
        f"Run: `{meta['command']}` on {meta['date']} ({meta['mode']} mode).",
        "",
        f"Machine: {meta['machine']}. Versions: {meta['versions']}.",
        "",
        f"Load average (1, 5, 15 min) at start {meta.get('loadavg_start')}, at end "
        f"{meta.get('loadavg_end')}: other work on the machine shows up here and in the spread.",
        "",
    ]
    for backend, data in results["backends"].items():
        out.append(f"### {backend}")
        out.append("")
        if "skipped" in data:
            out += [f"Skipped: {data['skipped']}", ""]
            continue
        out.append(f"Data set: {data['dataset']}. Server: `python -m server serve` ({data['server']}).")
        out.append("")
        out.append(
            "| scenario | in flight | calls | req/s | x no-op | p50 ms | p95 ms | p99 ms "
            "| SQL/call | server p50 ms | server p95 ms | in SQL p50 ms "
            "| server CPU ms/call | CPU x no-op | errors |"
        )
        out.append("|---" * 15 + "|")
        for name, f in data["scenarios"].items():
            errors = {k: v for k, v in f.get("codes", {}).items() if k != "OK"} or ""
            cells = [name, f.get("in_flight"), f.get("calls")]
            cells += [f.get(k) for k in ("throughput_rps", "ratio_to_noop", "p50_ms", "p95_ms")]
            cells += [f.get(k) for k in ("p99_ms", "sql_per_call_median", "server_ms_p50")]
            cells += [
                f.get("server_ms_p95"),
                f.get("sql_ms_median"),
                f.get("server_cpu_ms_per_call"),
                f.get("cpu_x_noop"),
            ]
            cells += [errors]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        out += _cores_lines(data["scenarios"])
        mem = data.get("memory", {})
        out += [
            "",
            f"Memory: peak RSS (VmHWM) {mem.get('peak_kb')} kB; "
            f"RSS {mem.get('before_kb')} kB before and "
            f"{mem.get('after_kb')} kB after {mem.get('calls')} mixed calls: growth "
            f"{mem.get('growth_pct')} %"
            + (" (cut short by the time budget)." if mem.get("capped_by_time_budget") else "."),
            "",
        ]
        out += _floor_lines(data.get("bulk_floor") or {})
        out += _bare_lines(data.get("bare_floor") or {})
        out += [f"Targets: {json.dumps(data.get('targets', {}))}", ""]
        if "processes" in data:
            from bench.processes import markdown as processes_markdown

            out += processes_markdown(data["processes"])
        for note in data.get("notes", []):
            out.append(f"- {note}")
        out.append("")
    out.append(END)
    return "\n".join(out)


def _floor_lines(floor: dict[str, Any]) -> list[str]:
    if not floor:
        return []
    return [
        f"Bulk resolve of 1000 ids, floor: the same {floor.get('statements_per_call')} statements "
        f"replayed through bare psycopg loops take {floor.get('floor_in_flight_ms_p50')} ms (p50) with "
        f"{floor.get('in_flight')} replays at once on disjoint ids, as the scenario has "
        f"{floor.get('in_flight')} calls in flight, and {floor.get('floor_ms_p50')} ms with one alone. "
        f"The server's p50 under load is {floor.get('server_ms_p50')} ms: {floor.get('server_x_floor')}x "
        f"the floor at the same concurrency ({floor.get('server_x_floor_alone')}x the lone replay); "
        f"in-process, single-threaded, {floor.get('in_process_ms_p50')} ms "
        f"({floor.get('in_process_x_floor')}x the lone replay).",
        "",
    ]


def _bare_lines(bare: dict[str, Any]) -> list[str]:
    if not bare:
        return []
    out = [
        "Floor of a single call (bench/bare.py): a bare gRPC server, "
        f"{bare.get('processes')} processes x {bare.get('threads')} threads, answers GetGroup and "
        "UpdateGroup by replaying the statements our server sends for them (same round trips: "
        f"{bare.get('round_trips')}) on bare psycopg connections, through the server's libpq path "
        "(server/storage/wire.py), with a captured reply; nothing else. "
        "Run right after a fresh no-op on our server, and next to the same scenarios on our server "
        "(which ran them before, as the bare server ran a short priming run): ratios are to that no-op.",
        "",
        "| scenario | req/s | x no-op | p50 ms | server CPU ms/call | CPU x no-op "
        "| PostgreSQL CPU ms | clients CPU ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, f in bare.get("scenarios", {}).items():
        cells = [name, f.get("throughput_rps"), f.get("ratio_to_noop"), f.get("p50_ms")]
        cells += [f.get("server_cpu_ms_per_call"), f.get("cpu_x_noop"), f.get("postgres_cpu_ms_per_call")]
        cells += [f.get("client_cpu_ms_per_call")]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return [*out, ""]


def write(results: dict[str, Any], *, json_path: Path, md_path: Path | None) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    if md_path is None:
        return
    block = markdown(results)
    text = md_path.read_text() if md_path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    md_path.write_text(head + block + tail)


def _cores_lines(scenarios: dict[str, dict[str, Any]]) -> list[str]:
    """Per call, the CPU of the server, PostgreSQL and the load clients on the same cores."""
    rows = [(n, f) for n, f in scenarios.items() if f.get("postgres_cpu_ms_per_call") is not None]
    if not rows:
        return []
    out = [
        "",
        "Where the cores go, per call: the server's CPU, PostgreSQL's (every postgres process) and "
        "the load clients'. `ceiling` is the rate PostgreSQL's and the clients' CPU alone would "
        "allow on these cores if the server cost nothing.",
        "",
        "| scenario | server CPU ms | PostgreSQL CPU ms | clients CPU ms | ceiling req/s | ceiling x no-op |",
        "|---|---|---|---|---|---|",
    ]
    for name, f in rows:
        cells = [name, f.get("server_cpu_ms_per_call"), f.get("postgres_cpu_ms_per_call")]
        cells += [f.get("client_cpu_ms_per_call"), f.get("ceiling_without_server_rps")]
        cells += [f.get("ceiling_without_server_x_noop")]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return out
