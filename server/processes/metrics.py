"""One Prometheus exposition for all workers, served by the supervisor.

Each worker keeps its own registry (whatever observability.py defines, process collectors
included) on a private loopback port; a scrape of the supervisor's port fetches every worker's
text and re-exposes each sample with a `worker` label (the worker's index, stable across
restarts), plus `issue_service_worker_up`. Sum over `worker` for service totals. A replaced
worker starts its counters from zero, which Prometheus' rate() reads as a counter reset.

Chosen over prometheus_client's multiprocess mode, which needs its environment variable before
the first import, drops callback gauges (the pool gauges) and the process collectors.

The HTTP server is polled from the supervisor's select loop, not a thread: the supervisor forks
replacement workers, and forking a process that runs other threads is unsafe.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterable, Iterator
from http.server import HTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import MetricsHandler
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families

FETCH_TIMEOUT = 5.0  # seconds per worker; a hung worker shows as issue_service_worker_up 0
WorkerEndpoints = Callable[[], Iterable[tuple[int, int]]]  # (worker index, its metrics port)


class WorkersCollector:
    """A prometheus_client collector whose samples are the workers' own, labelled by worker."""

    def __init__(self, endpoints: WorkerEndpoints) -> None:
        self._endpoints = endpoints

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        up = GaugeMetricFamily("issue_service_worker_up", "1 when the worker answered this scrape", labels=["worker"])
        for index, port in sorted(self._endpoints()):
            text = _fetch(port)
            up.add_metric([str(index)], 0 if text is None else 1)
            for family in text_string_to_metric_families(text or ""):
                _merge(families, family, worker=str(index))
        yield from families.values()
        yield up


def _fetch(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=FETCH_TIMEOUT) as reply:
            return str(reply.read().decode())
    except OSError:
        return None


def _merge(families: dict[str, Metric], family: Metric, *, worker: str) -> None:
    merged = families.get(family.name)
    if merged is None:
        merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
    for sample in family.samples:
        merged.samples.append(sample._replace(labels={**sample.labels, "worker": worker}))


class Exposition:
    """/metrics on the user's address and port, one request at a time, driven by the caller."""

    def __init__(self, *, address: str, port: int, endpoints: WorkerEndpoints) -> None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(WorkersCollector(endpoints))
        handler: Any = MetricsHandler.factory(registry)
        handler.timeout = FETCH_TIMEOUT  # a client that sends nothing cannot stall the supervisor
        handler.log_message = lambda *_args: None  # scrapes are not news
        self.server = HTTPServer((address, port), handler)
        self.port = int(self.server.server_address[1])

    def fileno(self) -> int:
        return self.server.fileno()

    def handle(self) -> None:
        self.server.handle_request()

    def close(self) -> None:
        self.server.server_close()
