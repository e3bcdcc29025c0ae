"""The bench's process comparison: ratios of the same run and the section it writes."""

from __future__ import annotations

from typing import Any

from bench import processes


def figures(rps: float, cpu: float) -> dict[str, Any]:
    return {"throughput_rps": rps, "server_cpu_ms_per_call": cpu}


def test_the_section_shows_n_over_1_and_the_single_connection_run() -> None:
    configs = {
        "1": {name: figures(100.0, 2.0) for name, _ in processes.KINDS},
        "2": {name: figures(180.0, 2.2) for name, _ in processes.KINDS},
    }
    configs["2"]["get_1_client_1_connections"] = figures(90.0, 2.1)
    configs["2"]["get_1_client_4_connections"] = figures(180.0, 2.1)
    data = {
        "processes": 2,
        "client_processes": 2,
        "connections_per_client_process": 4,
        "configs": configs,
        "speedup_n_over_1": {name: 1.8 for name, _ in processes.KINDS},
        "get_1_client_4_over_1_connections": processes._ratio(
            configs["2"]["get_1_client_4_connections"], configs["2"]["get_1_client_1_connections"]
        ),
    }
    text = "\n".join(processes.markdown(data))
    assert "| update_resolve_toggle | 100.0 | 180.0 | 1.8 | 2.0 | 2.2 |" in text
    assert "over one connection 90.0 req/s, over four 180.0 req/s (2.0x;" in text


def test_sqlite_gets_a_note_instead_of_the_comparison(tmp_path: Any) -> None:
    data = processes.compare("sqlite:///x.db", workdir=tmp_path, quick=True, target=None)  # type: ignore[arg-type]
    assert processes.markdown(data) == ["Processes: the process comparison runs on PostgreSQL only (time budget).", ""]
