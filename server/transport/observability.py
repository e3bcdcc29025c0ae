"""The outermost interceptor: for every RPC kind, one access-log line, gRPC metrics, x-request-id.

Unary and streaming calls alike: the handler grpc found is re-wrapped with the same kind, so a
server stream is timed from its start to its status, and its messages are counted.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import grpc

from server.telemetry import logs, sql
from server.telemetry import metrics as m
from server.transport import auth
from server.transport.call_record import (
    CallRecord,
    changed_kinds,
    failure_of,
    field_value,
    matched_count,
    requested_count,
)
from server.transport.errors import past_deadline

access_log = logging.getLogger("issue_service.access")
REQUEST_ID_KEY = "x-request-id"
# A client's request id is echoed and logged: keep it short and printable so it cannot forge
# log lines or blow up trailers.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
RPC_TYPES = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler, "unary"),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler, "server_stream"),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler, "client_stream"),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler, "bidi_stream"),
}


class _Instruments:
    """A method's metric children, looked up once: prometheus_client's labels() takes a lock and
    checks every label value on each call, and an RPC reports five to six times."""

    def __init__(self, labels: tuple[str, str, str]) -> None:
        self.labels = labels
        self.started = m.STARTED.labels(*labels)
        self.received = m.MSG_RECEIVED.labels(*labels)
        self.sent = m.MSG_SENT.labels(*labels)
        self.handling = m.HANDLING_SECONDS.labels(*labels)

    def handled(self, code: str) -> Any:
        return _handled(self.labels, code)


# The caches below are unbounded but small: only registered methods get here (an unknown one is
# refused before), status codes and patch field names are fixed sets. labels() returns the same
# child for the same values, so a race that builds an entry twice is harmless.
@functools.cache
def instruments_for(labels: tuple[str, str, str]) -> _Instruments:
    return _Instruments(labels)


@functools.cache
def _handled(labels: tuple[str, str, str], code: str) -> Any:
    return m.HANDLED.labels(*labels, code)


@functools.cache
def groups_changed(kind: str) -> Any:
    return m.GROUPS_CHANGED.labels(kind)


def request_id_from(metadata: dict[str, Any]) -> str:
    """The caller's x-request-id when it is sane, else a fresh one."""
    given = metadata.get(REQUEST_ID_KEY)
    if isinstance(given, str) and _SAFE_REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


def _acting_user(metadata: dict[str, Any]) -> str:
    value = metadata.get("x-acting-user-id")
    # Logged only when it is the number auth accepts: never echo arbitrary caller bytes.
    ok = isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18
    return value if ok else ""  # type: ignore[return-value]


def code_name(context: grpc.ServicerContext, *, failed: bool, abandoned: bool = False) -> str:
    code = context.code()  # type: ignore[attr-defined]  # grpc >= 1.38; missing from the stubs
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if abandoned:  # grpc stopped pulling a stream: the client cancelled or its deadline passed
        return "DEADLINE_EXCEEDED" if past_deadline(context) else "CANCELLED"
    if failed:
        return "UNKNOWN"
    # The handler returned, but the client had gone (cancelled, or its deadline passed): the
    # reply was never delivered, so "OK" would be a lie in the log. (Not the remaining time: a
    # reply that comes back just past the server's reading of the deadline is still delivered
    # often, to a third of 1 ms GetGroups in an outside check, 2026-12-02.)
    return "OK" if context.is_active() else "CANCELLED"


def _echo_request_id(context: grpc.ServicerContext, request_id: str) -> None:
    # abort_with_status replaces the trailers with the status details; append the id after it.
    current = tuple(context.trailing_metadata() or ())
    if not any(key == REQUEST_ID_KEY for key, _ in current):
        context.set_trailing_metadata((*current, (REQUEST_ID_KEY, request_id)))


class _Call:
    """One RPC in flight: started, counted message by message, finished once."""

    def __init__(self, record: CallRecord, context: grpc.ServicerContext) -> None:
        self.record, self.context = record, context
        self.metrics = instruments_for(record.labels)
        self.start = time.perf_counter()
        self.request: Any = None
        logs.bind_request_id(record.request_id)
        sql.reset_counts()
        auth.forget_parsed_request()
        context.set_trailing_metadata(((REQUEST_ID_KEY, record.request_id),))
        self.metrics.started.inc()

    def received(self, request: Any) -> Any:
        self.metrics.received.inc()
        self.request = request
        return request

    def requests(self, iterator: Iterable[Any]) -> Iterator[Any]:
        for request in iterator:
            yield self.received(request)

    def parsed_request(self) -> Any:
        if isinstance(self.request, bytes | bytearray | None):  # parsed inside the auth wrapper
            self.request = auth.parsed_request() or self.request
        return self.request

    def sent(self, reply: Any) -> Any:
        self.metrics.sent.inc()
        record, request = self.record, self.parsed_request()
        record.messages_sent += 1
        body = field_value(reply, "chunk", reply)  # a stream's progress message carries the reply
        matched = matched_count(body)
        if matched is not None:
            record.group_count, record.counted_groups = record.group_count + matched, True
        for kind, count in changed_kinds(request, body, fallback=requested_count(request)):
            groups_changed(kind).inc(count)
        return reply

    def finish(self, *, failed: bool, abandoned: bool = False) -> None:
        record, context, request = self.record, self.context, self.parsed_request()
        _echo_request_id(context, record.request_id)
        record.code = code_name(context, failed=failed, abandoned=abandoned)
        record.reason, record.error = failure_of(context) if record.code != "OK" else (None, None)
        organization = field_value(request, "organization_id")
        record.organization_id = int(organization) if organization else None
        if not record.counted_groups:
            record.group_count = requested_count(request)
        duration = time.perf_counter() - self.start
        self.metrics.handled(record.code).inc()
        self.metrics.handling.observe(duration)
        record.mark_span()
        if not record.method.startswith("/grpc."):  # health probes and reflection would drown the log
            fields = record.log_fields(duration, sql.counts())
            logs.log_fields(access_log, logging.INFO, f"{record.method} {record.code}", fields)
        logs.bind_request_id(None)


def _unary_response(inner: Callable[..., Any], record: CallRecord, streaming_in: bool) -> Callable[..., Any]:
    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        call = _Call(record, context)
        failed = True
        try:
            reply = inner(call.requests(request) if streaming_in else call.received(request), context)
            failed = False
            return call.sent(reply)
        finally:
            call.finish(failed=failed)

    return handler


def _stream_response(inner: Callable[..., Any], record: CallRecord, streaming_in: bool) -> Callable[..., Any]:
    def handler(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        call = _Call(record, context)
        failed, abandoned = True, False
        try:
            for reply in inner(call.requests(request) if streaming_in else call.received(request), context):
                yield call.sent(reply)
            failed = False
        except GeneratorExit:  # grpc dropped the stream: the client is gone
            abandoned = True
            raise
        finally:
            call.finish(failed=failed, abandoned=abandoned)

    return handler


class ObservabilityInterceptor(grpc.ServerInterceptor):
    """Wraps whatever handler the inner interceptors return, auth denials too."""

    def intercept_service(self, continuation: Any, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None  # an unknown method: grpc answers UNIMPLEMENTED
        kind = (bool(handler.request_streaming), bool(handler.response_streaming))
        attribute, factory, grpc_type = RPC_TYPES[kind]
        metadata = dict(details.invocation_metadata or ())
        record = CallRecord(
            method=details.method or "",
            grpc_type=grpc_type,
            request_id=request_id_from(metadata),
            acting_user=_acting_user(metadata),
        )
        wrap = _stream_response if kind[1] else _unary_response
        return factory(
            wrap(getattr(handler, attribute), record, kind[0]),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
