"""§4.4 permissions: token scopes meet the member's role; project access by team, open membership
or a global role; every refusal is PERMISSION_DENIED naming what is missing."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from issues.v1 import issue_service_pb2 as pb

from server.core import update
from server.core.commands import Caller, Selection, UpdateCommand
from server.core.errors import NotFound, PermissionDenied
from server.storage.models import Group, GroupBookmark, Organization, OrganizationMember
from tests import factories as f
from tests.conftest import metadata

READ = frozenset({"event:read"})
WRITE = frozenset({"event:read", "event:write"})
ADMIN = frozenset({"event:read", "event:write", "event:admin"})


def caller(user_id: int | None, scopes: frozenset[str] = WRITE, orgs: Any = None) -> Caller:
    return Caller("test", scopes, user_id, orgs)


def resolve_bulk(who: Caller, org_id: int, ids: list[int], project_ids: tuple[int, ...] = ()) -> Any:
    spec = Selection(organization_id=org_id, group_ids=tuple(ids), project_ids=project_ids)
    return update.bulk_update(caller=who, selection_spec=spec, command=UpdateCommand(status="resolved"))


def statuses(*groups: Group) -> list[int]:
    return [Group.get_by_id(g.id).status for g in groups]


@pytest.fixture()
def world(database: str) -> dict[str, Any]:
    """Org with two projects: `mine` (the user's team) and `other` (another team's)."""
    o = f.org()
    mine, other = f.project(o), f.project(o)
    t = f.team(o, projects=(mine,))
    f.team(o, projects=(other,))
    u = f.user()
    f.member(o, u, teams=(t,))
    return {
        "org": o,
        "mine": mine,
        "other": other,
        "user": u,
        "g_mine": f.group(mine),
        "g_other": f.group(other),
    }


def test_a_read_only_token_cannot_update(world: dict[str, Any]) -> None:
    with pytest.raises(PermissionDenied, match=r"needs event:admin or event:write"):
        resolve_bulk(caller(None, READ), world["org"].id, [world["g_mine"].id])
    assert statuses(world["g_mine"]) == [0]


def test_a_read_only_token_can_read(world: dict[str, Any]) -> None:
    view = update.get_group(
        caller=caller(world["user"].id, READ),
        organization_id=world["org"].id,
        group_id=world["g_mine"].id,
    )
    assert view.id == world["g_mine"].id


def test_a_token_limited_to_another_organization_is_refused(world: dict[str, Any]) -> None:
    with pytest.raises(PermissionDenied, match="not allowed to act on this organization"):
        resolve_bulk(
            caller(None, WRITE, frozenset({world["org"].id + 1})),
            world["org"].id,
            [world["g_mine"].id],
        )
    assert statuses(world["g_mine"]) == [0]


def test_an_unknown_acting_user_is_refused(world: dict[str, Any]) -> None:
    with pytest.raises(PermissionDenied, match="Acting user is unknown") as info:
        resolve_bulk(caller(999_999), world["org"].id, [world["g_mine"].id])
    assert info.value.reason == "UNKNOWN_ACTING_USER"
    assert statuses(world["g_mine"]) == [0]


def test_an_inactive_user_is_refused(world: dict[str, Any]) -> None:
    world["user"].is_active = False
    world["user"].save()
    with pytest.raises(PermissionDenied, match="unknown or inactive"):
        resolve_bulk(caller(world["user"].id), world["org"].id, [world["g_mine"].id])


def test_a_user_who_is_not_a_member_is_refused(world: dict[str, Any]) -> None:
    outsider = f.user()
    with pytest.raises(PermissionDenied, match="not an active member") as info:
        update.get_group(caller=caller(outsider.id), organization_id=world["org"].id, group_id=world["g_mine"].id)
    assert info.value.reason == "NOT_A_MEMBER"


def test_a_deactivated_membership_is_refused(world: dict[str, Any]) -> None:
    OrganizationMember.update(is_active=False).execute()
    with pytest.raises(PermissionDenied, match="not an active member"):
        resolve_bulk(caller(world["user"].id), world["org"].id, [world["g_mine"].id])
    assert statuses(world["g_mine"]) == [0]


def test_a_billing_member_has_no_event_scope_even_with_an_admin_token(
    world: dict[str, Any],
) -> None:
    OrganizationMember.update(role="billing").execute()
    with pytest.raises(PermissionDenied, match=r"role 'billing' lacks a scope to read issues"):
        update.get_group(
            caller=caller(world["user"].id, ADMIN),
            organization_id=world["org"].id,
            group_id=world["g_mine"].id,
        )


def test_a_read_token_acting_for_a_member_still_cannot_write(world: dict[str, Any]) -> None:
    # Effective scopes are the intersection: the member's event:write does not widen the token.
    with pytest.raises(PermissionDenied, match="lacks a scope to update issues"):
        resolve_bulk(caller(world["user"].id, READ), world["org"].id, [world["g_mine"].id])


def test_members_lose_event_admin_when_the_org_turns_off_events_member_admin(
    world: dict[str, Any],
) -> None:
    Organization.update(events_member_admin=False).execute()
    spec = Selection(organization_id=world["org"].id, group_ids=(world["g_mine"].id,))
    with pytest.raises(PermissionDenied, match="permission to discard events"):
        update.bulk_update(
            caller=caller(world["user"].id, ADMIN),
            selection_spec=spec,
            command=UpdateCommand(discard=True),
        )


@pytest.mark.parametrize("role", ["member", "admin", "owner"])
def test_event_admin_survives_for_roles_that_grant_it(world: dict[str, Any], role: str) -> None:
    OrganizationMember.update(role=role).execute()
    spec = Selection(organization_id=world["org"].id, group_ids=(world["g_mine"].id,))
    # Past the scope check, discard itself is refused as unimplemented, not as forbidden.
    with pytest.raises(Exception) as info:
        update.bulk_update(
            caller=caller(world["user"].id, ADMIN),
            selection_spec=spec,
            command=UpdateCommand(discard=True),
        )
    assert not isinstance(info.value, PermissionDenied)


def test_a_group_in_a_project_without_team_access_looks_missing(world: dict[str, Any]) -> None:
    with pytest.raises(NotFound) as hidden:
        update.get_group(
            caller=caller(world["user"].id),
            organization_id=world["org"].id,
            group_id=world["g_other"].id,
        )
    with pytest.raises(NotFound) as missing:
        update.get_group(caller=caller(world["user"].id), organization_id=world["org"].id, group_id=10**12)
    assert (hidden.value.message, hidden.value.reason) == (
        missing.value.message,
        missing.value.reason,
    )


def test_a_single_update_of_an_inaccessible_group_changes_nothing(world: dict[str, Any]) -> None:
    with pytest.raises(NotFound, match="Issue not found"):
        update.update_group(
            caller=caller(world["user"].id),
            organization_id=world["org"].id,
            group_id=world["g_other"].id,
            command=UpdateCommand(status="resolved"),
        )
    assert statuses(world["g_other"]) == [0]


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_global_roles_reach_every_project(world: dict[str, Any], role: str) -> None:
    OrganizationMember.update(role=role).execute()
    resolve_bulk(caller(world["user"].id), world["org"].id, [world["g_mine"].id, world["g_other"].id])
    assert statuses(world["g_mine"], world["g_other"]) == [1, 1]


def test_the_admin_role_needs_a_team_like_a_member(world: dict[str, Any]) -> None:
    OrganizationMember.update(role="admin").execute()
    resolve_bulk(caller(world["user"].id), world["org"].id, [world["g_mine"].id, world["g_other"].id])
    assert statuses(world["g_mine"], world["g_other"]) == [1, 0]


def test_open_membership_reaches_every_project(world: dict[str, Any]) -> None:
    Organization.update(allow_joinleave=True).execute()
    view = update.get_group(
        caller=caller(world["user"].id),
        organization_id=world["org"].id,
        group_id=world["g_other"].id,
    )
    assert view.id == world["g_other"].id


def test_bulk_treats_groups_in_inaccessible_projects_as_out_of_scope(world: dict[str, Any]) -> None:
    result = resolve_bulk(caller(world["user"].id), world["org"].id, [world["g_mine"].id, world["g_other"].id])
    assert result.matched_group_ids == [world["g_mine"].id]
    assert statuses(world["g_mine"], world["g_other"]) == [1, 0]


def test_bulk_on_only_inaccessible_groups_finds_none(world: dict[str, Any]) -> None:
    with pytest.raises(NotFound, match="No groups found"):
        resolve_bulk(caller(world["user"].id), world["org"].id, [world["g_other"].id])
    assert statuses(world["g_other"]) == [0]


def test_bulk_naming_an_inaccessible_project_is_forbidden(world: dict[str, Any]) -> None:
    with pytest.raises(PermissionDenied, match="access to the requested project") as info:
        resolve_bulk(
            caller(world["user"].id),
            world["org"].id,
            [world["g_mine"].id],
            project_ids=(world["mine"].id, world["other"].id),
        )
    assert info.value.metadata == {"projectId": str(world["other"].id)}
    assert statuses(world["g_mine"]) == [0]


def test_a_user_without_any_team_sees_no_groups(world: dict[str, Any]) -> None:
    loner = f.user()
    f.member(world["org"], loner)
    with pytest.raises(NotFound, match="No groups found"):
        resolve_bulk(caller(loner.id), world["org"].id, [world["g_mine"].id, world["g_other"].id])


def test_a_token_without_acting_user_reaches_every_project(world: dict[str, Any]) -> None:
    resolve_bulk(caller(None), world["org"].id, [world["g_mine"].id, world["g_other"].id])
    assert statuses(world["g_mine"], world["g_other"]) == [1, 1]


def test_refusals_reach_grpc_clients_as_permission_denied(stub: Any) -> None:
    o = f.org()
    p = f.project(o)
    u = f.user()
    f.member(o, u, role="billing")
    g = f.group(p)
    request = pb.BulkUpdateGroupsRequest(
        organization_id=o.id, group_ids=[g.id], patch=pb.GroupPatch(is_bookmarked=True)
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.BulkUpdateGroups(request, metadata=metadata("admin", user_id=u.id), timeout=10)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "role 'billing' lacks a scope to update issues" in info.value.details()
    assert GroupBookmark.select().count() == 0


@pytest.mark.parametrize("user_id", [999_999, 0])
def test_an_unknown_acting_user_is_permission_denied_over_grpc(stub: Any, user_id: int) -> None:
    w = f.world()
    g = f.group(w["project"])
    request = pb.GetGroupRequest(organization_id=w["org"].id, group_id=g.id)
    with pytest.raises(grpc.RpcError) as info:
        stub.GetGroup(request, metadata=metadata("reader", user_id=user_id), timeout=10)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert info.value.details() == "Acting user is unknown or inactive"


def test_a_search_selection_only_reaches_accessible_projects(world: dict[str, Any]) -> None:
    spec = Selection(organization_id=world["org"].id, query="is:unresolved")
    result = update.bulk_update(
        caller=caller(world["user"].id),
        selection_spec=spec,
        command=UpdateCommand(status="resolved"),
    )
    assert result.matched_group_ids == [world["g_mine"].id]
    assert statuses(world["g_mine"], world["g_other"]) == [1, 0]


def test_a_streamed_search_only_reaches_accessible_projects(world: dict[str, Any]) -> None:
    spec = Selection(organization_id=world["org"].id, query="")
    pages = list(
        update.bulk_update_chunks(
            caller=caller(world["user"].id),
            selection_spec=spec,
            command=UpdateCommand(status="resolved"),
        )
    )
    assert [gid for page in pages for gid in page.matched_group_ids] == [world["g_mine"].id]
    assert statuses(world["g_mine"], world["g_other"]) == [1, 0]


@pytest.mark.parametrize("user", ["system", "member"])
def test_bulk_naming_a_project_outside_the_organization_is_forbidden(world: dict[str, Any], user: str) -> None:
    """Also for a caller who sees the whole organization: an id that is no project of it is
    refused as an inaccessible one is, not read as "no issues" (Sentry's get_projects)."""
    elsewhere = f.project(f.org())
    who = caller(None if user == "system" else world["user"].id)
    for project_id in (elsewhere.id, 987_654_321):
        with pytest.raises(PermissionDenied, match="access to the requested project") as info:
            resolve_bulk(who, world["org"].id, [world["g_mine"].id], project_ids=(world["mine"].id, project_id))
        assert info.value.metadata == {"projectId": str(project_id)}
    assert statuses(world["g_mine"]) == [0]
