"""Which groups a call acts on (§3.1): scoped to the organization and projects, locked by id."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from server.core import reads
from server.core.access_sql import AccessRow, load_access
from server.core.commands import Caller, Selection
from server.core.context import GroupOutcome
from server.core.enums import HIDDEN_STATUSES, GroupStatus
from server.core.errors import InvalidArgument, NotFound, PermissionDenied
from server.core.search import paging
from server.core.search.bounds import check_ids
from server.core.search.compile import MAX_ENVIRONMENTS, MAX_PROJECTS, Scope, all_of, conditions
from server.core.search.parser import DEFAULT_QUERY, parse
from server.storage.db import is_postgres
from server.storage.models import Environment, Group, Organization, Project

MAX_IDS = 1000  # Sentry's BULK_MUTATION_LIMIT, enforced here on explicit ids too
NO_GROUPS = "No groups found"
# Groups an explicit id may name but no update touches; reported as skipped with this reason.
SKIP_REASONS: dict[int, str] = {
    GroupStatus.PENDING_DELETION: "pending deletion",
    GroupStatus.DELETION_IN_PROGRESS: "pending deletion",
    GroupStatus.PENDING_MERGE: "merged into another issue",
}


def organization(*, caller: Caller, organization_id: int, user_id: int | None = None, group_id: int | None = None,
                 group: str = "") -> AccessRow:  # fmt: skip
    """The organization with the caller's membership (and the group, access_sql) in one read."""
    if caller.organization_ids is not None and organization_id not in caller.organization_ids:
        raise PermissionDenied(
            "Token is not allowed to act on this organization",
            reason="ORGANIZATION_NOT_ALLOWED",
            organizationId=str(organization_id),
        )
    row = load_access(organization_id=organization_id, user_id=user_id, group_id=group_id, group=group)
    if row.org is None:
        raise NotFound("Organization not found", reason="ORGANIZATION_NOT_FOUND",
                       organizationId=str(organization_id))  # fmt: skip
    return row


def found_group(row: AccessRow, *, group_id: int) -> Group:
    """The group access_sql found (redirect followed); hidden or missing ones are NOT_FOUND."""
    if row.group is None or row.group.status in HIDDEN_STATUSES:
        raise NotFound("Issue not found", reason="GROUP_NOT_FOUND", groupId=str(group_id))
    return row.group


def lock_groups(ids: list[int], *, org: Organization | None = None, project_ids: tuple[int, ...] = ()) -> list[Group]:
    """Load groups ordered by id; FOR UPDATE on PostgreSQL (SQLite's IMMEDIATE already excludes).

    With `org` only the groups in its projects (or in project_ids of it), in the same statement.
    """
    return reads.select_groups(
        ids,
        organization_id=org.id if org is not None else None,
        project_ids=project_ids,
        for_update=is_postgres(),
    )


@dataclass
class Selected:
    """The groups a bulk call acts on (locked, by id) and what it reports about the rest."""

    groups: list[Group]
    skipped: list[GroupOutcome] = field(default_factory=list)
    matched_count: int = 0
    truncated: bool = False
    next_page_token: str = ""


def bulk(*, org: Organization, selection: Selection, actor_id: int | None, now: dt.datetime) -> Selected:
    """Groups selected by explicit ids, or else by a search query one page at a time."""
    # Bounded before any statement binds them (the transport's edge limits say the same).
    check_ids(selection.project_ids, field="project_ids", limit=MAX_PROJECTS)
    check_ids(selection.environments, field="environments", limit=MAX_ENVIRONMENTS)
    if not selection.group_ids:
        return _by_query(selection, scope=scope_of(org=org, selection=selection, actor_id=actor_id), now=now)
    _environments(org, selection.environments)  # an unknown name is refused with ids too
    if selection.query is not None:
        raise InvalidArgument.field("query", "Send either group_ids or query, not both.")
    if selection.page_token:
        raise InvalidArgument.field("page_token", "A page token continues a search selection only.")
    return _by_ids(org, selection)


def _by_ids(org: Organization, selection: Selection) -> Selected:
    """Ids out of scope are ignored, as in Sentry; ids pending deletion or merge are skipped."""
    if len(selection.group_ids) > MAX_IDS:
        raise InvalidArgument.field("group_ids", f"Ensure this field has no more than {MAX_IDS} elements.")
    ids = sorted(set(selection.group_ids))
    found = lock_groups(ids, org=org, project_ids=selection.project_ids)
    if not found:
        raise NotFound(NO_GROUPS, reason="NO_GROUPS_FOUND")
    skipped = [GroupOutcome(g.id, "skipped", SKIP_REASONS[g.status]) for g in found if g.status in SKIP_REASONS]
    groups = [g for g in found if g.status not in SKIP_REASONS]
    return Selected(groups, skipped, matched_count=len(found))


def _environments(org: Organization, names: tuple[str, ...]) -> tuple[int, ...]:
    """Environment ids by name; an unknown name is NOT_FOUND (Sentry's organization endpoint)."""
    if not names:
        return ()
    in_org = Environment.organization == org.id
    # A NUL cannot be in a name and PostgreSQL refuses it in a parameter: such a name is unknown.
    valid = sorted({n for n in names if "\x00" not in n})
    rows = Environment.select().where(in_org & Environment.name.in_(valid))
    found = {e.name: e.id for e in rows}
    missing = sorted(set(names) - set(found))
    if missing:
        raise NotFound("Environment not found", reason="ENVIRONMENT_NOT_FOUND", environment=missing[0])
    return tuple(sorted(found.values()))


def scope_of(*, org: Organization, selection: Selection, actor_id: int | None) -> Scope:
    """Where a search looks; an unknown environment name is NOT_FOUND."""
    environment_ids = _environments(org, selection.environments)
    return Scope(org.id, actor_id, selection.project_ids, environment_ids)


@dataclass
class Page:
    """One keyset page of a search: ids in order, every match counted, the continuation."""

    ids: list[int]
    matched_count: int
    next_page_token: str


def search(selection: Selection, *, scope: Scope, now: dt.datetime, size: int, count_empty: bool = True) -> Page:
    """The page of at most `size` ids after the selection's token (one statement) and the total
    count (one more; skipped for an empty page unless count_empty). Bulk and list share it."""
    text = DEFAULT_QUERY if selection.query is None else selection.query
    matching = conditions(parse(text, now=now), scope=scope)
    bound = paging.fingerprint(selection, query=text)
    where = list(matching)
    if selection.page_token:
        cursor = paging.decode(selection.page_token, fingerprint=bound, sort=selection.sort)
        where.append(paging.after(cursor, sort=selection.sort))
    key = paging.sort_key(selection.sort)
    rows = list(
        Group.select(Group.id, key.alias("sort_key"))
        .where(all_of(where))
        .order_by(key.desc(), Group.id.desc())
        .limit(size + 1)  # one more than a page tells whether another page follows
    )
    page = rows[:size]
    token = ""
    if len(rows) > size:
        last = paging.Cursor(paging.key_of(page[-1], selection.sort), page[-1].id)
        token = paging.encode(last, fingerprint=bound)
    count = Group.select().where(all_of(matching)).count() if page or count_empty else 0
    return Page([r.id for r in page], count, token)


def _by_query(selection: Selection, *, scope: Scope, now: dt.datetime) -> Selected:
    """One keyset page of at most MAX_IDS groups, with the total count and a continuation."""
    page = search(selection, scope=scope, now=now, size=MAX_IDS, count_empty=False)
    if not page.ids:
        raise NotFound(NO_GROUPS, reason="NO_GROUPS_FOUND")
    token = page.next_page_token
    return Selected(lock_groups(page.ids), [], page.matched_count, bool(token), token)


def projects_of(groups: list[Group]) -> dict[int, Project]:
    ids = sorted({g.project_id for g in groups})
    return {p.id: p for p in reads.rows_by_id(Project, ids)}
