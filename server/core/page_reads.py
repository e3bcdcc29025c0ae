"""The reply rows of a whole page of groups in a fixed number of statements (ListGroups): the
same join as a single group's read (reads.group_select), over a list of ids."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from server.core.context import CommitView
from server.core.reads import USER_JOINS, Loaded, group_select, loaded_from
from server.core.reply_sql import ACTIVITY_PART, ACTIVITY_USER_PART, ActivityRow, activity_rows
from server.core.sqltext import columns, id_list, ids_in
from server.storage.models import Activity, Commit, Repository, User, db


@lru_cache(maxsize=4)
def _page_sql(param: str) -> str:
    return f'{group_select(param)} WHERE g."id" {ids_in(param == "%s")}'


def load_groups(ids: Sequence[int], *, user_id: int | None) -> dict[int, Loaded]:
    """Every group of `ids` with its reply rows, in one statement, by id."""
    if not ids:
        return {}
    param = db.obj.param
    params = [*([user_id] * USER_JOINS), id_list(ids, postgres=param == "%s")]
    rows = db.execute_sql(_page_sql(param), params).fetchall()
    return {loaded.group.id: loaded for loaded in map(loaded_from, rows)}


@lru_cache(maxsize=4)
def _activities_sql(param: str) -> str:
    """Each group's newest `limit` activities, by group, newest first, in one statement."""
    table = Activity._meta.table_name
    if param == "%s":
        # PostgreSQL: per group, the end of its (group_id, datetime, id) index, stopped at the
        # limit, so a group's long past is never read (server/storage/migrate_indexes.py).
        newest = (
            "SELECT t.* FROM unnest(%s::bigint[]) AS ids(gid) CROSS JOIN LATERAL"
            f' (SELECT * FROM "{table}" t WHERE t."group_id" = ids.gid'
            ' ORDER BY t."datetime" DESC, t."id" DESC LIMIT %s) t'
        )
        keep = ""
    else:  # SQLite has no LATERAL: number each group's rows newest first, keep the first `limit`
        newest = (
            f'SELECT t.*, ROW_NUMBER() OVER (PARTITION BY t."group_id" ORDER BY t."datetime" DESC, t."id" DESC)'
            f' AS rn FROM "{table}" t WHERE t."group_id" {ids_in(False)}'
        )
        keep = "WHERE a.rn <= ? "
    return (
        f"SELECT {columns('a', ACTIVITY_PART)}, {columns('u', ACTIVITY_USER_PART)} FROM ({newest}) a "
        f'LEFT JOIN "{User._meta.table_name}" u ON u."id" = a."user_id" {keep}'
        'ORDER BY a."group_id", a."datetime" DESC, a."id" DESC'
    )


def load_activities(ids: Sequence[int], *, limit: int) -> dict[int, list[tuple[ActivityRow, User | None]]]:
    """Each group's newest `limit` activities with their users, in one statement."""
    out: dict[int, list[tuple[ActivityRow, User | None]]] = {i: [] for i in ids}
    if not ids:
        return out
    param = db.obj.param
    rows = db.execute_sql(_activities_sql(param), [id_list(ids, postgres=param == "%s"), limit]).fetchall()
    for group_id, pair in activity_rows(rows):
        out[group_id].append(pair)
    return out


def load_commits(ids: Sequence[int]) -> dict[int, CommitView]:
    """Commits by id with their repository's name, in one statement."""
    if not ids:
        return {}
    query = Commit.select(Commit.id, Commit.key, Repository.name).join(Repository).where(Commit.id.in_(sorted(ids)))
    return {c.id: CommitView(id=c.id, key=c.key, repository=c.repository.name) for c in query}
