"""Status workflows through gRPC: request mapping, reply fields and error codes (§3.4-§3.6, §4)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from issues.v1 import group_pb2, issue_service_pb2

from server.storage.models import Group, GroupResolution, GroupSnooze, ReleaseProject
from tests import factories as f
from tests.conftest import metadata

pb = issue_service_pb2


@pytest.fixture()
def w(stub: Any) -> dict[str, Any]:
    return f.world()


def _update(stub: Any, w: dict[str, Any], group_id: int, patch: pb.GroupPatch) -> group_pb2.Group:
    request = pb.UpdateGroupRequest(organization_id=w["org"].id, group_id=group_id, patch=patch)
    reply = stub.UpdateGroup(request, metadata=metadata(user_id=w["user"].id))
    return reply.group


def _bulk(stub: Any, w: dict[str, Any], ids: list[int], patch: pb.GroupPatch) -> pb.BulkUpdateGroupsResponse:
    request = pb.BulkUpdateGroupsRequest(organization_id=w["org"].id, group_ids=ids, patch=patch)
    return stub.BulkUpdateGroups(request, metadata=metadata(user_id=w["user"].id))


def _refusal(call: Any) -> tuple[grpc.StatusCode, str, list[tuple[str, str]], str]:
    """(code, details, field violations, ErrorInfo reason) of a failed call."""
    status = rpc_status.from_call(call)
    assert status is not None
    violations: list[tuple[str, str]] = []
    reason = ""
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [(v.field, v.description) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
    return call.code(), call.details(), violations, reason


def test_update_group_resolved_in_release_reads_back_version_and_actor(stub: Any, w: dict[str, Any]) -> None:
    f.release(w["project"], "1.0")
    g = f.group(w["project"])
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED, status_details=pb.StatusDetailsUpdate(in_release="1.0"))
    group = _update(stub, w, g.id, patch)
    assert group.status == group_pb2.GROUP_STATUS_RESOLVED
    assert group.status_details.in_release == "1.0"
    assert group.status_details.actor.id == w["user"].id
    assert group.activities[0].type == 13
    assert dict(group.activities[0].data) == {"version": "1.0"}


def test_bulk_next_release_reply_has_status_details_and_activities(stub: Any, w: dict[str, Any]) -> None:
    f.release(w["project"], "1.0")
    g = f.group(w["project"])
    reply = _bulk(stub, w, [g.id], pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED_IN_NEXT_RELEASE))
    assert reply.applied.status == pb.STATUS_UPDATE_RESOLVED  # echoed as resolved, as in Sentry
    assert reply.applied.status_details.in_next_release
    assert reply.applied.status_details.actor.id == w["user"].id
    assert [a.type for a in reply.applied.activities] == [13, 9]
    assert reply.applied.inbox == pb.INBOX_CHANGE_REMOVED
    assert GroupResolution.get(GroupResolution.group == g.id).status == 0


def test_next_release_without_releases_resolves_and_says_in_next_release(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    reply = _bulk(stub, w, [g.id], pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED_IN_NEXT_RELEASE))
    assert reply.applied.status_details.in_next_release
    assert Group.get_by_id(g.id).status == 1


def test_unknown_release_is_invalid_argument_at_its_field(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED, status_details=pb.StatusDetailsUpdate(in_release="9.9"))
    with pytest.raises(grpc.RpcError) as err:
        _bulk(stub, w, [g.id], patch)
    code, details, violations, _ = _refusal(err.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    message = "Unable to find a release with the given version."
    assert details == f"patch.status_details.in_release: {message}"
    assert violations == [("patch.status_details.in_release", message)]


def test_in_next_release_without_releases_is_invalid_argument(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    patch = pb.GroupPatch(
        status=pb.STATUS_UPDATE_RESOLVED,
        status_details=pb.StatusDetailsUpdate(in_next_release=False),
    )
    with pytest.raises(grpc.RpcError) as err:
        _update(stub, w, g.id, patch)
    code, _, violations, _ = _refusal(err.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations == [
        (
            "patch.status_details.in_next_release",
            "No release data present in the system to form a basis for 'Next Release'",
        )
    ]


def test_unknown_commit_repository_is_invalid_argument_at_its_field(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    commit = pb.InCommit(commit="abc", repository="nope")
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED, status_details=pb.StatusDetailsUpdate(in_commit=commit))
    with pytest.raises(grpc.RpcError) as err:
        _bulk(stub, w, [g.id], patch)
    _, _, violations, _ = _refusal(err.value)
    assert violations == [("patch.status_details.in_commit.repository", "Unable to find the given repository.")]


def test_resolve_in_commit_replies_with_the_commit(stub: Any, w: dict[str, Any]) -> None:
    c = f.commit(w["org"], key="deadbeef")
    g = f.group(w["project"])
    commit = pb.InCommit(commit="deadbeef", repository="acme/app")
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED, status_details=pb.StatusDetailsUpdate(in_commit=commit))
    reply = _bulk(stub, w, [g.id], patch)
    in_commit = reply.applied.status_details.in_commit
    assert (in_commit.id, in_commit.key, in_commit.repository) == (c.id, "deadbeef", "acme/app")
    assert list(reply.applied.activities) == []


def test_updates_of_a_group_resolved_in_a_commit_reply_with_the_commit(stub: Any, w: dict[str, Any]) -> None:
    # An update's reply is built after COMMIT: the commit used to be looked up then, with no
    # connection left, and the call answered INTERNAL for a change it had committed.
    c = f.commit(w["org"], key="0f9e8d7c")
    g = f.group(w["project"])
    commit = pb.InCommit(commit="0f9e8d7c", repository="acme/app")
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED, status_details=pb.StatusDetailsUpdate(in_commit=commit))
    resolved = _update(stub, w, g.id, patch)
    bookmarked = _update(stub, w, g.id, pb.GroupPatch(is_bookmarked=True))
    read = stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id),
                         metadata=metadata(user_id=w["user"].id)).group  # fmt: skip
    for group in (resolved, bookmarked, read):
        in_commit = group.status_details.in_commit
        assert (in_commit.id, in_commit.key, in_commit.repository) == (c.id, "0f9e8d7c", "acme/app")
    assert bookmarked.is_bookmarked


def test_release_resolution_across_projects_is_invalid_argument_and_changes_nothing(
    stub: Any, w: dict[str, Any]
) -> None:
    other = f.sibling_project(w)
    r = f.release(w["project"], "1.0")
    ReleaseProject.create(release=r, project=other)
    a, b = f.group(w["project"]), f.group(other)
    patch = pb.GroupPatch(
        status=pb.STATUS_UPDATE_RESOLVED,
        status_details=pb.StatusDetailsUpdate(in_release="1.0"),
        priority=group_pb2.PRIORITY_HIGH,
    )
    with pytest.raises(grpc.RpcError) as err:
        _bulk(stub, w, [a.id, b.id], patch)
    code, details, violations, reason = _refusal(err.value)
    assert (code, details, reason) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Cannot set resolved for multiple projects.",
        "MULTIPLE_PROJECTS",
    )
    assert violations == [("patch.status_details", "Only for issues of one project.")]
    assert {(g.status, g.priority) for g in Group.select()} == {(0, None)}


def test_top_level_ignore_count_archives_and_reads_back_remaining_count(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"], times_seen=5)
    reply = _bulk(stub, w, [g.id], pb.GroupPatch(status=pb.STATUS_UPDATE_IGNORED, ignore_count=10))
    assert reply.applied.status == pb.STATUS_UPDATE_IGNORED
    assert reply.applied.status_details.ignore_count == 10
    Group.update(times_seen=8).where(Group.id == g.id).execute()
    read = stub.GetGroup(pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id), metadata=metadata()).group
    assert read.status == group_pb2.GROUP_STATUS_IGNORED
    assert read.substatus == group_pb2.SUBSTATUS_ARCHIVED_UNTIL_CONDITION_MET
    assert read.status_details.ignore_count == 7


def test_ignore_duration_replies_with_ignore_until(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    details = pb.StatusDetailsUpdate(ignore_duration=60)
    reply = _bulk(stub, w, [g.id], pb.GroupPatch(status=pb.STATUS_UPDATE_IGNORED, status_details=details))
    until = GroupSnooze.get(GroupSnooze.group == g.id).until
    assert reply.applied.status_details.ignore_until.ToDatetime() == until


def test_window_above_a_week_is_invalid_argument(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    details = pb.StatusDetailsUpdate(ignore_count=1, ignore_window=10081)
    with pytest.raises(grpc.RpcError) as err:
        _bulk(stub, w, [g.id], pb.GroupPatch(status=pb.STATUS_UPDATE_IGNORED, status_details=details))
    code, details_text, _, _ = _refusal(err.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details_text == "patch.status_details.ignore_window: Ensure this value is less than or equal to 10080."
    assert Group.get_by_id(g.id).status == 0


def test_archive_until_escalating_by_substatus(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_IGNORED, substatus=group_pb2.SUBSTATUS_ARCHIVED_UNTIL_ESCALATING)
    group = _update(stub, w, g.id, patch)
    assert group.status == group_pb2.GROUP_STATUS_IGNORED
    assert group.substatus == group_pb2.SUBSTATUS_ARCHIVED_UNTIL_ESCALATING
    assert group.status_details.ignore_until_escalating


def test_unresolve_single_resolved_group_is_regressed(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"], status=1, substatus=None)
    group = _update(stub, w, g.id, pb.GroupPatch(status=pb.STATUS_UPDATE_UNRESOLVED))
    assert group.status == group_pb2.GROUP_STATUS_UNRESOLVED
    assert group.substatus == group_pb2.SUBSTATUS_REGRESSED
