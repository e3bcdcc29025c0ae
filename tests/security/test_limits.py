"""Limits: message size (4 MiB), explicit ids per call (1000) and concurrent RPCs per server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from issues.v1 import issue_service_pb2 as pb
from issues.v1 import issue_service_pb2_grpc

from server.core import update
from server.transport.app import MAX_MESSAGE_BYTES, Config, Running, create_server
from tests import factories as f
from tests.conftest import metadata, token_store
from tests.security.support import fingerprint

WAIT = 30.0


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    world = f.world()
    return {"org": world["org"].id, "user": world["user"].id, "group": f.group(world["project"]).id}


def test_a_request_over_4_mib_is_resource_exhausted(stub: Any, w: dict[str, Any]) -> None:
    patch = pb.GroupPatch(integration="x" * (MAX_MESSAGE_BYTES + 1))
    request = pb.UpdateGroupRequest(organization_id=w["org"], group_id=w["group"], patch=patch)
    before = fingerprint()
    with pytest.raises(grpc.RpcError) as info:
        stub.UpdateGroup(request, metadata=metadata(user_id=w["user"]), timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert fingerprint() == before


def test_more_than_1000_ids_are_invalid_argument(stub: Any, w: dict[str, Any]) -> None:
    request = pb.BulkUpdateGroupsRequest(
        organization_id=w["org"], group_ids=[w["group"]] * 1001, patch=pb.GroupPatch(is_public=True)
    )
    before = fingerprint()
    with pytest.raises(grpc.RpcError) as info:
        stub.BulkUpdateGroups(request, metadata=metadata(user_id=w["user"]), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "group_ids: Ensure this field has no more than 1000 elements."
    assert fingerprint() == before


def test_exactly_1000_ids_are_accepted(stub: Any, w: dict[str, Any]) -> None:
    request = pb.BulkUpdateGroupsRequest(
        organization_id=w["org"], group_ids=[w["group"]] * 1000, patch=pb.GroupPatch(is_public=True)
    )
    reply = stub.BulkUpdateGroups(request, metadata=metadata(user_id=w["user"]), timeout=30)
    assert list(reply.matched_group_ids) == [w["group"]]


@pytest.fixture()
def small_server(migrated: str) -> Iterator[Running]:
    running = create_server(Config(database_url=migrated, workers=4, max_concurrent_rpcs=2), tokens=token_store())
    yield running
    running.stop(0)


def test_calls_past_the_concurrency_limit_are_resource_exhausted(
    small_server: Running, w: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    entered = threading.Semaphore(0)
    release = threading.Event()
    real = update.get_group

    def held(**kw: Any) -> Any:
        entered.release()
        release.wait(WAIT)
        return real(**kw)

    monkeypatch.setattr(update, "get_group", held)
    request = pb.GetGroupRequest(organization_id=w["org"], group_id=w["group"])
    with grpc.insecure_channel(f"127.0.0.1:{small_server.port}") as channel:
        stub = issue_service_pb2_grpc.IssueServiceStub(channel)
        md = metadata(user_id=w["user"])
        running = [stub.GetGroup.future(request, metadata=md, timeout=WAIT) for _ in range(2)]
        try:
            assert entered.acquire(timeout=WAIT) and entered.acquire(timeout=WAIT)
            with pytest.raises(grpc.RpcError) as info:
                stub.GetGroup(request, metadata=md, timeout=WAIT)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        finally:
            release.set()
        assert [r.result().group.id for r in running] == [w["group"], w["group"]]
        assert stub.GetGroup(request, metadata=md, timeout=WAIT).group.id == w["group"]
