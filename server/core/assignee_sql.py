"""An assignee named by user id, with its membership and the projects its teams reach, in one
fixed statement (instead of three peewee lookups on every assign)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from server.core.access_sql import ids_of
from server.core.sqltext import columns, render, split, table
from server.storage.db import is_postgres
from server.storage.models import OrganizationMember, OrganizationMemberTeam, ProjectTeam, User, db


@dataclass(frozen=True)
class AssigneeRows:
    user: User | None
    member: OrganizationMember | None  # in the acting organization
    reachable_project_ids: frozenset[int]  # through the member's teams, any organization's


@lru_cache(maxsize=2)
def _sql(postgres: bool) -> str:
    agg = 'array_agg(DISTINCT pt."project_id")' if postgres else 'json_group_array(DISTINCT pt."project_id")'
    reachable = (
        f"(SELECT {agg} FROM {table(ProjectTeam)} pt JOIN {table(OrganizationMemberTeam)} omt"
        ' ON omt."team_id" = pt."team_id" WHERE omt."member_id" = m."id")'
    )
    text = (
        f"SELECT {columns('u', User)}, {columns('m', OrganizationMember)}, {reachable}"
        f' FROM (SELECT 1 AS one) one LEFT JOIN {table(User)} u ON u."id" = CAST(:uid AS BIGINT)'
        f' LEFT JOIN {table(OrganizationMember)} m ON m."organization_id" = CAST(:org AS BIGINT)'
        ' AND m."user_id" = u."id"'
    )
    return render(text, postgres=postgres)


def load_assignee(*, user_id: int, organization_id: int) -> AssigneeRows:
    row = db.execute_sql(_sql(is_postgres()), {"uid": user_id, "org": organization_id}).fetchone()
    (user, member), end = split(row, (User, OrganizationMember))
    return AssigneeRows(user, member, ids_of(row[end]))
