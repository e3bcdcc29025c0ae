"""Through gRPC: codes, details and translation of every RPC, on a real in-process server."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from issues.v1 import group_pb2
from issues.v1 import issue_service_pb2 as pb

from server.storage.models import Activity, Group
from tests import factories as f
from tests.conftest import metadata


@pytest.fixture()
def w(stub: object) -> dict:
    return f.world()


def details_of(err: grpc.RpcError) -> dict[str, object]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None, "error carries no google.rpc.Status"
    out: dict[str, object] = {}
    for any_ in status.details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
            if any_.Is(cls.DESCRIPTOR):
                msg = cls()
                any_.Unpack(msg)
                out[cls.__name__] = msg
    return out


def resolve_patch() -> pb.GroupPatch:
    return pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED)


def test_get_group_returns_the_serialized_group_with_first_seen_activity(stub, w) -> None:
    g = f.group(w["project"], short_id=27, title="KeyError", priority=75)
    reply = stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id), metadata=metadata("reader"))
    group = reply.group
    assert (group.id, group.title, group.status) == (g.id, "KeyError", group_pb2.GROUP_STATUS_UNRESOLVED)
    assert group.short_id == f"{w['project'].slug.upper()}-V"
    assert group.priority == group_pb2.PRIORITY_HIGH
    assert group.substatus == group_pb2.SUBSTATUS_ONGOING
    assert group.activities[-1].type == group_pb2.ACTIVITY_TYPE_FIRST_SEEN
    assert group.activities[-1].data["priority"] == "high"
    assert group.etag


def test_update_group_resolves_and_returns_the_group_after_the_change(stub, w) -> None:
    g = f.group(w["project"])
    reply = stub.UpdateGroup(
        pb.UpdateGroupRequest(organization_id=w["org"].id, group_id=g.id, patch=resolve_patch()),
        metadata=metadata(user_id=w["user"].id),
    )
    assert reply.group.status == group_pb2.GROUP_STATUS_RESOLVED
    assert reply.group.substatus == group_pb2.SUBSTATUS_UNSPECIFIED
    assert reply.group.activities[0].type == group_pb2.ACTIVITY_TYPE_SET_RESOLVED
    assert reply.group.activities[0].user.id == w["user"].id
    assert reply.group.is_subscribed and reply.group.subscription_details.reason == "changed_status"
    assert Group.get_by_id(g.id).status == 1


def test_bulk_update_returns_applied_changes_and_matched_ids(stub, w) -> None:
    a, b = f.group(w["project"]), f.group(w["project"])
    reply = stub.BulkUpdateGroups(
        pb.BulkUpdateGroupsRequest(organization_id=w["org"].id, group_ids=[b.id, a.id, 999_999],
                                   patch=pb.GroupPatch(status=pb.STATUS_UPDATE_IGNORED, ignore_count=10)),
        metadata=metadata(),
    )  # fmt: skip
    assert list(reply.matched_group_ids) == sorted([a.id, b.id])
    assert reply.applied.status == pb.STATUS_UPDATE_IGNORED
    assert reply.applied.status_details.ignore_count == 10
    assert reply.applied.inbox == pb.INBOX_CHANGE_REMOVED
    assert [o.outcome for o in reply.outcomes] == [pb.OUTCOME_CHANGED, pb.OUTCOME_CHANGED]


def test_muted_is_an_alias_of_ignored_echoed_as_muted(stub, w) -> None:
    g = f.group(w["project"])
    reply = stub.BulkUpdateGroups(
        pb.BulkUpdateGroupsRequest(organization_id=w["org"].id, group_ids=[g.id],
                                   patch=pb.GroupPatch(status=pb.STATUS_UPDATE_MUTED)),
        metadata=metadata(),
    )  # fmt: skip
    assert reply.applied.status == pb.STATUS_UPDATE_MUTED
    assert (Group.get_by_id(g.id).status, Group.get_by_id(g.id).substatus) == (2, 5)


def test_unknown_release_is_invalid_argument_with_field_violation(stub, w) -> None:
    g = f.group(w["project"])
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED,
                          status_details=pb.StatusDetailsUpdate(in_release="9.9.9"))  # fmt: skip
    with pytest.raises(grpc.RpcError) as err:
        stub.UpdateGroup(pb.UpdateGroupRequest(organization_id=w["org"].id, group_id=g.id, patch=patch),
                         metadata=metadata())  # fmt: skip
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    bad = details_of(err.value)["BadRequest"]
    assert [(v.field, v.description) for v in bad.field_violations] == [  # type: ignore[attr-defined]
        ("patch.status_details.in_release", "Unable to find a release with the given version.")
    ]
    assert details_of(err.value)["ErrorInfo"].domain == "issues.v1"  # type: ignore[attr-defined]
    assert Group.get_by_id(g.id).status == 0 and Activity.select().count() == 0


def test_unknown_enum_number_is_refused_with_sentry_choice_message(stub, w) -> None:
    g = f.group(w["project"])
    patch = pb.GroupPatch()
    patch.status = 42  # type: ignore[assignment]
    with pytest.raises(grpc.RpcError) as err:
        stub.UpdateGroup(pb.UpdateGroupRequest(organization_id=w["org"].id, group_id=g.id, patch=patch),
                         metadata=metadata())  # fmt: skip
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == 'patch.status: "42" is not a valid choice.'


def test_missing_group_is_not_found(stub, w) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=123456), metadata=metadata())
    assert (err.value.code(), err.value.details()) == (grpc.StatusCode.NOT_FOUND, "Issue not found")
    assert details_of(err.value)["ErrorInfo"].reason == "GROUP_NOT_FOUND"  # type: ignore[attr-defined]


def test_bulk_with_no_group_in_scope_is_not_found_no_groups_found(stub, w) -> None:
    foreign = f.group(f.project(f.org()))
    with pytest.raises(grpc.RpcError) as err:
        stub.BulkUpdateGroups(pb.BulkUpdateGroupsRequest(organization_id=w["org"].id, group_ids=[foreign.id],
                                                         patch=resolve_patch()), metadata=metadata())  # fmt: skip
    assert (err.value.code(), err.value.details()) == (grpc.StatusCode.NOT_FOUND, "No groups found")
    assert details_of(err.value)["ErrorInfo"].reason == "NO_GROUPS_FOUND"  # type: ignore[attr-defined]
    assert Group.get_by_id(foreign.id).status == 0


def test_missing_token_is_unauthenticated(stub, w) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=1))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.value.details() == "Missing bearer token in authorization metadata"


@pytest.mark.parametrize("header", ["dev-token", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer    "])
def test_a_malformed_authorization_is_unauthenticated_and_not_echoed(stub, w, header: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetGroup(
            pb.GetGroupRequest(organization_id=w["org"].id, group_id=1), metadata=(("authorization", header),)
        )
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.value.details() == "Malformed authorization metadata: expected 'Bearer <token>'"
    assert details_of(err.value)["ErrorInfo"].reason == "MALFORMED_TOKEN"  # type: ignore[attr-defined]


def test_unknown_token_is_unauthenticated(stub, w) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=1),
                      metadata=(("authorization", "Bearer nope"),))  # fmt: skip
    assert (err.value.code(), err.value.details()) == (grpc.StatusCode.UNAUTHENTICATED, "Unknown or revoked token")


def test_read_only_token_cannot_update(stub, w) -> None:
    g = f.group(w["project"])
    with pytest.raises(grpc.RpcError) as err:
        stub.UpdateGroup(pb.UpdateGroupRequest(organization_id=w["org"].id, group_id=g.id, patch=resolve_patch()),
                         metadata=metadata("reader"))  # fmt: skip
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "event:write" in err.value.details()
    assert Group.get_by_id(g.id).status == 0


@pytest.mark.parametrize("value", ["alice", "", " 1", "-1"])
def test_bad_acting_user_header_is_unauthenticated(stub, w, value: str) -> None:
    # An empty header is refused too: only a missing one makes a system caller.
    with pytest.raises(grpc.RpcError) as err:
        stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=1),
                      metadata=metadata(**{"x-acting-user-id": value}))  # fmt: skip
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert err.value.details() == "x-acting-user-id must be a numeric user id"


def test_unknown_organization_is_not_found(stub, w) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetGroup(pb.GetGroupRequest(organization_id=987654, group_id=1), metadata=metadata())
    assert (err.value.code(), err.value.details()) == (grpc.StatusCode.NOT_FOUND, "Organization not found")


def test_assigned_to_without_target_is_invalid(stub, w) -> None:
    g = f.group(w["project"])
    patch = pb.GroupPatch(assigned_to=pb.AssigneeUpdate())
    with pytest.raises(grpc.RpcError) as err:
        stub.UpdateGroup(pb.UpdateGroupRequest(organization_id=w["org"].id, group_id=g.id, patch=patch),
                         metadata=metadata())  # fmt: skip
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details_of(err.value)["BadRequest"].field_violations[0].field == "patch.assigned_to"  # type: ignore[attr-defined]


def test_health_and_reflection_need_no_token(running, channel) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="issues.v1.IssueService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
