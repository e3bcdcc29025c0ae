"""One /metrics for all workers: the supervisor's port shows every worker's samples, labelled."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from server.processes.metrics import WorkersCollector
from server.telemetry.metrics import HANDLED
from tests.processes.support import channels_on_every_worker
from tests.security.support import ServerProcess, start_server

CALLS_NAME = HANDLED.describe()[0].name  # grpc_server_handled


@pytest.fixture()
def supervised(sqlite_url: str, tokens: Path) -> Iterator[ServerProcess]:
    server = start_server(sqlite_url, tokens, "--processes", "2", "--metrics-port", "0")
    try:
        yield server
    finally:
        server.stop()


def metrics_url(server: ServerProcess) -> str:
    """From the start-up lines, which may still be arriving after the port was announced."""
    seen, end = server.startup, time.monotonic() + 60
    while not (match := re.search(r"metrics on (http://[\d.]+:\d+/metrics)", seen)):
        assert time.monotonic() < end, seen
        time.sleep(0.1)
        seen += server.output()
    return match.group(1)


def scrape(server: ServerProcess) -> str:
    with urllib.request.urlopen(metrics_url(server), timeout=30) as reply:
        return str(reply.read().decode())


def health_checks_per_worker(text: str) -> dict[str, float]:
    per_worker: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != CALLS_NAME:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("grpc_method") == "Check":
                worker = sample.labels["worker"]
                per_worker[worker] = per_worker.get(worker, 0) + sample.value
    return per_worker


def test_the_supervisor_exposes_every_workers_calls_labelled_by_worker(supervised: ServerProcess) -> None:
    channels = channels_on_every_worker(supervised)
    try:
        for channel in channels:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=20)
        text = scrape(supervised)
    finally:
        for channel in channels:
            channel.close()
    per_worker = health_checks_per_worker(text)
    assert set(per_worker) == {"0", "1"}, per_worker  # several connections reached both workers
    assert sum(per_worker.values()) == len(channels)
    assert 'issue_service_worker_up{worker="0"} 1.0' in text
    assert 'issue_service_worker_up{worker="1"} 1.0' in text


def test_a_worker_that_does_not_answer_is_reported_down_and_the_rest_still_exposed() -> None:
    from prometheus_client import CollectorRegistry, Counter, generate_latest

    registry = CollectorRegistry()
    Counter("calls", "calls", registry=registry).inc(3)
    collector = WorkersCollector(lambda: [(0, 1), (1, 2)])
    texts = {1: None, 2: generate_latest(registry).decode()}
    import server.processes.metrics as metrics

    original, metrics._fetch = metrics._fetch, texts.get  # type: ignore[assignment]
    try:
        out = CollectorRegistry()
        out.register(collector)
        text = generate_latest(out).decode()
    finally:
        metrics._fetch = original
    assert 'calls_total{worker="1"} 3.0' in text
    assert 'issue_service_worker_up{worker="0"} 0.0' in text
    assert 'issue_service_worker_up{worker="1"} 1.0' in text
