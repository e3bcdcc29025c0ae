"""The hot reads of the reply (§4.2) as fixed SQL texts: one statement for the group and every
row hanging off it, one for its activities with their users.

Peewee rebuilds and recompiles a query's AST on every call (~0.2 ms a statement, most of a
GetGroup); these texts are built once per placeholder style from the models' metadata and run
through `db.execute_sql`, so the query hooks still count them. Cells are converted with each
field's `python_value`, exactly as peewee's own row wrappers do.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from peewee import Model

from server.core.enums import LinkRelationship, LinkType
from server.storage.models import (
    Activity,
    Group,
    GroupAssignee,
    GroupBookmark,
    GroupLink,
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

# (alias, model, how it joins); "{p}" is the driver's placeholder (the acting user's id).
_PARTS: tuple[tuple[str, type[Model], str], ...] = (
    ("g", Group, ""),
    ("p", Project, 'JOIN "{t}" p ON p."id" = g."project_id"'),
    ("sn", GroupSnooze, 'LEFT JOIN "{t}" sn ON sn."group_id" = g."id"'),
    ("su", User, 'LEFT JOIN "{t}" su ON su."id" = sn."actor_id"'),
    ("sh", GroupShare, 'LEFT JOIN "{t}" sh ON sh."group_id" = g."id"'),
    ("ga", GroupAssignee, 'LEFT JOIN "{t}" ga ON ga."group_id" = g."id"'),
    ("au", User, 'LEFT JOIN "{t}" au ON au."id" = ga."user_id"'),
    ("at", Team, 'LEFT JOIN "{t}" at ON at."id" = ga."team_id"'),
    ("bm", GroupBookmark, 'LEFT JOIN "{t}" bm ON bm."group_id" = g."id" AND bm."user_id" = {p}'),
    ("gs", GroupSubscription, 'LEFT JOIN "{t}" gs ON gs."group_id" = g."id" AND gs."user_id"={p}'),
    ("se", GroupSeen, 'LEFT JOIN "{t}" se ON se."group_id" = g."id" AND se."user_id" = {p}'),
    ("gr", GroupResolution, 'LEFT JOIN "{t}" gr ON gr."group_id" = g."id"'),
    ("ru", User, 'LEFT JOIN "{t}" ru ON ru."id" = gr."actor_id"'),
    ("rl", Release, 'LEFT JOIN "{t}" rl ON rl."id" = gr."release_id"'),
)
USER_JOINS = 3  # bookmark, subscription and seen each bind the acting user's id


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


def _columns(alias: str, model: type[Model]) -> str:
    return ", ".join(f'{alias}."{f.column_name}"' for f in model._meta.sorted_fields)


@lru_cache(maxsize=4)
def _group_sql(param: str) -> str:
    return f'{group_select(param)} WHERE g."id" = {param}'


@lru_cache(maxsize=4)
def group_select(param: str) -> str:
    """The reply's join without its WHERE: the acting user's id binds USER_JOINS placeholders."""
    select = ", ".join(_columns(alias, model) for alias, model, _ in _PARTS)
    joins = " ".join(join.format(t=model._meta.table_name, p=param) for _, model, join in _PARTS[1:])
    # The newest commit link that resolves the group (read only when no resolution row exists).
    link = (
        f'(SELECT l."linked_id" FROM "{GroupLink._meta.table_name}" l WHERE l."group_id" = g."id"'
        f' AND l."linked_type" = {int(LinkType.COMMIT)}'
        f' AND l."relationship" = {int(LinkRelationship.RESOLVES)}'
        ' ORDER BY l."datetime" DESC LIMIT 1)'
    )
    return f'SELECT {select}, {link} FROM "{Group._meta.table_name}" g {joins}'


@lru_cache(maxsize=4)
def _activity_sql(param: str) -> str:
    return (
        f"SELECT {_columns('a', Activity)}, {_columns('u', User)} "
        f'FROM "{Activity._meta.table_name}" a LEFT JOIN "{User._meta.table_name}" u '
        f'ON u."id" = a."user_id" WHERE a."group_id" = {param} '
        f'ORDER BY a."datetime" DESC, a."id" DESC LIMIT {param}'
    )


def _hydrate(model: type[Model], cells: Sequence[Any]) -> Any:
    """A model instance from its columns in sorted_fields order; None for an unmatched join."""
    if cells[0] is None:  # every model's first column is its primary key
        return None
    obj = model(__no_default__=1)
    obj.__data__ = {
        f.name: (f.python_value(v) if v is not None else None)
        for f, v in zip(model._meta.sorted_fields, cells, strict=True)
    }
    return obj


def _split(row: Sequence[Any], models: Sequence[type[Model]]) -> list[Any]:
    found, start = [], 0
    for model in models:
        width = len(model._meta.sorted_fields)
        found.append(_hydrate(model, row[start : start + width]))
        start += width
    return found


def load_group(group_id: int, *, user_id: int | None) -> Loaded | None:
    """The group and its reply rows in one statement; None when the group does not exist."""
    param = db.obj.param
    cursor = db.execute_sql(_group_sql(param), [*([user_id] * USER_JOINS), group_id])
    row = cursor.fetchone()
    if row is None:
        return None
    return loaded_from(row)


def loaded_from(row: Sequence[Any]) -> Loaded:
    """A Loaded from one row of group_select."""
    parts = _split(row, [model for _, model, _ in _PARTS])
    g, p, sn, su, sh, _, au, at, bm, gs, se, gr, ru, rl = parts
    return Loaded(g, p, sn, su, sh, au, at, bm is not None, gs, se, gr, ru, rl, row[-1])


def load_activities(group_id: int, *, limit: int) -> list[tuple[Activity, User | None]]:
    """The group's newest activities, each with its user (None without one)."""
    cursor = db.execute_sql(_activity_sql(db.obj.param), [group_id, limit])
    return [tuple(_split(row, (Activity, User))) for row in cursor.fetchall()]


@lru_cache(maxsize=16)
def _groups_sql(param: str, *, scoped: bool, by_project: bool, for_update: bool) -> str:
    postgres = param == "%s"
    ids = "= ANY(%s::bigint[])" if postgres else "IN (SELECT value FROM json_each(?))"
    sql = f'SELECT {_columns("g", Group)} FROM "{Group._meta.table_name}" g WHERE g."id" {ids}'
    if scoped:
        sql += (
            f' AND g."project_id" IN (SELECT p."id" FROM "{Project._meta.table_name}" p'
            f' WHERE p."organization_id" = {param}' + (f' AND p."id" {ids}' if by_project else "") + ")"
        )
    sql += ' ORDER BY g."id"'
    return sql + " FOR UPDATE" if for_update else sql


def _id_list(ids: Sequence[int], *, postgres: bool) -> Any:
    values = [int(i) for i in ids]
    return values if postgres else json.dumps(values)


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
    params: list[Any] = [_id_list(ids, postgres=postgres)]
    if organization_id is not None:
        params.append(organization_id)
        if project_ids:
            params.append(_id_list(project_ids, postgres=postgres))
    sql = _groups_sql(
        param,
        scoped=organization_id is not None,
        by_project=bool(project_ids) and organization_id is not None,
        for_update=for_update,
    )
    cursor = db.execute_sql(sql, params)
    return [_hydrate(Group, row) for row in cursor.fetchall()]


@lru_cache(maxsize=32)
def _rows_sql(model: type[Model], param: str) -> str:
    ids = "= ANY(%s::bigint[])" if param == "%s" else "IN (SELECT value FROM json_each(?))"
    table = model._meta.table_name
    return f'SELECT {_columns("t", model)} FROM "{table}" t WHERE t."id" {ids} ORDER BY t."id"'


def rows_by_id(model: type[Model], ids: Sequence[int]) -> list[Any]:
    """Rows of `model` by primary key, ordered by id, in one fixed statement."""
    param = db.obj.param
    cursor = db.execute_sql(_rows_sql(model, param), [_id_list(ids, postgres=param == "%s")])
    return [_hydrate(model, row) for row in cursor.fetchall()]
