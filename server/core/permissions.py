"""Who may do what (§4.4): token scopes meet the acting member's role; projects by team or role."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from server.core.access_sql import GLOBAL_ACCESS_ROLES, AccessRow
from server.core.commands import ADMIN_SCOPES, READ_SCOPES, Caller, Selection
from server.core.errors import NotFound, PermissionDenied
from server.storage.models import Group, Organization, Project, User

ALL_EVENT_SCOPES = READ_SCOPES
# Sentry's default org roles (SENTRY_ROLES); "member" loses event:admin when the org turns off
# sentry:events_member_admin, and "billing" has no event scope at all.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "member": ALL_EVENT_SCOPES,
    "admin": ALL_EVENT_SCOPES,
    "manager": ALL_EVENT_SCOPES,
    "owner": ALL_EVENT_SCOPES,
    "billing": frozenset(),
}


@dataclass(frozen=True)
class Access:
    """The caller as the core should see it: effective scopes and the projects it may touch."""

    caller: Caller
    project_ids: frozenset[int] | None  # None: every project of the organization
    role: str | None = None  # the acting member's org role; None for a token without a user
    user: User | None = None  # the acting user, already loaded by the membership check


def authorize(*, caller: Caller, row: AccessRow, needs: frozenset[str], what: str) -> Access:
    """Effective scopes = token scopes ∩ the acting member's role scopes; refuse if none fits.

    `row` holds the organization (checked by the caller), acting user and membership, read in
    one statement (access_sql)."""
    assert row.org is not None  # selection.organization refused a missing one
    if caller.user_id is None:
        access = Access(caller=caller, project_ids=None)
    else:
        access = _member_access(caller=caller, org=row.org, row=row)
    if not (access.caller.scopes & needs):
        needed = " or ".join(sorted(needs))
        who = "Token" if access.role is None else f"Token with the acting user's role {access.role!r}"
        raise PermissionDenied(f"{who} lacks a scope to {what} (needs {needed})", reason="MISSING_SCOPE")
    return access


def _member_access(*, caller: Caller, org: Organization, row: AccessRow) -> Access:
    user, member = row.user, row.member
    if user is None or not user.is_active:
        raise PermissionDenied(
            "Acting user is unknown or inactive",
            reason="UNKNOWN_ACTING_USER",
            userId=str(caller.user_id),
        )
    if member is None or not member.is_active:
        raise PermissionDenied(
            "Acting user is not an active member of this organization",
            reason="NOT_A_MEMBER",
            userId=str(user.id),
        )
    scopes = role_scopes(role=member.role, org=org)
    effective = caller.with_scopes(caller.scopes & scopes)
    # None when the member sees the whole organization (open membership or a global role).
    whole_org = org.allow_joinleave or member.role in GLOBAL_ACCESS_ROLES
    projects = None if whole_org else row.team_project_ids
    return Access(caller=effective, project_ids=projects, role=member.role, user=user)


def role_scopes(*, role: str, org: Organization) -> frozenset[str]:
    scopes = ROLE_SCOPES.get(role, frozenset())  # an unknown role grants nothing: fail closed
    if role == "member" and not org.events_member_admin:
        scopes = scopes - ADMIN_SCOPES
    return scopes


def check_group(*, access: Access, group: Group, group_id: int) -> None:
    """A group in a project the caller cannot access looks exactly like a missing one."""
    if access.project_ids is not None and group.project_id not in access.project_ids:
        raise NotFound("Issue not found", reason="GROUP_NOT_FOUND", groupId=str(group_id))


def scope_selection(*, access: Access, spec: Selection) -> Selection:
    """Limit a bulk selection to accessible projects; an explicit inaccessible project is a 403."""
    check_requested_projects(access=access, organization_id=spec.organization_id, project_ids=spec.project_ids)
    if access.project_ids is None:
        return spec
    if spec.project_ids:
        return spec
    # An empty tuple would mean "every project" downstream; no accessible project means no groups.
    allowed = tuple(sorted(access.project_ids)) or (0,)
    return dataclasses.replace(spec, project_ids=allowed)


def check_requested_projects(*, access: Access, organization_id: int, project_ids: Iterable[int]) -> None:
    """Every project named explicitly must be one the caller may read, or PERMISSION_DENIED.

    As Sentry's get_projects: an id that is no project of this organization (another
    organization's, or none at all) is refused like an inaccessible one, not read as "no
    issues". A member's accessible projects are all of this organization; a caller who sees the
    whole organization costs one statement, and only when it names projects.
    """
    wanted = set(project_ids)
    if not wanted:
        return
    if access.project_ids is not None:
        denied = wanted - access.project_ids
    else:
        named = Project.id.in_(sorted(wanted))
        in_org = Project.select(Project.id).where(Project.organization == organization_id, named)
        denied = wanted - {int(project.id) for project in in_org}
    if denied:
        raise PermissionDenied(
            "You do not have access to the requested project",
            reason="PROJECT_ACCESS_DENIED",
            projectId=str(min(denied)),
        )
