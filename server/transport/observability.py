"""Per-RPC JSON access log, request ids, Prometheus metrics and an SQL statement counter."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from server.storage.models import db
from server.transport import auth

access_log = logging.getLogger("issue_service.access")
REQUEST_ID_KEY = "x-request-id"
# A client's request id is echoed and logged: keep it short and printable so it cannot forge
# log lines or blow up trailers.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
COUNT_QUERIES_ENV = "ISSUES_COUNT_QUERIES"

# One registry for the process: create_server may run several times in one process (tests), and
# the default registry refuses a second registration of the same metric.
REGISTRY = CollectorRegistry(auto_describe=True)
RPC_CALLS = Counter(
    "issue_service_rpc_calls",
    "RPCs handled, by method and status code",
    ["method", "code"],
    registry=REGISTRY,
)
RPC_LATENCY = Histogram(
    "issue_service_rpc_latency_seconds",
    "Server-side RPC latency, by method and status code",
    ["method", "code"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
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


# --- SQL statement counting (ISSUES_COUNT_QUERIES=1): per RPC thread, via peewee query hooks ---

_sql = threading.local()
_counting = threading.Event()  # set once counting is on; read by every access log line


def _count_query(event: Any) -> None:
    _sql.count = getattr(_sql, "count", 0) + 1
    _sql.seconds = getattr(_sql, "seconds", 0.0) + event.duration


def enable_query_counting() -> None:
    """Count the statements each RPC runs; the access log line then carries them."""
    hooks = db.obj.query_hooks
    if _count_query not in hooks:
        hooks.append(_count_query)
    _counting.set()


def _reset_sql() -> None:
    _sql.count, _sql.seconds = 0, 0.0


# --- The per-call record and the access log ---


@dataclass
class CallRecord:
    method: str
    request_id: str
    acting_user: str
    organization_id: int | None = None
    group_count: int = 0
    code: str = "OK"


def request_id_from(metadata: dict[str, Any]) -> str:
    """The caller's x-request-id when it is sane, else a fresh one."""
    given = metadata.get(REQUEST_ID_KEY)
    if isinstance(given, str) and _SAFE_REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


def _acting_user(metadata: dict[str, Any]) -> str:
    value = metadata.get("x-acting-user-id")
    # Logged only when it is the number auth accepts: never echo arbitrary caller bytes.
    return value if isinstance(value, str) and value.isdigit() and len(value) <= 18 else ""


def _group_count(request: Any, response: Any) -> int:
    matched = getattr(response, "matched_group_ids", None)
    if matched is not None:
        return len(matched)
    if getattr(request, "group_id", 0):
        return 1
    return len(getattr(request, "group_ids", ()))


def _changed_kinds(request: Any, response: Any, group_count: int) -> list[tuple[str, int]]:
    """Metric labels for a successful update: one per patch field sent (a bounded set)."""
    patch = getattr(request, "patch", None)
    if patch is None:
        return []
    outcomes = getattr(response, "outcomes", None)
    changed = group_count if outcomes is None else sum(1 for o in outcomes if o.outcome == 1)
    if not changed:
        return []
    return [(field.name, changed) for field, _ in patch.ListFields()]


def log_call(record: CallRecord, *, duration: float) -> None:
    fields: dict[str, Any] = {
        "method": record.method,
        "code": record.code,
        "duration_ms": round(duration * 1000, 3),
        "request_id": record.request_id,
        "acting_user": record.acting_user or None,
        "organization_id": record.organization_id,
        "group_count": record.group_count,
    }
    if _counting.is_set():
        fields["sql_statements"] = _sql.count
        fields["sql_ms"] = round(_sql.seconds * 1000, 3)
    access_log.info(json.dumps(fields, separators=(",", ":")))


class JsonFormatter(logging.Formatter):
    """Access lines are already JSON; other records become {"ts","level","logger","message"}."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == access_log.name:
            body = json.loads(record.getMessage())
            return json.dumps({"ts": self.formatTime(record), **body}, separators=(",", ":"))
        out = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name,
               "message": record.getMessage()}  # fmt: skip
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"))


def configure_logging() -> None:
    """Serve-time logging: JSON lines on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


# --- The interceptor ---


def _code_name(context: grpc.ServicerContext, failed: bool) -> str:
    code = context.code()  # type: ignore[attr-defined]  # grpc >= 1.38; missing from the stubs
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if failed:
        return "UNKNOWN"
    # The handler returned, but the client had gone (cancelled, or its deadline passed): the
    # reply was never delivered, so "OK" would be a lie in the log.
    return "OK" if context.is_active() else "CANCELLED"


def _echo_request_id(context: grpc.ServicerContext, request_id: str) -> None:
    # abort_with_status replaces the trailers with the status details; append the id after it.
    current = tuple(context.trailing_metadata() or ())
    if not any(key == REQUEST_ID_KEY for key, _ in current):
        context.set_trailing_metadata((*current, (REQUEST_ID_KEY, request_id)))


_current = threading.local()


def current_request_id() -> str | None:
    """The x-request-id of the unary call this thread is handling (the one echoed back)."""
    return getattr(_current, "request_id", None)


def _observed(
    inner: Callable[[Any, grpc.ServicerContext], Any], record: CallRecord
) -> Callable[[Any, grpc.ServicerContext], Any]:
    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        start = time.perf_counter()
        _reset_sql()
        auth.forget_parsed_request()
        context.set_trailing_metadata(((REQUEST_ID_KEY, record.request_id),))
        _current.request_id = record.request_id
        response, failed = None, True
        try:
            response = inner(request, context)
            failed = False
            return response
        finally:
            _current.request_id = None
            if isinstance(request, bytes | bytearray):  # parsed inside the auth wrapper
                request = auth.parsed_request()
            _echo_request_id(context, record.request_id)
            _finish(record, request=request, response=response, context=context, failed=failed)
            duration = time.perf_counter() - start
            _observe(record, request=request, response=response, duration=duration)

    return handler


def _finish(record: CallRecord, *, request: Any, response: Any, context: grpc.ServicerContext,
            failed: bool) -> None:  # fmt: skip
    record.code = _code_name(context, failed)
    organization = getattr(request, "organization_id", None)
    record.organization_id = int(organization) if organization else None
    record.group_count = _group_count(request, response)


def _observe(record: CallRecord, *, request: Any, response: Any, duration: float) -> None:
    RPC_CALLS.labels(record.method, record.code).inc()
    RPC_LATENCY.labels(record.method, record.code).observe(duration)
    if record.code == "OK" and response is not None:
        for kind, count in _changed_kinds(request, response, record.group_count):
            GROUPS_CHANGED.labels(kind).inc(count)
    if not record.method.startswith("/grpc."):  # health probes and reflection would drown the log
        log_call(record, duration=duration)


class ObservabilityInterceptor(grpc.ServerInterceptor):
    """Outermost interceptor: wraps whatever handler the inner ones return, auth denials too."""

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler  # unknown methods (UNIMPLEMENTED) and streams (reflection) pass through
        metadata = dict(details.invocation_metadata or ())
        record = CallRecord(
            method=details.method or "",
            request_id=request_id_from(metadata),
            acting_user=_acting_user(metadata),
        )
        return grpc.unary_unary_rpc_method_handler(
            _observed(handler.unary_unary, record),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def start_metrics_server(port: int, address: str = "127.0.0.1") -> Any:
    """Serve /metrics over HTTP on its own port; returns the server (call .shutdown() to stop)."""
    server, _thread = start_http_server(port, addr=address, registry=REGISTRY)
    return server


def query_counting_requested() -> bool:
    return os.environ.get(COUNT_QUERIES_ENV, "") not in ("", "0")
