"""Every Prometheus metric of the service, in one registry, defined here and nowhere else.

gRPC metrics follow the go-grpc-prometheus names dashboards expect (grpc_server_*); the
issue_service_* ones are the domain's. One module, so a switch to multiprocess collection
(`serve --processes N`) is a local change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

from server.storage.models import db

# Our own registry, not the global one: create_server runs many times in one test process and
# the global one refuses a second registration. The default collectors are added explicitly.
REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

_RPC = ["grpc_service", "grpc_method", "grpc_type"]
STARTED = Counter("grpc_server_started", "RPCs started on the server", _RPC, registry=REGISTRY)
HANDLED = Counter(
    "grpc_server_handled", "RPCs completed on the server, whatever their status", [*_RPC, "grpc_code"],
    registry=REGISTRY,
)  # fmt: skip
HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its status, as the server saw it",
    _RPC,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0),
    registry=REGISTRY,
)
MSG_RECEIVED = Counter("grpc_server_msg_received", "Request messages received", _RPC, registry=REGISTRY)
MSG_SENT = Counter("grpc_server_msg_sent", "Response messages sent", _RPC, registry=REGISTRY)

GROUPS_CHANGED = Counter(
    "issue_service_groups_changed",
    "Groups changed, by patch field: bulk outcome CHANGED; single update: the group updated",
    ["kind"],
    registry=REGISTRY,
)
POOL_IN_USE = Gauge("issue_service_db_pool_in_use", "Pooled connections checked out", registry=REGISTRY)
POOL_IDLE = Gauge("issue_service_db_pool_idle", "Pooled connections idle", registry=REGISTRY)
POOL_MAX = Gauge("issue_service_db_pool_max", "Pooled connections allowed", registry=REGISTRY)
WATCHERS = Gauge("issue_service_event_watchers", "Connected WatchIssueEvents streams", registry=REGISTRY)


def observe_watchers(count: Callable[[], int]) -> None:
    """The watchers gauge reads the feed of the server created last (tests create several)."""
    WATCHERS.set_function(count)


def _pool_attr(name: str) -> float:
    pool = getattr(db, "obj", None)
    value = getattr(pool, name, None)
    if value is None:
        return 0.0
    return float(value if isinstance(value, int) else len(value))


POOL_IN_USE.set_function(lambda: _pool_attr("_in_use"))
POOL_IDLE.set_function(lambda: _pool_attr("_connections"))
POOL_MAX.set_function(lambda: _pool_attr("_max_connections"))


def start_metrics_server(port: int, address: str = "127.0.0.1") -> Any:
    """Serve /metrics over HTTP on its own port; returns the server (call .shutdown() to stop)."""
    server, _thread = start_http_server(port, addr=address, registry=REGISTRY)
    return server
