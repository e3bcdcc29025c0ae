"""The one table from core errors to gRPC status codes, and the wrapper every RPC goes through."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.core import errors as core

log = logging.getLogger("issue_service")
DOMAIN = "issues.v1"
# Fields of the request itself (not of the patch) keep their name without the patch prefix.
REQUEST_FIELDS = frozenset({"group_ids", "query", "project_ids", "organization_id", "page_token",
                            "etag", "request_id", "environments", "sort", "group_id", "kinds",
                            "after_event_id"})  # fmt: skip
F = TypeVar("F", bound=Callable[..., Any])

CODES: dict[type[core.CoreError], int] = {
    core.InvalidArgument: code_pb2.INVALID_ARGUMENT,
    core.NotFound: code_pb2.NOT_FOUND,
    core.PermissionDenied: code_pb2.PERMISSION_DENIED,
    core.FailedPrecondition: code_pb2.FAILED_PRECONDITION,
    core.Conflict: code_pb2.ABORTED,
    core.Unavailable: code_pb2.UNAVAILABLE,
    core.Unimplemented: code_pb2.UNIMPLEMENTED,
    core.ResourceExhausted: code_pb2.RESOURCE_EXHAUSTED,
    core.Cancelled: code_pb2.CANCELLED,
    core.TimedOut: code_pb2.DEADLINE_EXCEEDED,
    core.OutOfRange: code_pb2.OUT_OF_RANGE,
}


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def status_for(
    code: int, message: str, *, reason: str, metadata: dict[str, str] | None = None,
    violations: list[tuple[str, str]] | None = None,
) -> status_pb2.Status:  # fmt: skip
    details = [_pack(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {}))]
    if violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations
            ]
        )
        details.append(_pack(bad))
    return status_pb2.Status(code=code, message=message, details=details)


def core_status(exc: core.CoreError, *, field_prefix: str = "") -> status_pb2.Status:
    code = next(c for cls, c in CODES.items() if isinstance(exc, cls))
    violations = None
    message = exc.message
    if isinstance(exc, core.InvalidArgument) and exc.violations:
        violations = [(_qualify(v.field, field_prefix), v.description) for v in exc.violations]
        if not exc.detail:
            first = violations[0]
            message = f"{first[0]}: {first[1]}"
            if len(violations) > 1:
                message += f" (and {len(violations) - 1} more)"
    metadata = {k: str(v) for k, v in exc.metadata.items()}
    if isinstance(exc, core.Unimplemented) and "field" in metadata:
        metadata["field"] = _qualify(metadata["field"], field_prefix)
        message = f"{metadata['field']}: {message}"
    return status_for(code, message, reason=exc.reason, metadata=metadata, violations=violations)


def call_status(exc: core.CoreError, context: grpc.ServicerContext, *, field_prefix: str = "") -> status_pb2.Status:
    """core_status for this call: a call the core stopped because it is no longer wanted says
    DEADLINE_EXCEEDED when its deadline passed, CANCELLED when the client cancelled it."""
    if isinstance(exc, core.Cancelled) and past_deadline(context):
        return status_for(code_pb2.DEADLINE_EXCEEDED, exc.message, reason="DEADLINE_EXCEEDED")
    return core_status(exc, field_prefix=field_prefix)


def past_deadline(context: grpc.ServicerContext) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


def violations_status(violations: list[tuple[str, str]]) -> status_pb2.Status:
    """INVALID_ARGUMENT naming every bad field; the message is the first, as for core errors."""
    message = f"{violations[0][0]}: {violations[0][1]}"
    if len(violations) > 1:
        message += f" (and {len(violations) - 1} more)"
    return status_for(code_pb2.INVALID_ARGUMENT, message, reason="INVALID_ARGUMENT", violations=violations)


def _qualify(path: str, prefix: str) -> str:
    return path if path.split(".")[0] in REQUEST_FIELDS else prefix + path


# Called when a call found the database unreachable (the health watch listens, see app.py).
_unavailable_listeners: list[Callable[[], None]] = []


def on_unavailable(listener: Callable[[], None]) -> None:
    _unavailable_listeners.append(listener)


def forget_unavailable_listener(listener: Callable[[], None]) -> None:
    if listener in _unavailable_listeners:
        _unavailable_listeners.remove(listener)


def _report_unavailable(exc: core.CoreError) -> None:
    if isinstance(exc, core.Unavailable) and exc.reason == "DATABASE_UNAVAILABLE":
        for listener in list(_unavailable_listeners):
            listener()


# Refusals a blind retry cannot fix (the caller must re-read first): the reply tells a client's
# gRPC retry policy (clients/service_config.json retries ABORTED) not to try again.
NO_RETRY_REASONS = frozenset({"ETAG_MISMATCH"})
RETRY_PUSHBACK_KEY = "grpc-retry-pushback-ms"


def abort(context: grpc.ServicerContext, status: status_pb2.Status) -> None:
    reply = rpc_status.to_status(status)
    info = error_details_pb2.ErrorInfo()
    if status.details and status.details[0].Unpack(info) and info.reason in NO_RETRY_REASONS:
        reply = reply._replace(trailing_metadata=(*reply.trailing_metadata, (RETRY_PUSHBACK_KEY, "-1")))
    context.abort_with_status(reply)


def translated(field_prefix: str = "patch.") -> Callable[[F], F]:
    """Wrap a servicer method: core errors become their status; anything else INTERNAL, logged."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        def inner(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return method(self, request, context)
            except core.CoreError as exc:
                _report_unavailable(exc)
                abort(context, call_status(exc, context, field_prefix=field_prefix))
            except Exception:
                if not context.is_active():
                    raise  # the client went away; nothing to answer
                request_id = dict(context.invocation_metadata()).get("x-request-id", "")
                log.exception("internal error in %s (request id %s)", method.__name__, request_id)
                abort(context, status_for(code_pb2.INTERNAL, "internal error", reason="INTERNAL"))
            return None

        return inner  # type: ignore[return-value]

    return decorate
