"""Newest-first indexes for a group's activities and history (migration 5); no index that another
one already covers (migration 6).

A group's newest activities (GetGroup, every reply) and its newest earlier history row (the
back-pointer each GroupHistory insert looks up, history_sql.py) were found through an index on
group_id alone: every row of the group was read and sorted to keep the first, so a group that
flapped for months made each of its updates slower. Measured on 2026-11-30 (PostgreSQL, one
group toggled 2,400 times): the resolve's write statement went from ~3.7 to ~9 ms of server CPU.
With (group_id, time, id) the newest rows are the end of one index range, read backwards and
stopped at the limit. The composite index serves every lookup by group_id too, so the old
single-column index goes: each insert still maintains one index per table for the group.

Migration 6: three single-column indexes were the leading column of a unique index on the same
table (subscriptions by group, bookmarks by project, seen rows by user), so every lookup they
served, foreign-key cascades included, the unique index serves as well; each insert maintained
both. A first resolve of an issue inserts its actor's subscription row: 7 indexes, now 6.

Migration 7 (PostgreSQL): the foreign keys to the project and the organization on the rows an
update appends (history, activity, the actor's subscription) go, with the indexes that served
their cascades. Each such row also references its group, whose key stays, and the group cascades
from its project and organization: the two keys checked nothing the group's did not, but every
first resolve paid four lookups (run as queries inside PostgreSQL) and four index inserts for
them: 6 % of its PostgreSQL instructions (BENCHMARKS.md, tenth session). Sentry declares
GroupHistory's keys with db_constraint=False for the same reason. SQLite keeps them: it cannot
drop a constraint in place, and its checks are lookups in the same process.

Idempotent: a fresh database already has the new indexes (migration 1 creates the current models).
"""

from __future__ import annotations

from server.storage.db import is_postgres
from server.storage.models import db

_STATEMENTS = (
    'CREATE INDEX IF NOT EXISTS activity_group_id_datetime_id ON activity ("group_id", "datetime", "id")',
    "DROP INDEX IF EXISTS activity_group_id",
    'CREATE INDEX IF NOT EXISTS group_history_group_id_date_added_id ON group_history ("group_id", "date_added", "id")',
    "DROP INDEX IF EXISTS group_history_group_id",
)


def newest_first() -> None:
    for statement in _STATEMENTS:
        db.execute_sql(statement)


COVERED = (  # table, its index that a unique index on (this column, ...) covers
    ("group_subscription", "group_subscription_group_id"),
    ("group_bookmark", "group_bookmark_project_id"),
    ("group_seen", "group_seen_user_id"),
)


def drop_covered() -> None:
    for _table, index in COVERED:
        db.execute_sql(f"DROP INDEX IF EXISTS {index}")


REDUNDANT_KEYS = (  # table, column: the row's group already ties it to this project or organization
    ("group_history", "organization_id"),
    ("group_history", "project_id"),
    ("activity", "project_id"),
    ("group_subscription", "project_id"),
)


def drop_redundant_keys() -> None:
    if not is_postgres():
        return
    for table, column in REDUNDANT_KEYS:
        # The names PostgreSQL and peewee gave them when migration 1 created the tables.
        db.execute_sql(f'ALTER TABLE "{table}" DROP CONSTRAINT IF EXISTS "{table}_{column}_fkey"')
        db.execute_sql(f'DROP INDEX IF EXISTS "{table}_{column}"')
