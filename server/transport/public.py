"""Health checking and reflection answer without a token, but their requests are parsed here too,
and a health check of an unknown service says so.

grpc's own deserializer answers a body that is not the method's message with INTERNAL and logs an
error with a traceback; the fault is the client's, so the answer is INVALID_ARGUMENT, as for
IssueService's methods (auth.py parses theirs).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.rpc import code_pb2
from grpc_health.v1 import health
from grpc_status import rpc_status

from server.transport.errors import status_for

MALFORMED = "request is not a valid protobuf message"


def parsed_here(handler: grpc.RpcMethodHandler[Any, Any] | None) -> grpc.RpcMethodHandler[Any, Any] | None:
    """`handler` with its requests parsed by `parse_or_abort` instead of grpc (None stays None)."""
    if handler is None or handler.request_deserializer is None:
        return handler
    return _wrapped(handler)


@functools.lru_cache(maxsize=64)  # grpc hands out the same handler per method: wrapped once each
def _wrapped(handler: Any) -> grpc.RpcMethodHandler[Any, Any]:
    parse = handler.request_deserializer
    serialize = handler.response_serializer
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(_one(handler.unary_unary, parse), response_serializer=serialize)
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(_one(handler.unary_stream, parse), response_serializer=serialize)
    if handler.stream_unary is not None:
        return grpc.stream_unary_rpc_method_handler(_each(handler.stream_unary, parse), response_serializer=serialize)
    return grpc.stream_stream_rpc_method_handler(_each(handler.stream_stream, parse), response_serializer=serialize)


def _one(inner: Callable[..., Any], parse: Callable[[bytes], Any]) -> Callable[..., Any]:
    def call(raw: bytes, context: grpc.ServicerContext) -> Any:
        return inner(parse_or_abort(parse, raw, context), context)

    return call


def _each(inner: Callable[..., Any], parse: Callable[[bytes], Any]) -> Callable[..., Any]:
    def call(raws: Iterator[bytes], context: grpc.ServicerContext) -> Any:
        return inner((parse_or_abort(parse, raw, context) for raw in raws), context)

    return call


def parse_or_abort(parse: Callable[[bytes], Any], raw: bytes, context: grpc.ServicerContext) -> Any:
    """The message `raw` holds; INVALID_ARGUMENT (the call ends here) when it holds none."""
    try:
        return parse(raw)
    except Exception:  # DecodeError, invalid UTF-8 in a string field, ...
        status = status_for(code_pb2.INVALID_ARGUMENT, MALFORMED, reason="MALFORMED_REQUEST")
        context.abort_with_status(rpc_status.to_status(status))


class HealthServicer(health.HealthServicer):  # type: ignore[misc]  # grpc_health has no stubs
    """grpc's health service, with a message for a service it does not know: its NOT_FOUND said
    nothing, and a typo in a probe's service name looked like a broken server."""

    def __init__(self) -> None:
        super().__init__()
        self._known = {""}

    def set(self, service: str, status: Any) -> None:
        self._known.add(service)
        super().set(service, status)

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.service not in self._known:
            known = ", ".join(repr(name) for name in sorted(self._known))
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}; known: {known}")
        return super().Check(request, context)
