"""CPU of the observability interceptor alone, per call: no gRPC, no database, one thread.

    PYTHONPATH=.:generated python -m bench.interceptor_cost [--calls 20000] [--profile]

Wraps a handler that returns a fixed reply in ObservabilityInterceptor (metrics, request id,
trailers, the access line to /dev/null) and calls it with a stand-in servicer context, for a
health check (no access line), a GetGroup and an UpdateGroup. --profile prints cProfile's
busiest functions for the update. Scratch evidence for BENCHMARKS.md, not a target of
`make bench`: the real server's cost under load is `bench.ab`'s to measure.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import pstats
import time
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from issues.v1 import issue_service_pb2 as pb

from server.telemetry.logs import configure_logging
from server.transport.observability import ObservabilityInterceptor

METADATA = (("authorization", "Bearer x"), ("x-acting-user-id", "1"), ("x-request-id", "bench.1.2"))


class _Context:
    """What the interceptor asks of grpc's servicer context, for a call that succeeded."""

    def __init__(self) -> None:
        self.trailers: Any = None

    def set_trailing_metadata(self, metadata: Any) -> None:
        self.trailers = metadata

    def trailing_metadata(self) -> Any:
        return self.trailers

    def code(self) -> None:
        return None

    def is_active(self) -> bool:
        return True

    def details(self) -> None:
        return None


class _Details:
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = METADATA


def one_call(method: str, request: Any, reply: Any) -> Callable[[], None]:
    inner = grpc.unary_unary_rpc_method_handler(lambda _request, _context: reply)
    interceptor = ObservabilityInterceptor()
    details = _Details(method)

    def call() -> None:
        handler = interceptor.intercept_service(lambda _details: inner, details)
        handler.unary_unary(request, _Context())

    return call


def per_call_us(call: Callable[[], None], calls: int) -> float:
    for _ in range(calls // 10):
        call()
    started = time.process_time()
    for _ in range(calls):
        call()
    return 1e6 * (time.process_time() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.interceptor_cost")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    configure_logging()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(open("/dev/null", "w"))  # noqa: SIM115  # the process's whole life
    update = pb.UpdateGroupRequest(organization_id=1, group_id=5, patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED))
    calls = {
        "health check": one_call(
            "/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest(), health_pb2.HealthCheckResponse(status=1)
        ),
        "GetGroup": one_call(
            "/issues.v1.IssueService/GetGroup", pb.GetGroupRequest(organization_id=1, group_id=5), pb.GetGroupResponse()
        ),
        "UpdateGroup": one_call("/issues.v1.IssueService/UpdateGroup", update, pb.UpdateGroupResponse()),
    }
    for name, call in calls.items():
        print(f"{name:13s} {per_call_us(call, args.calls):6.1f} us per call (interceptor only)")
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.calls // 4):
            calls["UpdateGroup"]()
        profile.disable()
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
