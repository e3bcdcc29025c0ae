"""Assignment, per-user fields, merge and discard through gRPC: replies, codes and details."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from issues.v1 import group_pb2
from issues.v1 import issue_service_pb2 as pb

from server.storage.models import Group, GroupBookmark, GroupTombstone, utcnow
from tests import factories as f
from tests.conftest import metadata

PARSE_ERROR = "Could not parse actor. Format should be `type:id` where type is `team` or `user`."


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    return f.world()


def _bulk(stub: Any, w: dict, ids: list[int], *, token: str = "writer", user: bool = True,
          **patch: Any) -> pb.BulkUpdateGroupsResponse:  # fmt: skip
    request = pb.BulkUpdateGroupsRequest(organization_id=w["org"].id, group_ids=ids, patch=pb.GroupPatch(**patch))
    return stub.BulkUpdateGroups(request, metadata=metadata(token, w["user"].id if user else None))


def _violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    out = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.extend((v.field, v.description) for v in bad.field_violations)
    return out


def test_assign_by_actor_string_replies_with_the_assignee(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    u = w["user"]
    reply = _bulk(stub, w, [g.id], assigned_to=pb.AssigneeUpdate(actor=f"user:{u.id}"))
    actor = reply.applied.assigned_to.assignee
    assert (actor.type, actor.id, actor.name, actor.email) == (
        group_pb2.ACTOR_TYPE_USER,
        u.id,
        u.name,
        u.email,
    )
    read = stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id), metadata=metadata())
    assert read.group.assigned_to.id == u.id


def test_unassign_replies_with_an_empty_assignee_change(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    reply = _bulk(stub, w, [g.id], assigned_to=pb.AssigneeUpdate(unassign=True))
    assert reply.applied.HasField("assigned_to")
    assert not reply.applied.assigned_to.HasField("assignee")


def test_bad_assignee_is_invalid_argument_with_a_field_violation(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    with pytest.raises(grpc.RpcError) as exc:
        _bulk(stub, w, [g.id], assigned_to=pb.AssigneeUpdate(actor="user:abc"))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert PARSE_ERROR in exc.value.details()
    assert _violations(exc.value) == [("patch.assigned_to", PARSE_ERROR)]


def test_non_team_member_is_refused_on_update_group(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    loner = f.user()
    f.member(w["org"], loner)
    patch = pb.GroupPatch(assigned_to=pb.AssigneeUpdate(user_id=loner.id))
    request = pb.UpdateGroupRequest(organization_id=w["org"].id, group_id=g.id, patch=patch)
    with pytest.raises(grpc.RpcError) as exc:
        stub.UpdateGroup(request, metadata=metadata())
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(exc.value) == [("patch.assigned_to", "Cannot assign to non-team member")]


def test_bookmark_without_an_acting_user_is_invalid_argument(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    with pytest.raises(grpc.RpcError) as exc:
        _bulk(stub, w, [g.id], user=False, is_bookmarked=True)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in _violations(exc.value)] == ["patch.is_bookmarked"]
    assert GroupBookmark.select().count() == 0


def test_bookmark_subscribe_and_share_reply_and_read_back(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    reply = _bulk(stub, w, [g.id], is_bookmarked=True, is_subscribed=True, is_public=True)
    applied = reply.applied
    assert (applied.is_bookmarked, applied.is_subscribed, applied.is_public) == (True, True, True)
    assert applied.subscription_details.reason == "unknown"
    assert len(applied.share.share_id) == 32
    request = pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id)
    read = stub.GetGroup(request, metadata=metadata(user_id=w["user"].id)).group
    assert (read.is_bookmarked, read.is_subscribed, read.is_public) == (True, True, True)
    assert read.share_id == applied.share.share_id


def test_merge_replies_with_parent_and_children_and_redirects_reads(stub: Any, w: dict) -> None:
    old = f.group(w["project"], first_seen=utcnow() - dt.timedelta(days=9))
    young = f.group(w["project"], first_seen=utcnow() - dt.timedelta(days=1))
    reply = _bulk(stub, w, [young.id, old.id], merge=True)
    assert (reply.applied.merge.parent, list(reply.applied.merge.children)) == (old.id, [young.id])
    read = stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=young.id), metadata=metadata())
    assert read.group.id == old.id


def test_merge_across_projects_is_invalid_argument(stub: Any, w: dict) -> None:
    a, b = f.group(w["project"]), f.group(f.sibling_project(w))
    with pytest.raises(grpc.RpcError) as exc:
        _bulk(stub, w, [a.id, b.id], merge=True)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Merging across multiple projects is not supported" in exc.value.details()


def test_discard_needs_event_admin(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    with pytest.raises(grpc.RpcError) as exc:
        _bulk(stub, w, [g.id], discard=True)
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert exc.value.details() == "You do not have permission to discard events"


def test_discard_without_the_feature_is_failed_precondition(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    with pytest.raises(grpc.RpcError) as exc:
        _bulk(stub, w, [g.id], token="admin", discard=True)
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert exc.value.details() == "You do not have that feature enabled"
    assert GroupTombstone.select().count() == 0


def test_discard_with_other_fields_keeps_sentrys_detail_and_names_the_fields(stub: Any, w: dict) -> None:
    w["org"].features = ["projects:discard-groups"]
    w["org"].save()
    g = f.group(w["project"])
    with pytest.raises(grpc.RpcError) as exc:
        _bulk(stub, w, [g.id], token="admin", discard=True, is_public=True, ignore_count=5)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert exc.value.details() == "Other attributes cannot be updated when discarding"  # Sentry's detail
    assert _violations(exc.value) == [
        ("patch.is_public", "Cannot be updated when discarding."),
        ("patch.ignore_count", "Cannot be updated when discarding."),
    ]
    assert Group.get_by_id(g.id).status == 0


def test_discard_with_the_feature_deletes_and_the_group_is_then_not_found(stub: Any, w: dict) -> None:
    w["org"].features = ["projects:discard-groups"]
    w["org"].save()
    g = f.group(w["project"])
    reply = _bulk(stub, w, [g.id], token="admin", discard=True)
    assert reply.applied.discard is True
    assert Group.get_by_id(g.id).status == 3
    with pytest.raises(grpc.RpcError) as exc:
        stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id), metadata=metadata())
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
