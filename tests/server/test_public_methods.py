"""Health checking and reflection need no token, and a body that is not their message is the
client's fault: INVALID_ARGUMENT with the reason, not grpc's INTERNAL."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2

from tests.server.test_status_rpc import _refusal

IDENTITY = {"request_serializer": None, "response_deserializer": None}
NOT_A_MESSAGE = (b"\x0f", b"\n\x01\xff")  # a bad tag; a string field holding invalid UTF-8


@pytest.mark.parametrize("body", NOT_A_MESSAGE)
def test_a_malformed_health_check_is_invalid_argument(channel: grpc.Channel, body: bytes) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        channel.unary_unary("/grpc.health.v1.Health/Check", **IDENTITY)(body, timeout=10)
    code, details, _, reason = _refusal(caught.value)
    assert (code, details, reason) == (
        grpc.StatusCode.INVALID_ARGUMENT, "request is not a valid protobuf message", "MALFORMED_REQUEST"
    )  # fmt: skip


def test_a_malformed_health_watch_is_invalid_argument(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        next(iter(channel.unary_stream("/grpc.health.v1.Health/Watch", **IDENTITY)(b"\x0f", timeout=10)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_a_malformed_reflection_request_is_invalid_argument(channel: grpc.Channel) -> None:
    method = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
    with pytest.raises(grpc.RpcError) as caught:
        next(iter(channel.stream_stream(method, **IDENTITY)(iter([b"\x0f"]), timeout=10)))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_well_formed_public_calls_still_answer(channel: grpc.Channel) -> None:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    assert check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING


def test_a_health_check_of_an_unknown_service_says_so(channel: grpc.Channel) -> None:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    with pytest.raises(grpc.RpcError) as caught:
        check(health_pb2.HealthCheckRequest(service="issues.v1.IssueServce"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details().startswith("unknown service 'issues.v1.IssueServce'; known: ''")
    assert "'issues.v1.IssueService'" in caught.value.details()
    named = check(health_pb2.HealthCheckRequest(service="issues.v1.IssueService"), timeout=10)
    assert named.status == health_pb2.HealthCheckResponse.SERVING
