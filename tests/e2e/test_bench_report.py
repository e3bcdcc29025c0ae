"""The benchmark report: percentiles, ratios to the no-op, hand-written parts kept."""

from __future__ import annotations

import json
from pathlib import Path

from bench import report


def test_percentiles_pick_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert report.percentile(values, 50) == 50.0
    assert report.percentile(values, 99) == 99.0
    assert report.percentile([], 50) is None


def test_every_scenario_gets_its_ratio_to_the_noop_of_the_same_run() -> None:
    figures = {
        "noop": {"throughput_rps": 2000.0, "p50_ms": 2.0},
        "get": {"throughput_rps": 500.0, "p50_ms": 10.0},
    }
    report.add_ratios(figures)
    assert figures["get"]["ratio_to_noop"] == 0.25
    assert figures["get"]["p50_ms_x_noop"] == 5.0
    assert figures["noop"]["ratio_to_noop"] == 1.0


def test_server_figures_come_from_the_access_log_lines() -> None:
    lines = [
        {"duration_ms": 10.0, "sql_statements": 12, "sql_ms": 4.0},
        {"duration_ms": 30.0, "sql_statements": 14, "sql_ms": 6.0},
    ]
    out = report.server_figures(lines)
    assert (out["sql_per_call_median"], out["sql_per_call_max"]) == (13.0, 14)
    assert (out["server_ms_p50"], out["server_ms_max"]) == (10.0, 30.0)


def test_writing_results_keeps_the_hand_written_text_around_the_markers(tmp_path: Path) -> None:
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(f"# Head\nkept above\n{report.START}\nold\n{report.END}\nkept below\n")
    results = {
        "meta": {
            "command": "make bench",
            "date": "d",
            "mode": "full",
            "machine": "m",
            "versions": "v",
        },
        "backends": {"postgresql": {"skipped": "not reachable"}},
    }
    report.write(results, json_path=tmp_path / "r.json", md_path=md)
    text = md.read_text()
    assert text.startswith("# Head\nkept above\n")
    assert text.endswith("kept below\n")
    assert "old" not in text and "Skipped: not reachable" in text
    assert json.loads((tmp_path / "r.json").read_text())["backends"]["postgresql"]["skipped"]
