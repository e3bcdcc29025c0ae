"""What the access log, the metrics and the trace say about one RPC, read off its messages and status."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass
class CallRecord:
    method: str  # /package.Service/Method
    grpc_type: str  # unary, server_stream, client_stream, bidi_stream
    request_id: str
    acting_user: str
    organization_id: int | None = None
    group_count: int = 0
    counted_groups: bool = False  # a reply said how many groups matched
    messages_sent: int = 0
    code: str = "OK"
    reason: str | None = None  # ErrorInfo.reason of a failed call
    error: str | None = None  # the status message of a failed call

    @property
    def labels(self) -> tuple[str, str, str]:
        return method_labels(self.method, self.grpc_type)

    def log_fields(self, duration: float, sql_counts: tuple[int, float] | None) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "method": self.method,
            "grpc_type": self.grpc_type,
            "code": self.code,
            "duration_ms": round(duration * 1000, 3),
            "request_id": self.request_id,
            "acting_user": self.acting_user or None,
            "organization_id": self.organization_id,
            "group_count": self.group_count,
        }
        if self.grpc_type.endswith("stream"):
            fields["messages_sent"] = self.messages_sent
        if self.code != "OK":
            fields["reason"], fields["error"] = self.reason, self.error
        if sql_counts is not None:
            fields["sql_statements"], fields["sql_ms"] = sql_counts[0], round(sql_counts[1] * 1000, 3)
        return fields

    def mark_span(self) -> None:
        """Put the final code and reason on the RPC's span (a no-op when tracing is off)."""
        span = trace.get_current_span()
        if not span.is_recording():
            return
        span.set_attribute("rpc.grpc.status_code", grpc.StatusCode[self.code].value[0])
        span.set_attribute("issue_service.request_id", self.request_id)
        if self.code != "OK":
            span.set_attribute("error.type", self.reason or self.code)
            span.set_status(Status(StatusCode.ERROR, f"{self.code} {self.reason or ''}: {self.error or ''}"))


@functools.lru_cache(maxsize=256)  # one per registered method and kind
def method_labels(method: str, grpc_type: str) -> tuple[str, str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return service, name, grpc_type


def failure_of(context: grpc.ServicerContext) -> tuple[str | None, str | None]:
    """(ErrorInfo reason, status message) of a failed call, from what the server is sending."""
    details = context.details()  # type: ignore[attr-defined]  # grpc >= 1.38; missing from the stubs
    message = details.decode(errors="replace") if isinstance(details, bytes) else details
    for key, value in context.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return _reason(status_pb2.Status.FromString(value)), message
    return None, message


def _reason(status: status_pb2.Status) -> str | None:
    info = error_details_pb2.ErrorInfo()
    return next((info.reason for detail in status.details if detail.Unpack(info)), None)


def matched_count(reply: Any) -> int | None:
    """Groups a reply says it matched (bulk replies), else None."""
    matched = field_value(reply, "matched_group_ids")
    return None if matched is None else len(matched)


def requested_count(request: Any) -> int:
    if field_value(request, "group_id", 0):
        return 1
    return len(field_value(request, "group_ids", ()))


def changed_kinds(request: Any, reply: Any, fallback: int) -> list[tuple[str, int]]:
    """Metric labels for a committed update: one per patch field sent (a bounded set)."""
    patch = field_value(request, "patch")
    if patch is None or field_value(request, "validate_only", False):
        return []
    outcomes = field_value(reply, "outcomes")
    changed = fallback if outcomes is None else sum(1 for o in outcomes if o.outcome == 1)
    if not changed:
        return []
    return [(field.name, changed) for field, _ in patch.ListFields()]


def field_value(message: Any, name: str, default: Any = None) -> Any:
    """message.name when its type has that field, else default. Not getattr(message, name,
    default): on a protobuf message without the field that raises and catches an AttributeError
    (a health check's request has none of the fields asked about here, nine lookups a call)."""
    kind: Any = type(message)  # a class is hashable; typeshed's type[Any] does not say so
    return getattr(message, name) if _has_field(kind, name) else default


@functools.lru_cache(maxsize=1024)  # message types x the few names asked about
def _has_field(cls: Any, name: str) -> bool:
    descriptor = getattr(cls, "DESCRIPTOR", None)
    return descriptor is not None and name in descriptor.fields_by_name
