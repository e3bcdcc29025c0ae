"""ListGroups over gRPC: the bulk's search language, GetGroup's issues, keyset pages, access."""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
import pytest
from issues.v1 import issue_service_pb2 as pb

from server.storage.models import Environment, GroupAssignee, Project, utcnow
from tests import factories as f
from tests.conftest import metadata
from tests.server.test_bulk_rpc import violations


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    return f.world()


def _list(stub: Any, w: dict, *, user: bool = True, token: str = "reader", **kw: Any) -> pb.ListGroupsResponse:
    request = pb.ListGroupsRequest(organization_id=w["org"].id, **kw)
    return stub.ListGroups(request, metadata=metadata(token, w["user"].id if user else None))


def _refused(stub: Any, w: dict, **kw: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _list(stub, w, **kw)
    return caught.value


def _seen(w: dict, hours_ago: int, **kw: Any) -> Any:
    return f.group(w["project"], last_seen=utcnow() - dt.timedelta(hours=hours_ago), **kw)


def test_lists_unresolved_issues_assigned_to_me_as_get_group_shows_them(stub: Any, w: dict) -> None:
    mine_old, mine_new, other = _seen(w, 5), _seen(w, 1), _seen(w, 2)
    _seen(w, 3, status=1, substatus=None)  # resolved: not listed
    for g in (mine_old, mine_new):
        GroupAssignee.create(group=g, project=w["project"], user=w["user"])
    GroupAssignee.create(group=other, project=w["project"], team=w["team"])
    reply = _list(stub, w, query="is:unresolved assigned:me")
    assert [g.id for g in reply.groups] == [mine_new.id, mine_old.id]  # last seen, newest first
    assert (reply.total_size, reply.next_page_token) == (2, "")
    get = pb.GetGroupRequest(organization_id=w["org"].id, group_id=mine_new.id)
    full = stub.GetGroup(get, metadata=metadata("reader", w["user"].id)).group
    assert len(full.activities) == 1
    del full.activities[:]
    assert reply.groups[0] == full


def test_activities_only_when_asked(stub: Any, w: dict) -> None:
    g = _seen(w, 1)
    stub.UpdateGroup(pb.UpdateGroupRequest(organization_id=w["org"].id, group_id=g.id,
                                           patch=pb.GroupPatch(status=pb.STATUS_UPDATE_IGNORED)),
                     metadata=metadata("writer", w["user"].id))  # fmt: skip
    assert list(_list(stub, w, query="").groups[0].activities) == []
    listed = _list(stub, w, query="", include_activities=True).groups[0]
    get = pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id)
    assert listed == stub.GetGroup(get, metadata=metadata("reader", w["user"].id)).group
    assert len(listed.activities) == 2


def test_pages_follow_the_sort_and_end_with_an_empty_token(stub: Any, w: dict) -> None:
    groups = [f.group(w["project"], times_seen=n) for n in (5, 50, 7, 50, 1)]
    expected = [groups[3].id, groups[1].id, groups[2].id, groups[0].id, groups[4].id]  # ties: id desc
    seen: list[int] = []
    token = ""
    while True:
        reply = _list(stub, w, sort=pb.SORT_FREQ, page_size=2, page_token=token)
        assert reply.total_size == 5
        seen += [g.id for g in reply.groups]
        token = reply.next_page_token
        if not token:
            break
    assert seen == expected


def test_page_size_defaults_to_25_and_must_be_between_1_and_100(stub: Any, w: dict) -> None:
    for _ in range(26):
        f.group(w["project"])
    first = _list(stub, w)
    assert (len(first.groups), first.total_size, bool(first.next_page_token)) == (25, 26, True)
    assert len(_list(stub, w, page_size=100).groups) == 26
    for bad in (-1, 101):
        err = _refused(stub, w, page_size=bad)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(err) == [("page_size", "Must be between 1 and 100 (0 means 25).")]


def test_a_token_is_bound_to_its_query_sort_projects_and_environments(stub: Any, w: dict) -> None:
    for _ in range(3):
        f.group(w["project"])
    token = _list(stub, w, page_size=1).next_page_token
    assert _list(stub, w, page_size=1, page_token=token).groups  # the same request continues
    Environment.create(organization=w["org"], name="production")
    for other in ({"query": ""}, {"sort": pb.SORT_NEW}, {"environments": ["production"]}, {"page_token": "x"}):
        err = _refused(stub, w, page_size=1, **{"page_token": token, **other})
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations(err) == [("page_token", "Invalid cursor parameter.")]
    # Projects bind too (a member's empty project_ids already means "my projects", so no user here).
    token = _list(stub, w, page_size=1, user=False).next_page_token
    err = _refused(stub, w, page_size=1, page_token=token, user=False, project_ids=[w["project"].id])
    assert violations(err) == [("page_token", "Invalid cursor parameter.")]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("assigned:me foo:bar", 'unknown key "foo" at position 12'),
        ("is:unresolved OR is:ignored", '"OR" at position 14'),
        ("(is:unresolved", '"(" at position 0'),
    ],
)
def test_an_invalid_query_is_refused_as_the_bulk_refuses_it(stub: Any, w: dict, query: str, problem: str) -> None:
    err = _refused(stub, w, query=query)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = violations(err)
    assert field == "query" and problem in description


def test_the_list_is_exactly_what_the_bulk_would_select(stub: Any, w: dict) -> None:
    high = [f.group(w["project"], priority=75) for _ in range(3)]
    f.group(w["project"], priority=25)
    f.group(w["project"], priority=75, status=3, substatus=None)  # pending deletion: never listed
    query = "priority:high"
    listed = _list(stub, w, query=query)
    request = pb.BulkUpdateGroupsRequest(organization_id=w["org"].id, query=query, validate_only=True,
                                         patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED))  # fmt: skip
    bulk = stub.BulkUpdateGroups(request, metadata=metadata("writer", w["user"].id))
    assert sorted(g.id for g in listed.groups) == sorted(bulk.matched_group_ids) == [g.id for g in high]
    assert listed.total_size == bulk.matched_count == 3


def test_nothing_matching_is_an_empty_page_and_an_unknown_environment_not_found(stub: Any, w: dict) -> None:
    f.group(w["project"])
    reply = _list(stub, w, query="is:resolved")
    assert (list(reply.groups), reply.total_size, reply.next_page_token) == ([], 0, "")
    Environment.create(organization=w["org"], name="production")
    assert _list(stub, w, environments=["production"]).total_size == 0
    err = _refused(stub, w, environments=["staging"])
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "Environment not found" in err.details()


def test_projects_the_member_cannot_read_are_left_out_and_refused_by_name(stub: Any, w: dict) -> None:
    visible = f.group(w["project"])
    hidden_project = Project.create(organization=w["org"], slug="secret", name="Secret")
    f.group(hidden_project)
    reply = _list(stub, w, query="")
    assert ([g.id for g in reply.groups], reply.total_size) == ([visible.id], 1)
    err = _refused(stub, w, project_ids=[hidden_project.id])
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _list(stub, w, query="", user=False).total_size == 2  # a token without a user sees all


def test_other_organizations_and_unknown_tokens_are_refused(stub: Any, w: dict) -> None:
    other = f.org()
    f.group(f.project(other))
    err = _refused(stub, {**w, "org": other})
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED  # the acting user is not a member there
    with pytest.raises(grpc.RpcError) as caught:
        stub.ListGroups(pb.ListGroupsRequest(organization_id=w["org"].id),
                        metadata=(("authorization", "Bearer nope"),))  # fmt: skip
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("who", ["system", "member"])
def test_naming_a_project_outside_the_organization_is_permission_denied(stub: Any, w: dict, who: str) -> None:
    # As an inaccessible project of the organization, not an empty page (Sentry's get_projects):
    # another organization's project and an id that is no project at all.
    elsewhere = f.world()["project"].id
    for project_id in (elsewhere, 987_654_321):
        err = _refused(stub, w, user=who == "member", project_ids=[w["project"].id, project_id])
        assert (err.code(), err.details()) == (
            grpc.StatusCode.PERMISSION_DENIED, "You do not have access to the requested project",
        )  # fmt: skip
