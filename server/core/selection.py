"""Which groups a call acts on (§3.1): scoped to the organization and projects, locked by id."""

from __future__ import annotations

from server.core.commands import Caller, Selection
from server.core.enums import HIDDEN_STATUSES, GroupStatus
from server.core.errors import InvalidArgument, NotFound, PermissionDenied, Unimplemented
from server.db import is_postgres
from server.models import Group, GroupRedirect, Organization, Project

MAX_IDS = 1000  # Sentry's BULK_MUTATION_LIMIT, enforced here on explicit ids too
NO_GROUPS = "No groups found"


def organization(*, caller: Caller, organization_id: int) -> Organization:
    if caller.organization_ids is not None and organization_id not in caller.organization_ids:
        raise PermissionDenied(
            "Token is not allowed to act on this organization",
            reason="ORGANIZATION_NOT_ALLOWED",
            organizationId=str(organization_id),
        )
    org = Organization.get_or_none(Organization.id == organization_id)
    if org is None:
        raise NotFound("Organization not found", reason="ORGANIZATION_NOT_FOUND",
                       organizationId=str(organization_id))  # fmt: skip
    return org


def _scoped(org: Organization, project_ids: tuple[int, ...] = ()) -> Project:
    projects = Project.select(Project.id).where(Project.organization == org.id)
    if project_ids:
        projects = projects.where(Project.id.in_(list(project_ids)))
    return projects


def lock_groups(ids: list[int]) -> list[Group]:
    """Load groups ordered by id; FOR UPDATE on PostgreSQL (SQLite's IMMEDIATE already excludes)."""
    query = Group.select().where(Group.id.in_(ids)).order_by(Group.id)
    if is_postgres():
        query = query.for_update()
    return list(query)


def single(*, org: Organization, group_id: int) -> Group:
    """One group of the organization; a merged-away id is followed to the group it merged into."""
    found = lock_groups(_ids_in_scope(org, [group_id]))
    # A merged child stays PENDING_MERGE until deleted; it redirects like a gone one (§5 item 20).
    if not found or found[0].status == GroupStatus.PENDING_MERGE:
        redirect = GroupRedirect.get_or_none(
            (GroupRedirect.previous_group_id == group_id) & (GroupRedirect.organization == org.id)
        )
        if redirect is not None:
            found = lock_groups(_ids_in_scope(org, [redirect.group_id]))
    if not found or found[0].status in HIDDEN_STATUSES:
        raise NotFound("Issue not found", reason="GROUP_NOT_FOUND", groupId=str(group_id))
    return found[0]


def _ids_in_scope(org: Organization, ids: list[int], project_ids: tuple[int, ...] = ()) -> list[int]:
    query = Group.select(Group.id).where(Group.id.in_(ids) & Group.project.in_(_scoped(org, project_ids)))
    return [g.id for g in query]


def bulk(*, org: Organization, selection: Selection) -> list[Group]:
    """Groups selected by explicit ids; ids out of scope are ignored, as in Sentry."""
    if selection.query is not None or not selection.group_ids:
        raise Unimplemented("selection by search query is not implemented yet",
                            reason="QUERY_UNIMPLEMENTED", field="query")  # fmt: skip
    if len(selection.group_ids) > MAX_IDS:
        raise InvalidArgument.field("group_ids", f"Ensure this field has no more than {MAX_IDS} elements.")
    ids = sorted(set(selection.group_ids))
    found = lock_groups(_ids_in_scope(org, ids, selection.project_ids))
    if not found:
        raise NotFound(NO_GROUPS, reason="NO_GROUPS_FOUND")
    return found


def projects_of(groups: list[Group]) -> dict[int, Project]:
    ids = sorted({g.project_id for g in groups})
    return {p.id: p for p in Project.select().where(Project.id.in_(ids))}
