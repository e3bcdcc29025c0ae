"""`issue-service health`: ask a running server's gRPC health service, exit 0 only when SERVING.

Container HEALTHCHECKs and scripts use it instead of grpc_health_probe (which is not on PyPI).
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

NOT_SERVING_EXIT = 1


def check(*, address: str, service: str = "", timeout: float = 5.0) -> int:
    """0 when `service` ("" = the whole server) is SERVING at `address`; 1 with the reason otherwise."""
    target = address.replace("0.0.0.0", "127.0.0.1", 1).replace("[::]", "[::1]", 1)  # a listen address
    try:
        with grpc.insecure_channel(target) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
    except grpc.RpcError as exc:
        print(f"health: {target}: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return NOT_SERVING_EXIT
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"health: {target} {service or '(server)'}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else NOT_SERVING_EXIT
