"""Calls stuck on the database never take every worker: at most `workers` calls may be on the
database at once, the next one is UNAVAILABLE (DATABASE_SATURATED) after a short wait instead
of queueing behind them, and health keeps answering (issue 12 defect 7: once every worker was
stuck, every call, health included, got RESOURCE_EXHAUSTED)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from issues.v1 import issue_service_pb2 as pb
from issues.v1 import issue_service_pb2_grpc

from server.core import update
from server.core.unit_of_work import in_transaction
from server.storage import liveness
from server.transport.app import Config, Running, create_server
from tests import factories as f
from tests.conftest import metadata, token_store

WAIT = 30.0
WORKERS = 2


@pytest.fixture()
def small(migrated: str) -> Iterator[Running]:
    running = create_server(Config(database_url=migrated, workers=WORKERS), tokens=token_store())
    yield running
    running.stop(0)


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    world = f.world()
    return {"org": world["org"].id, "user": world["user"].id, "group": f.group(world["project"]).id}


def test_calls_past_the_database_bound_are_unavailable_and_health_still_answers(
    small: Running, w: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    inside, release = threading.Semaphore(0), threading.Event()
    real = update.get_group

    def stuck(**kw: Any) -> Any:  # holds a database slot, as a call on a silent database does
        in_transaction(lambda: (inside.release(), release.wait(WAIT)), write=False)
        return real(**kw)

    monkeypatch.setattr(update, "get_group", stuck)
    request = pb.GetGroupRequest(organization_id=w["org"], group_id=w["group"])
    with grpc.insecure_channel(f"127.0.0.1:{small.port}") as channel:
        stub = issue_service_pb2_grpc.IssueServiceStub(channel)
        held = [stub.GetGroup.future(request, metadata=metadata(), timeout=WAIT) for _ in range(WORKERS)]
        try:
            for _ in held:
                assert inside.acquire(timeout=WAIT)
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as info:
                stub.GetGroup(request, metadata=metadata(), timeout=WAIT)
            refused_after = time.monotonic() - started
            check = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=WAIT)
        finally:
            release.set()
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        status = rpc_status.from_call(info.value)  # type: ignore[arg-type]
        assert status is not None and b"DATABASE_SATURATED" in status.details[0].value
        assert refused_after < WAIT / 3  # the gate waits about a second, not for the stuck calls
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        assert [call.result().group.id for call in held] == [w["group"]] * WORKERS


def test_the_breaker_refuses_at_once_without_touching_the_database(w: dict[str, Any]) -> None:
    liveness.set_reachable(False)
    try:
        started = time.monotonic()
        with pytest.raises(liveness.Unreachable), liveness.connection():
            pass
        assert time.monotonic() - started < WAIT / 3
    finally:
        liveness.set_reachable(True)


def test_a_transaction_inside_another_shares_its_slot(w: dict[str, Any]) -> None:
    previous = liveness.configure(max_calls=1, gate_wait=0.05)
    try:  # a request id's record wraps the update's own transaction: one slot, not two
        assert in_transaction(lambda: in_transaction(lambda: 42)) == 42
    finally:
        liveness.configure(max_calls=previous)
