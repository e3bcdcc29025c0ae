"""Metadata that must be sent once: a second `authorization` or `x-acting-user-id` is
UNAUTHENTICATED, whatever the copies say (before, a dict kept the last: a read token followed by
an admin token could write)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from issues.v1 import issue_service_pb2 as pb

from tests import factories as f
from tests.conftest import TOKENS
from tests.security.support import fingerprint


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    world = f.world()
    return {"org": world["org"].id, "user": world["user"].id, "group": f.group(world["project"]).id}


def bearer(name: str) -> tuple[str, str]:
    return ("authorization", f"Bearer {TOKENS[name][0]}")


CASES = {
    "read then admin token": (bearer("reader"), bearer("admin")),
    "the same token twice": (bearer("admin"), bearer("admin")),
    "two acting users": (bearer("admin"), ("x-acting-user-id", "1"), ("x-acting-user-id", "2")),
    "the same acting user twice": (bearer("admin"), ("x-acting-user-id", "1"), ("x-acting-user-id", "1")),
}


@pytest.mark.parametrize("pairs", CASES.values(), ids=CASES.keys())
def test_a_repeated_identity_header_is_unauthenticated(stub: Any, w: dict[str, Any], pairs: Any) -> None:
    request = pb.UpdateGroupRequest(organization_id=w["org"], group_id=w["group"], patch=pb.GroupPatch(is_public=True))
    before = fingerprint()
    with pytest.raises(grpc.RpcError) as info:
        stub.UpdateGroup(request, metadata=pairs, timeout=30)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "sent more than once" in info.value.details()
    assert fingerprint() == before


def test_a_repeated_header_is_refused_on_a_stream_too(stub: Any, w: dict[str, Any]) -> None:
    request = pb.BulkUpdateGroupsRequest(organization_id=w["org"], query="", patch=pb.GroupPatch(is_public=True))
    with pytest.raises(grpc.RpcError) as info:
        list(stub.StreamBulkUpdateGroups(request, metadata=CASES["read then admin token"], timeout=30))
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_non_ascii_digits_are_not_an_acting_user(stub: Any, w: dict[str, Any]) -> None:
    from server.transport.auth import _parse_user

    assert _parse_user("²") == (None, False)
    assert _parse_user("٣") == (None, False)
    assert _parse_user("12") == (12, True)


def test_one_of_each_is_fine(stub: Any, w: dict[str, Any]) -> None:
    request = pb.GetGroupRequest(organization_id=w["org"], group_id=w["group"])
    pairs = (bearer("reader"), ("x-acting-user-id", str(w["user"])))
    assert stub.GetGroup(request, metadata=pairs, timeout=30).group.id == w["group"]
