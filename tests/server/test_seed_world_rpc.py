"""A whole world in one fixture (docs/seed-format.md): the rows the update path reads, loaded by
the seed loader and then read and changed through gRPC (issue 14 points 5, 6 and 9)."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from issues.v1 import issue_service_pb2 as pb

from server.fixtures import seed
from server.storage.models import Group, GroupHistory, GroupLink, GroupSeen, GroupShare, Repository
from tests.conftest import metadata
from tests.server.test_bulk_rpc import violations

WORLD: dict[str, Any] = {
    "organizations": [{"id": 71, "slug": "seeded", "name": "Seeded"}],
    "users": [{"id": 71, "username": "seeder", "email": "seeder@example.com", "name": "Seeder"}],
    "teams": [{"id": 71, "organization": 71, "slug": "core", "name": "Core"}],
    "projects": [{"id": 71, "organization": 71, "slug": "api", "name": "API"}],
    "project_teams": [{"project": 71, "team": 71}],
    "members": [{"organization": 71, "user": 71, "role": "owner", "teams": [71]}],
    "releases": [{"id": 71, "organization": 71, "version": "api@1.0.0", "projects": [71]}],
    "repositories": [
        {"id": 71, "organization": 71, "name": "acme/app", "provider": "integrations:github", "external_id": "11"},
        {"id": 72, "organization": 71, "name": "acme/app", "provider": "integrations:gitlab", "external_id": "11"},
    ],
    "commits": [{"id": 71, "organization": 71, "repository": 72, "key": "beef", "releases": [71]}],
    "groups": [
        {"id": 71, "project": 71, "title": "error", "status": 1, "substatus": None, "first_seen": "-3d"},
        {"id": 72, "project": 71, "title": "latency", "type": "metric_issue", "first_seen": "-3d"},
        {"id": 73, "project": 71, "title": "n+1", "type": 1006, "first_seen": "-3d"},
    ],
    "shares": [{"group": 71, "uuid": "0123456789abcdef0123456789abcdef", "user": 71}],
    "seen": [{"group": 71, "user": 71, "last_seen": "-1h"}],
    "history": [{"id": 71, "group": 71, "status": 1, "user_id": 71, "date_added": "-2h"}],
    "links": [{"group": 71, "commit": 71}],
}


@pytest.fixture()
def world(database: str) -> dict[str, Any]:
    seed.load(WORLD)
    return WORLD


def _get(stub: Any, group_id: int) -> Any:
    request = pb.GetGroupRequest(organization_id=71, group_id=group_id)
    return stub.GetGroup(request, metadata=metadata(user_id=71)).group


def test_seeded_shares_seen_markers_and_commit_links_are_read_back(stub: Any, world: dict) -> None:
    group = _get(stub, 71)
    assert (group.is_public, group.share_id, group.has_seen) == (True, "0123456789abcdef0123456789abcdef", True)
    assert (group.status_details.in_commit.key, group.status_details.in_commit.repository) == ("beef", "acme/app")
    share, seen = GroupShare.get(), GroupSeen.get()
    assert (share.project_id, seen.project_id) == (71, 71)
    link = GroupLink.get()
    assert (link.linked_type, link.linked_id, link.relationship, link.project_id) == (1, 71, 1, 71)


def test_seeded_history_is_the_previous_row_of_the_next_change(stub: Any, world: dict) -> None:
    assert GroupHistory.get_by_id(71).organization_id == 71  # filled from the group
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_UNRESOLVED)
    stub.UpdateGroup(pb.UpdateGroupRequest(organization_id=71, group_id=71, patch=patch), metadata=metadata(user_id=71))
    newest = GroupHistory.select().order_by(GroupHistory.date_added.desc()).get()
    assert (newest.id != 71, newest.prev_history_id) == (True, 71)  # links back to the seeded row


def test_seeded_types_have_sentrys_categories(stub: Any, world: dict) -> None:
    metric, perf = _get(stub, 72), _get(stub, 73)
    assert (metric.issue_category, metric.issue_type) == ("metric_alert", "metric_issue")
    assert (perf.issue_category, perf.issue_type) == ("performance", "performance_n_plus_one_db_queries")
    assert Group.get_by_id(72).type == 8001


@pytest.mark.parametrize("status", [pb.STATUS_UPDATE_RESOLVED, pb.STATUS_UPDATE_RESOLVED_IN_NEXT_RELEASE])
def test_resolving_a_metric_issue_by_hand_is_refused_as_a_whole(stub: Any, world: dict, status: int) -> None:
    request = pb.BulkUpdateGroupsRequest(organization_id=71, group_ids=[72, 73], patch=pb.GroupPatch(status=status))
    with pytest.raises(grpc.RpcError) as caught:
        stub.BulkUpdateGroups(request, metadata=metadata(user_id=71))
    err = caught.value
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "Cannot manually resolve one or more issues."  # Sentry's detail
    assert violations(err) == [("patch.status", "Cannot manually resolve one or more issues.")]
    assert [g.status for g in Group.select().where(Group.id.in_([72, 73])).order_by(Group.id)] == [0, 0]


def test_a_metric_issue_may_still_be_archived_and_others_resolved(stub: Any, world: dict) -> None:
    ignore = pb.GroupPatch(status=pb.STATUS_UPDATE_IGNORED)
    stub.BulkUpdateGroups(pb.BulkUpdateGroupsRequest(organization_id=71, group_ids=[72], patch=ignore),
                          metadata=metadata(user_id=71))  # fmt: skip
    resolve = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED)
    stub.BulkUpdateGroups(pb.BulkUpdateGroupsRequest(organization_id=71, group_ids=[73], patch=resolve),
                          metadata=metadata(user_id=71))  # fmt: skip
    assert (Group.get_by_id(72).status, Group.get_by_id(73).status) == (2, 1)


def test_in_commit_finds_the_commit_in_the_second_repository_of_that_name(stub: Any, world: dict) -> None:
    assert Repository.select().where(Repository.name == "acme/app").count() == 2
    details = pb.StatusDetailsUpdate(in_commit=pb.InCommit(commit="beef", repository="acme/app"))
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED, status_details=details)
    reply = stub.BulkUpdateGroups(pb.BulkUpdateGroupsRequest(organization_id=71, group_ids=[73], patch=patch),
                                  metadata=metadata(user_id=71))  # fmt: skip
    assert reply.applied.status_details.in_commit.id == 71
    missing = pb.StatusDetailsUpdate(in_commit=pb.InCommit(commit="cafe", repository="acme/app"))
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED, status_details=missing)
    with pytest.raises(grpc.RpcError) as caught:
        stub.BulkUpdateGroups(pb.BulkUpdateGroupsRequest(organization_id=71, group_ids=[73], patch=patch),
                              metadata=metadata(user_id=71))  # fmt: skip
    assert violations(caught.value) == [("patch.status_details.in_commit.commit", "Unable to find the given commit.")]


def test_an_unknown_type_slug_names_the_record(database: str) -> None:
    bad = {**WORLD, "groups": [{"id": 79, "project": 71, "type": "metric"}]}
    with pytest.raises(seed.SeedError, match=r"groups\[0\] \(id 79\)\.type: unknown issue type 'metric'"):
        seed.load(bad)
