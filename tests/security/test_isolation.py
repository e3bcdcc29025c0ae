"""Tenant isolation: another organization's ids are never read, written or revealed. Group ids of
the two organizations interleave, so an off-by-scope bug would hit a real foreign row."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from issues.v1 import issue_service_pb2 as pb

from server.storage.models import Group, GroupBookmark, GroupRedirect, GroupShare
from tests import factories as f
from tests.conftest import metadata
from tests.security.support import fingerprint

MISSING = 10**12


@pytest.fixture()
def two_orgs(database: str) -> dict[str, Any]:
    """Org A owns groups 1st, 3rd, 5th created; org B owns 2nd, 4th, 6th."""
    a, b = f.org(), f.org()
    pa, pb_ = f.project(a), f.project(b)
    ua, ub = f.user(), f.user()
    f.member(a, ua, teams=(f.team(a, projects=(pa,)),))
    f.member(b, ub, teams=(f.team(b, projects=(pb_,)),))
    groups_a, groups_b = [], []
    for _ in range(3):
        groups_a.append(f.group(pa).id)
        groups_b.append(f.group(pb_).id)
    assert groups_a[0] < groups_b[0] < groups_a[1] < groups_b[1]
    return {"a": a, "b": b, "ua": ua, "ga": groups_a, "gb": groups_b}


def failure(call: Any, request: Any, user_id: int) -> tuple[Any, ...]:
    """Everything a client can observe about a failed call, with the requested id blanked out."""
    with pytest.raises(grpc.RpcError) as info:
        call(request, metadata=metadata("writer", user_id=user_id), timeout=10)
    err = info.value
    status = rpc_status.from_call(err)
    assert status is not None
    group_id = str(getattr(request, "group_id", "")) or "\0"  # bulk requests have no group_id
    details = [_blank(detail, group_id) for detail in status.details]
    return err.code(), err.details().replace(group_id, "<id>"), status.message, details


def _blank(detail: Any, group_id: str) -> tuple[Any, ...]:
    if not detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
        return (detail.type_url, detail.value)
    info = error_details_pb2.ErrorInfo()
    detail.Unpack(info)
    meta = {k: v.replace(group_id, "<id>") for k, v in info.metadata.items()}
    return (info.reason, info.domain, sorted(meta.items()))


def test_getting_a_foreign_group_looks_exactly_like_a_missing_one(stub: Any, two_orgs: dict[str, Any]) -> None:
    org, user = two_orgs["a"].id, two_orgs["ua"].id
    for foreign in two_orgs["gb"]:
        seen = failure(stub.GetGroup, pb.GetGroupRequest(organization_id=org, group_id=foreign), user)
        missing = pb.GetGroupRequest(organization_id=org, group_id=MISSING)
        assert seen == failure(stub.GetGroup, missing, user)
        assert seen[0] == grpc.StatusCode.NOT_FOUND


def test_updating_a_foreign_group_looks_missing_and_writes_nothing(stub: Any, two_orgs: dict[str, Any]) -> None:
    org, user = two_orgs["a"].id, two_orgs["ua"].id
    before = fingerprint()
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED, is_bookmarked=True)
    for foreign in two_orgs["gb"]:
        request = pb.UpdateGroupRequest(organization_id=org, group_id=foreign, patch=patch, etag="x")
        missing = pb.UpdateGroupRequest(organization_id=org, group_id=MISSING, patch=patch, etag="x")
        assert failure(stub.UpdateGroup, request, user) == failure(stub.UpdateGroup, missing, user)
    assert fingerprint() == before


def test_bulk_with_interleaved_ids_touches_only_own_groups(stub: Any, two_orgs: dict[str, Any]) -> None:
    ga, gb = two_orgs["ga"], two_orgs["gb"]
    request = pb.BulkUpdateGroupsRequest(
        organization_id=two_orgs["a"].id,
        group_ids=sorted(ga + gb),
        patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED, is_bookmarked=True),
    )
    reply = stub.BulkUpdateGroups(request, metadata=metadata(user_id=two_orgs["ua"].id), timeout=10)
    assert list(reply.matched_group_ids) == ga
    assert [Group.get_by_id(i).status for i in ga] == [1, 1, 1]
    assert [Group.get_by_id(i).status for i in gb] == [0, 0, 0]
    assert [Group.get_by_id(i).version for i in gb] == [1, 1, 1]
    assert sorted(b.group_id for b in GroupBookmark.select()) == ga


def test_bulk_on_only_foreign_ids_looks_like_bulk_on_missing_ids(stub: Any, two_orgs: dict[str, Any]) -> None:
    org, user = two_orgs["a"].id, two_orgs["ua"].id
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED)
    before = fingerprint()
    foreign = pb.BulkUpdateGroupsRequest(organization_id=org, group_ids=two_orgs["gb"], patch=patch)
    missing = pb.BulkUpdateGroupsRequest(organization_id=org, group_ids=[MISSING], patch=patch)
    seen = failure(stub.BulkUpdateGroups, foreign, user)
    assert seen == failure(stub.BulkUpdateGroups, missing, user)
    assert seen[0] == grpc.StatusCode.NOT_FOUND
    assert fingerprint() == before


def test_a_foreign_project_id_is_refused_like_a_missing_project(stub: Any, two_orgs: dict[str, Any]) -> None:
    org, user = two_orgs["a"].id, two_orgs["ua"].id
    foreign_project = Group.get_by_id(two_orgs["gb"][0]).project_id
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED)

    def ask(project_id: int) -> tuple[Any, ...]:
        request = pb.BulkUpdateGroupsRequest(
            organization_id=org, project_ids=[project_id], group_ids=two_orgs["ga"], patch=patch
        )
        code, details, _, _ = failure(stub.BulkUpdateGroups, request, user)
        return code, details.replace(str(project_id), "<project>")

    assert ask(foreign_project) == ask(MISSING)
    assert ask(MISSING)[0] == grpc.StatusCode.PERMISSION_DENIED
    assert [Group.get_by_id(i).status for i in two_orgs["ga"]] == [0, 0, 0]


def test_a_member_of_one_org_cannot_act_in_the_other(stub: Any, two_orgs: dict[str, Any]) -> None:
    request = pb.GetGroupRequest(organization_id=two_orgs["b"].id, group_id=two_orgs["gb"][0])
    code, details, _, _ = failure(stub.GetGroup, request, two_orgs["ua"].id)
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "not an active member" in details


def test_a_merge_redirect_of_another_organization_is_not_followed(stub: Any, two_orgs: dict[str, Any]) -> None:
    org, user = two_orgs["a"].id, two_orgs["ua"].id
    GroupRedirect.create(organization=two_orgs["b"], group_id=two_orgs["gb"][0], previous_group_id=MISSING - 1)
    redirected = pb.GetGroupRequest(organization_id=org, group_id=MISSING - 1)
    missing = pb.GetGroupRequest(organization_id=org, group_id=MISSING)
    assert failure(stub.GetGroup, redirected, user) == failure(stub.GetGroup, missing, user)


def test_the_streaming_bulk_touches_only_own_groups(stub: Any, two_orgs: dict[str, Any]) -> None:
    ga, gb = two_orgs["ga"], two_orgs["gb"]
    request = pb.BulkUpdateGroupsRequest(
        organization_id=two_orgs["a"].id,
        group_ids=sorted(ga + gb),
        patch=pb.GroupPatch(is_public=True),
    )
    pages = list(stub.StreamBulkUpdateGroups(request, metadata=metadata(user_id=two_orgs["ua"].id), timeout=10))
    assert [gid for page in pages for gid in page.chunk.matched_group_ids] == ga
    assert sorted(s.group_id for s in GroupShare.select()) == ga
