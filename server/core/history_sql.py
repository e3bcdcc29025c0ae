"""GroupHistory rows with their back-pointers in one INSERT ... SELECT (§1.13).

Each new row points to the group's newest earlier row among the statuses "opposite" to its own;
the statement finds that row itself (it reads only group_history, before its own rows land), so
the write needs no read before it and can leave with the transaction's other writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from server.core.bulk_sql import run_write
from server.storage.db import is_postgres, json_dumps
from server.storage.models import GroupHistory

_COLUMNS = (
    '"organization_id", "group_id", "project_id", "release_id", "user_id", "status",'
    ' "prev_history_id", "prev_history_date", "date_added"'
)


@dataclass(frozen=True)
class HistoryRow:
    organization_id: int
    group_id: int
    project_id: int
    release_id: int | None
    user_id: int | None
    status: int
    previous_statuses: frozenset[int]  # the statuses a back-pointer may point to; empty: none
    date_added: dt.datetime


@lru_cache(maxsize=2)
def _sql(postgres: bool) -> str:
    table = f'"{GroupHistory._meta.table_name}"'
    newest = (
        f'FROM {table} h WHERE h."group_id" = {{gid}} AND h."status" IN ({{prevs}})'
        ' ORDER BY h."date_added" DESC, h."id" DESC LIMIT 1'
    )
    if postgres:
        rows = (
            "SELECT (v->>0)::bigint AS org, (v->>1)::bigint AS gid, (v->>2)::bigint AS pid, (v->>3)::bigint AS rel,"
            " (v->>4)::bigint AS uid, (v->>5)::integer AS st, (v->6) AS prevs, (v->>7)::timestamp AS added"
            " FROM jsonb_array_elements(%s::jsonb) AS t(v)"  # parsed once (bulk_sql)
        )
        prev = newest.format(gid="r.gid", prevs="SELECT jsonb_array_elements_text(r.prevs)::integer")
        return (
            f"INSERT INTO {table} ({_COLUMNS}) SELECT r.org, r.gid, r.pid, r.rel, r.uid, r.st, prev.id, prev.added,"
            f' r.added FROM ({rows}) r LEFT JOIN LATERAL (SELECT h."id" AS id, h."date_added" AS added {prev})'
            " prev ON TRUE"
        )
    cell = "json_extract(r.value, '$[{}]')"
    prev = newest.format(gid=cell.format(1), prevs=f"SELECT p.value FROM json_each({cell.format(6)}) p")
    picks = ", ".join(cell.format(i) for i in range(6))
    return (
        f'INSERT INTO {table} ({_COLUMNS}) SELECT {picks}, (SELECT h."id" {prev}), (SELECT h."date_added" {prev}),'
        f" {cell.format(7)} FROM json_each(?) AS r WHERE 1"
    )


def insert_history(rows: Sequence[HistoryRow]) -> None:
    """One statement whatever the row count; no rows, no statement."""
    if not rows:
        return
    table = [
        [
            r.organization_id,
            r.group_id,
            r.project_id,
            r.release_id,
            r.user_id,
            r.status,
            sorted(r.previous_statuses),
            r.date_added.isoformat(" "),
        ]
        for r in rows
    ]
    run_write(_sql(is_postgres()), [json_dumps(table)], table=GroupHistory._meta.table_name)
