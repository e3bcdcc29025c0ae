"""Every RPC kind gets the same access line, metrics and x-request-id echo (a bytes echo service)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2
from grpc_status import rpc_status

from server.telemetry import logs, metrics
from server.transport import observability
from server.transport.errors import status_for

SERVICE = "test.v1.Echo"


def _refuse(context: grpc.ServicerContext) -> None:
    status = status_for(code_pb2.FAILED_PRECONDITION, "echo refused", reason="ECHO_REFUSED")
    context.abort_with_status(rpc_status.to_status(status))


def _unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    if request == b"fail":
        _refuse(context)
    return request


def _server_stream(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    for _ in range(3):
        yield request
    if request == b"fail":
        _refuse(context)


def _endless(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    gone = threading.Event()
    context.add_callback(gone.set)
    while not gone.is_set():
        yield request
        gone.wait(0.05)
    yield request  # grpc drops the stream here: the generator is closed


def _client_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    return b"".join(requests)


def _bidi(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    yield from requests


HANDLERS = {
    "Unary": grpc.unary_unary_rpc_method_handler(_unary),
    "ServerStream": grpc.unary_stream_rpc_method_handler(_server_stream),
    "Endless": grpc.unary_stream_rpc_method_handler(_endless),
    "ClientStream": grpc.stream_unary_rpc_method_handler(_client_stream),
    "Bidi": grpc.stream_stream_rpc_method_handler(_bidi),
}


@pytest.fixture(scope="module")
def channel() -> Iterator[grpc.Channel]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4), interceptors=[observability.ObservabilityInterceptor()]
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, HANDLERS),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        yield ch
    server.stop(0)


@pytest.fixture()
def lines(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=observability.access_log.name)
    return caplog


def _access(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    formatter = logs.JsonLineFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == observability.access_log.name]


def _sample(name: str, method: str, grpc_type: str, **extra: str) -> float:
    labels = {"grpc_service": SERVICE, "grpc_method": method, "grpc_type": grpc_type, **extra}
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _call(channel: grpc.Channel, method: str, grpc_type: str, request_id: str) -> tuple[Any, Any]:
    path, md = f"/{SERVICE}/{method}", (("x-request-id", request_id),)
    if grpc_type == "unary":
        return channel.unary_unary(path).with_call(b"ab", metadata=md)
    if grpc_type == "server_stream":
        call = channel.unary_stream(path)(b"ab", metadata=md)
        return list(call), call
    if grpc_type == "client_stream":
        return channel.stream_unary(path).with_call(iter([b"a", b"b"]), metadata=md)
    call = channel.stream_stream(path)(iter([b"a", b"b"]), metadata=md)
    return list(call), call


KINDS = [("Unary", "unary", 1, 1), ("ServerStream", "server_stream", 1, 3),
         ("ClientStream", "client_stream", 2, 1), ("Bidi", "bidi_stream", 2, 2)]  # fmt: skip


@pytest.mark.parametrize(("method", "grpc_type", "received", "sent"), KINDS)
def test_each_rpc_kind_is_logged_counted_and_echoes_the_request_id(
    channel: grpc.Channel, lines: pytest.LogCaptureFixture, method: str, grpc_type: str, received: int, sent: int
) -> None:
    names = ("grpc_server_started_total", "grpc_server_msg_received_total", "grpc_server_msg_sent_total")
    before = [_sample(n, method, grpc_type) for n in names]
    handled = _sample("grpc_server_handled_total", method, grpc_type, grpc_code="OK")
    _, call = _call(channel, method, grpc_type, f"kind-{method}")
    assert dict(call.trailing_metadata())["x-request-id"] == f"kind-{method}"
    (line,) = _access(lines)
    assert (line["method"], line["grpc_type"], line["code"], line["request_id"]) == (
        f"/{SERVICE}/{method}", grpc_type, "OK", f"kind-{method}",
    )  # fmt: skip
    assert [_sample(n, method, grpc_type) for n in names] == [before[0] + 1, before[1] + received, before[2] + sent]
    assert _sample("grpc_server_handled_total", method, grpc_type, grpc_code="OK") == handled + 1
    assert _sample("grpc_server_handling_seconds_count", method, grpc_type) >= 1


@pytest.mark.parametrize(("method", "grpc_type"), [("Unary", "unary"), ("ServerStream", "server_stream")])
def test_a_refused_call_of_either_kind_logs_code_reason_and_echoes_the_id(
    channel: grpc.Channel, lines: pytest.LogCaptureFixture, method: str, grpc_type: str
) -> None:
    md = (("x-request-id", f"fail-{method}"),)
    path = f"/{SERVICE}/{method}"
    with pytest.raises(grpc.RpcError) as err:
        if grpc_type == "unary":
            channel.unary_unary(path)(b"fail", metadata=md)
        else:
            list(channel.unary_stream(path)(b"fail", metadata=md))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert dict(err.value.trailing_metadata())["x-request-id"] == f"fail-{method}"
    assert rpc_status.from_call(err.value) is not None  # the details survived the echo
    (line,) = _access(lines)
    assert (line["code"], line["reason"], line["error"]) == ("FAILED_PRECONDITION", "ECHO_REFUSED", "echo refused")
    code = {"grpc_code": "FAILED_PRECONDITION"}
    assert _sample("grpc_server_handled_total", method, grpc_type, **code) >= 1


def test_a_stream_the_client_cancels_is_logged_as_cancelled(
    channel: grpc.Channel, lines: pytest.LogCaptureFixture
) -> None:
    call = channel.unary_stream(f"/{SERVICE}/Endless")(b"x", metadata=(("x-request-id", "cancel-1"),))
    assert next(call) == b"x"
    call.cancel()
    deadline = time.monotonic() + 30  # the server notices the cancellation asynchronously
    while not _access(lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    (line,) = _access(lines)
    assert (line["code"], line["request_id"]) == ("CANCELLED", "cancel-1")
    assert line["messages_sent"] >= 1
