"""Who is calling and on which group, in one fixed statement (§4.4, §3.1).

One row, always: the organization, the acting user, their membership, the projects their teams
give them, their self-assign option, and optionally the requested group (a merged-away id
followed through its redirect, scoped to the organization) — either locked with its project
(an update), or with every row of the reply (a read). Absent rows read as NULL, so the caller
raises exactly the error the separate lookups raised, in the same order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from server.core.enums import GroupStatus
from server.core.reads import ACTIVITY_ROWS, Loaded, with_activities
from server.core.reply_sql import group_sql
from server.core.sqltext import columns, render, split, table
from server.storage.db import is_postgres
from server.storage.models import (
    Group,
    GroupRedirect,
    Organization,
    OrganizationMember,
    OrganizationMemberTeam,
    Project,
    ProjectTeam,
    User,
    UserOption,
    db,
)

SELF_ASSIGN_OPTION = "self_assign_issue"
GLOBAL_ACCESS_ROLES = frozenset({"manager", "owner"})  # see every project without a team
_HEAD = (Organization, User, OrganizationMember)

# The requested group in the organization unless it is missing or merged away; then the group
# its redirect points to (if any). The redirect is looked up first and the group's own row only
# behind a redirect found (rare): checking the group first cost every call a second lookup of it
# (~10k of PostgreSQL's ~1M instructions for GetGroup's).
_RESOLVED_ID = (
    'COALESCE((SELECT r."group_id" FROM {redirect} r WHERE r."previous_group_id" = CAST(:gid AS BIGINT)'
    ' AND r."organization_id" = CAST(:org AS BIGINT) AND NOT EXISTS (SELECT 1 FROM {group} g0'
    ' JOIN {project} p0 ON p0."id" = g0."project_id" WHERE g0."id" = r."previous_group_id"'
    f' AND p0."organization_id" = r."organization_id" AND g0."status" <> {int(GroupStatus.PENDING_MERGE)})),'
    " CAST(:gid AS BIGINT))"
).format(group=table(Group), project=table(Project), redirect=table(GroupRedirect))
_IN_ORG = f'p."organization_id" = CAST(:org AS BIGINT) AND g."id" = ({_RESOLVED_ID})'
_SCOPED = (
    f'g."id" = ({_RESOLVED_ID}) AND g."project_id" IN'
    f' (SELECT p1."id" FROM {table(Project)} p1 WHERE p1."organization_id" = CAST(:org AS BIGINT))'
)


def _head(postgres: bool) -> str:
    agg = 'array_agg(DISTINCT pt."project_id")' if postgres else 'json_group_array(DISTINCT pt."project_id")'
    projects = (
        f"(SELECT {agg} FROM {table(ProjectTeam)} pt"
        f' JOIN {table(OrganizationMemberTeam)} omt ON omt."team_id" = pt."team_id"'
        f' JOIN {table(Project)} p2 ON p2."id" = pt."project_id"'
        ' WHERE omt."member_id" = m."id" AND p2."organization_id" = o."id")'
    )
    # A member who sees the whole organization (permissions._member_access) needs no team
    # projects: not aggregating them took ~120k of PostgreSQL's ~1M instructions off a GetGroup.
    # Should the two conditions ever disagree, NULL reads as no team project: fail closed.
    roles = ", ".join(f"'{role}'" for role in sorted(GLOBAL_ACCESS_ROLES))
    projects = f'CASE WHEN o."allow_joinleave" OR m."role" IN ({roles}) THEN NULL ELSE {projects} END'
    option = (
        f'(SELECT uo."value" FROM {table(UserOption)} uo'
        f' WHERE uo."user_id" = u."id" AND uo."key" = \'{SELF_ASSIGN_OPTION}\')'
    )
    cols = ", ".join([columns("o", Organization), columns("u", User), columns("m", OrganizationMember)])
    return f"{cols}, {projects}, {option}"


_FROM = (
    f' FROM (SELECT 1 AS one) one LEFT JOIN {table(Organization)} o ON o."id" = CAST(:org AS BIGINT)'
    f' LEFT JOIN {table(User)} u ON u."id" = CAST(:uid AS BIGINT)'
    f' LEFT JOIN {table(OrganizationMember)} m ON m."organization_id" = o."id" AND m."user_id" = u."id"'
)


@lru_cache(maxsize=8)
def _access_sql(postgres: bool, *, group: str) -> str:
    """group: "" (no group), "lock" (the group and its project, locked) or "reply"."""
    head = _head(postgres)
    if group == "":
        return render(f"SELECT {head}{_FROM}", postgres=postgres)
    if group == "lock":
        # The group alone in the locking level, so only its row is locked (not its project's).
        lock = " FOR UPDATE" if postgres else ""  # SQLite: IMMEDIATE already excludes writers
        locked = f"SELECT {columns('g', Group)} FROM {table(Group)} g WHERE {_SCOPED}{lock}"
        body = (
            f'SELECT g.*, {columns("p", Project)} FROM ({locked}) g JOIN {table(Project)} p ON p."id" = g."project_id"'
        )

    else:
        body = group_sql(postgres=postgres, where=_IN_ORG)
    # A CTE so PostgreSQL may lock in it (FOR UPDATE is refused on the nullable side of a join).
    return render(f"WITH x AS ({body}) SELECT {head}, x.*{_FROM} LEFT JOIN x ON 1 = 1", postgres=postgres)


@dataclass
class AccessRow:
    """What the statement found; None where no row exists."""

    org: Organization | None
    user: User | None
    member: OrganizationMember | None
    # Projects the member's teams give, in this organization; empty for a member who sees the
    # whole organization (open membership or a global role), where they are not read.
    team_project_ids: frozenset[int]
    self_assign_option: str | None
    group: Group | None = None
    project: Project | None = None
    loaded: Loaded | None = None  # with group="reply"


def load_access(*, organization_id: int, user_id: int | None, group_id: int | None = None,
                group: str = "") -> AccessRow:  # fmt: skip
    """One statement; `group` as in _access_sql (ignored without group_id)."""
    shape = group if group_id is not None else ""
    params = {"org": organization_id, "uid": user_id, "gid": group_id, "limit": ACTIVITY_ROWS}
    row = db.execute_sql(_access_sql(is_postgres(), group=shape), params).fetchone()
    (org, user, member), end = split(row, _HEAD)
    access = AccessRow(org, user, member, ids_of(row[end]), row[end + 1])
    if shape == "lock":
        (access.group, access.project), _ = split(row, (Group, Project), start=end + 2)
    elif shape == "reply" and row[end + 2] is not None:  # the group's id: NULL when none matched
        access.loaded = with_activities(row, start=end + 2)
        access.group, access.project = access.loaded.group, access.loaded.project
    return access


def ids_of(cell: Any) -> frozenset[int]:
    """An id aggregate: a list from PostgreSQL's array_agg, JSON text from SQLite's."""
    values = json.loads(cell) if isinstance(cell, str) else (cell or [])
    ids = frozenset(values)  # both drivers give ints; a project id is never NULL, but be sure
    return ids - {None} if None in ids else ids
