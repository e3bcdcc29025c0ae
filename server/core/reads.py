"""The hot reads as fixed SQL texts: the reply's group (reply_sql), groups and rows by id.

Built once per backend from the models' metadata and run through `db.execute_sql`, so the query
hooks still count them; cells are converted with each field's `python_value`, exactly as peewee's
own row wrappers do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from peewee import Model

from server.core.reply_sql import (
    ACTIVITY_PART,
    ACTIVITY_USER_PART,
    FAMILIES,
    PARTS_WIDTH,
    WHOLE,
    ActivityRow,
    Family,
    activity_rows,
    columns_and_joins,
    group_sql,
    parse_activities,
)
from server.core.sqltext import columns, hydrate, id_list, ids_in, render, split
from server.storage.db import is_postgres
from server.storage.models import (
    Activity,
    Group,
    GroupResolution,
    GroupSeen,
    GroupShare,
    GroupSnooze,
    GroupSubscription,
    Project,
    Release,
    Team,
    User,
    db,
)

USER_JOINS = 3  # bookmark, subscription and seen each bind the acting user's id
ACTIVITY_ROWS = 200  # twice the reply's 100: consecutive duplicates are dropped after reading


@dataclass
class Loaded:
    """One group with the rows its reply needs; None where no row exists."""

    group: Group
    project: Project
    snooze: GroupSnooze | None
    snooze_actor: User | None
    share: GroupShare | None
    assignee_user: User | None
    assignee_team: Team | None
    bookmarked: bool
    subscription: GroupSubscription | None
    seen: GroupSeen | None
    resolution: GroupResolution | None
    resolution_actor: User | None
    release: Release | None
    resolving_commit_id: int | None  # the newest "resolves" commit link's commit
    # The newest ACTIVITY_ROWS activities with their users, when read in the same statement.
    activities: list[tuple[ActivityRow, User | None]] = field(default_factory=list)


@lru_cache(maxsize=4)
def group_select(param: str) -> str:
    """The reply's join without its WHERE: the acting user's id binds USER_JOINS placeholders."""
    return "SELECT " + columns_and_joins(uid=param, postgres=param == "%s")


def loaded_from(row: Sequence[Any], *, start: int = 0) -> Loaded:
    """A Loaded from a group_select row (or reply_sql.group_sql's, columns from `start`)."""
    (g, p), end = split(row, WHOLE, start=start)
    sn, su, sh, au, at, gs, se, gr, ru, rl = (
        record for family, cell in zip(FAMILIES, row[end + 1 : start + PARTS_WIDTH], strict=True)
        for record in _family_records(family, cell)
    )  # fmt: skip
    return Loaded(g, p, sn, su, sh, au, at, bool(row[end]), gs, se, gr, ru, rl, row[start + PARTS_WIDTH])


def _family_records(family: Family, cell: Any) -> list[Any]:
    """The family's records (None each without a row) from its JSON cell: text on SQLite,
    parsed by psycopg on PostgreSQL."""
    if cell is None:
        return [None] * len(family.read)
    values = json.loads(cell) if isinstance(cell, str) else cell
    return split(values, family.read, from_json=True)[0]


def with_activities(row: Sequence[Any], *, start: int = 0) -> Loaded:
    """A Loaded with its activities from a reply_sql.group_sql row."""
    loaded = loaded_from(row, start=start)
    loaded.activities = parse_activities(row[start + PARTS_WIDTH + 1])
    return loaded


@lru_cache(maxsize=4)
def _group_sql(postgres: bool) -> str:
    return render(group_sql(postgres=postgres, where='g."id" = :gid'), postgres=postgres)


def load_group_with_commit(group_id: int, *, user_id: int | None) -> Callable[[], Loaded | None]:
    """The group, its reply rows and activities in one statement (None when it does not exist),
    as the transaction's last read, sent with its COMMIT: call the result once it committed."""
    params = {"gid": group_id, "uid": user_id, "limit": ACTIVITY_ROWS}
    pending = db.obj.read_with_commit(_group_sql(is_postgres()), params)

    def loaded() -> Loaded | None:
        row = pending.row()
        return None if row is None else with_activities(row)

    return loaded


@lru_cache(maxsize=4)
def _activity_sql(param: str) -> str:
    return (
        f"SELECT {columns('a', ACTIVITY_PART)}, {columns('u', ACTIVITY_USER_PART)} "
        f'FROM "{Activity._meta.table_name}" a LEFT JOIN "{User._meta.table_name}" u '
        f'ON u."id" = a."user_id" WHERE a."group_id" = {param} '
        f'ORDER BY a."datetime" DESC, a."id" DESC LIMIT {param}'
    )


def load_activities(group_id: int, *, limit: int) -> list[tuple[ActivityRow, User | None]]:
    """The group's newest activities, each with its user (None without one)."""
    cursor = db.execute_sql(_activity_sql(db.obj.param), [group_id, limit])
    return [pair for _group_id, pair in activity_rows(cursor.fetchall())]


@lru_cache(maxsize=16)
def _groups_sql(param: str, *, scoped: bool, by_project: bool, for_update: bool) -> str:
    postgres = param == "%s"
    ids = ids_in(postgres)
    sql = f'SELECT {columns("g", Group)} FROM "{Group._meta.table_name}" g WHERE g."id" {ids}'
    if scoped:
        sql += (
            f' AND g."project_id" IN (SELECT p."id" FROM "{Project._meta.table_name}" p'
            f' WHERE p."organization_id" = {param}' + (f' AND p."id" {ids}' if by_project else "") + ")"
        )
    sql += ' ORDER BY g."id"'
    return sql + " FOR UPDATE" if for_update else sql


def select_groups(
    ids: Sequence[int],
    *,
    organization_id: int | None = None,
    project_ids: Sequence[int] = (),
    for_update: bool = False,
) -> list[Group]:
    """Groups by id, ordered by id; with organization_id only those in its projects (narrowed
    to project_ids when given). One fixed statement; FOR UPDATE when asked."""
    param = db.obj.param
    postgres = param == "%s"
    params: list[Any] = [id_list(ids, postgres=postgres)]
    if organization_id is not None:
        params.append(organization_id)
        if project_ids:
            params.append(id_list(project_ids, postgres=postgres))
    sql = _groups_sql(
        param,
        scoped=organization_id is not None,
        by_project=bool(project_ids) and organization_id is not None,
        for_update=for_update,
    )
    cursor = db.execute_sql(sql, params)
    return [hydrate(Group, row) for row in cursor.fetchall()]


@lru_cache(maxsize=32)
def _rows_sql(model: type[Model], param: str) -> str:
    table = model._meta.table_name
    return f'SELECT {columns("t", model)} FROM "{table}" t WHERE t."id" {ids_in(param == "%s")} ORDER BY t."id"'


def rows_by_id(model: type[Model], ids: Sequence[int]) -> list[Any]:
    """Rows of `model` by primary key, ordered by id, in one fixed statement."""
    param = db.obj.param
    cursor = db.execute_sql(_rows_sql(model, param), [id_list(ids, postgres=param == "%s")])
    return [hydrate(model, row) for row in cursor.fetchall()]


@lru_cache(maxsize=32)
def _rows_where_sql(model: type[Model], column: str, postgres: bool) -> str:
    table = model._meta.table_name
    return f'SELECT {columns("t", model)} FROM "{table}" t WHERE t."{column}" {ids_in(postgres)} ORDER BY t."id"'


def rows_where_in(model: type[Model], ids: Sequence[int], *, column: str = "group_id") -> list[Any]:
    """Rows of `model` whose `column` is among `ids`, ordered by id, in one fixed statement."""
    postgres = is_postgres()
    cursor = db.execute_sql(_rows_where_sql(model, column, postgres), [id_list(ids, postgres=postgres)])
    return [hydrate(model, row) for row in cursor.fetchall()]
