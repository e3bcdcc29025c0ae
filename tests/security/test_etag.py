"""Optimistic concurrency: UpdateGroup with a stale etag is ABORTED and changes nothing."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from issues.v1 import group_pb2
from issues.v1 import issue_service_pb2 as pb

from tests import factories as f
from tests.conftest import metadata
from tests.security.support import fingerprint


@pytest.fixture()
def group(database: str) -> dict[str, Any]:
    w = f.world()
    return {"org": w["org"].id, "user": w["user"].id, "id": f.group(w["project"]).id}


def get(stub: Any, g: dict[str, Any]) -> Any:
    request = pb.GetGroupRequest(organization_id=g["org"], group_id=g["id"])
    return stub.GetGroup(request, metadata=metadata(user_id=g["user"]), timeout=10).group


def put(stub: Any, g: dict[str, Any], etag: str, status: int) -> Any:
    request = pb.UpdateGroupRequest(
        organization_id=g["org"], group_id=g["id"], etag=etag, patch=pb.GroupPatch(status=status)
    )
    return stub.UpdateGroup(request, metadata=metadata(user_id=g["user"]), timeout=10).group


def test_get_group_exposes_a_non_empty_etag(stub: Any, group: dict[str, Any]) -> None:
    assert get(stub, group).etag


def test_a_fresh_etag_is_accepted_and_the_etag_changes_after_the_update(stub: Any, group: dict[str, Any]) -> None:
    before = get(stub, group).etag
    updated = put(stub, group, before, pb.STATUS_UPDATE_RESOLVED)
    assert updated.status == group_pb2.GROUP_STATUS_RESOLVED
    assert updated.etag != before
    assert get(stub, group).etag == updated.etag


def test_a_stale_etag_is_aborted_and_changes_nothing(stub: Any, group: dict[str, Any]) -> None:
    stale = get(stub, group).etag
    put(stub, group, stale, pb.STATUS_UPDATE_RESOLVED)
    before = fingerprint()
    with pytest.raises(grpc.RpcError) as info:
        put(stub, group, stale, pb.STATUS_UPDATE_UNRESOLVED)
    assert info.value.code() == grpc.StatusCode.ABORTED
    assert "etag mismatch" in info.value.details()
    assert fingerprint() == before
    assert get(stub, group).status == group_pb2.GROUP_STATUS_RESOLVED


def test_two_writers_with_the_same_etag_only_one_wins(stub: Any, group: dict[str, Any]) -> None:
    etag = get(stub, group).etag
    put(stub, group, etag, pb.STATUS_UPDATE_RESOLVED)
    with pytest.raises(grpc.RpcError) as info:
        put(stub, group, etag, pb.STATUS_UPDATE_IGNORED)
    assert info.value.code() == grpc.StatusCode.ABORTED
    resolved = put(stub, group, "", pb.STATUS_UPDATE_RESOLVED)  # no etag: unconditional
    assert resolved.etag != etag


def test_an_empty_etag_means_no_precondition(stub: Any, group: dict[str, Any]) -> None:
    first = put(stub, group, "", pb.STATUS_UPDATE_RESOLVED)
    assert put(stub, group, "", pb.STATUS_UPDATE_UNRESOLVED).etag != first.etag
