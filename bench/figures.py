"""Figures from raw samples: latency percentiles, server-side figures, ratios to the no-op."""

from __future__ import annotations

import statistics
from typing import Any

from server.processes.children import default_processes


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return round(sorted_values[index], 3)


def latency_figures(run: dict[str, Any]) -> dict[str, Any]:
    lat = run["latencies"]
    return {
        "calls": run["calls"],
        "throughput_rps": round(run["throughput"], 1),
        "p50_ms": percentile(lat, 50),
        "p95_ms": percentile(lat, 95),
        "p99_ms": percentile(lat, 99),
        "codes": run["codes"],
    }


def server_figures(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-call SQL statement counts and server-side durations from the access log."""
    if not lines:
        return {}
    sql = [line["sql_statements"] for line in lines if "sql_statements" in line]
    durations = sorted(float(line["duration_ms"]) for line in lines)
    sql_ms = [float(line["sql_ms"]) for line in lines if "sql_ms" in line]
    return {
        "server_calls": len(lines),
        "sql_per_call_median": statistics.median(sql) if sql else None,
        "sql_per_call_max": max(sql) if sql else None,
        "server_ms_p50": percentile(durations, 50),
        "server_ms_p95": percentile(durations, 95),
        "server_ms_max": round(durations[-1], 3),
        # Time inside cursor.execute (driver + database); the rest of server_ms is Python.
        "sql_ms_median": round(statistics.median(sql_ms), 3) if sql_ms else None,
    }


def add_ratios(scenarios: dict[str, dict[str, Any]]) -> None:
    noop = scenarios.get("noop", {}).get("throughput_rps") or 0
    noop_cpu = scenarios.get("noop", {}).get("server_cpu_ms_per_call") or 0
    cores = default_processes()  # the CPUs this process may run on
    for figures in scenarios.values():
        others = (figures.get("postgres_cpu_ms_per_call") or 0) + (figures.get("client_cpu_ms_per_call") or 0)
        if others and noop:
            # The most calls/s these cores could serve if the server's own CPU were zero:
            # PostgreSQL's and the clients' CPU per call alone fill them at this rate.
            figures["ceiling_without_server_rps"] = round(1000 * cores / others, 1)
            figures["ceiling_without_server_x_noop"] = round(figures["ceiling_without_server_rps"] / noop, 3)
        if noop_cpu and figures.get("server_cpu_ms_per_call") is not None:
            figures["cpu_x_noop"] = round(figures["server_cpu_ms_per_call"] / noop_cpu, 2)
        if noop and figures.get("throughput_rps") is not None:
            figures["ratio_to_noop"] = round(figures["throughput_rps"] / noop, 3)
            for key in ("p50_ms", "p95_ms", "p99_ms"):
                base = scenarios["noop"].get(key)
                if base and figures.get(key) is not None:
                    figures[f"{key}_x_noop"] = round(figures[key] / base, 2)
