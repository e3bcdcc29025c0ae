"""Schema of the event stream (issue 11): outbox columns, sequence row, relay lease, wake-up trigger.

Idempotent: a fresh database already has the columns (migration 1 creates the current models);
an older one gets them here. Every statement checks before it adds.
"""

from __future__ import annotations

from server.storage.db import is_postgres
from server.storage.models import EventSequence, RelayLease, db

NOTIFY_CHANNEL = "issues_outbox"
_COLUMNS = {
    "organization_id": "BIGINT",
    "project_id": "BIGINT",
    "actor_id": "BIGINT",
    "request_id": "VARCHAR(128)",
    "seq": "BIGINT",
}
_INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS outbox_event_seq ON outbox_event (seq)",
    # The sequencer looks for unstamped rows on every wake-up: keep that a tiny index scan.
    "CREATE INDEX IF NOT EXISTS outbox_event_unstamped ON outbox_event (id) WHERE seq IS NULL",
    # The relay's queue: stamped, not yet delivered, in seq order.
    "CREATE INDEX IF NOT EXISTS outbox_event_undelivered ON outbox_event (seq) "
    "WHERE delivered_at IS NULL AND seq IS NOT NULL",
    # A watcher's catch-up reads one organization's events after a cursor.
    "CREATE INDEX IF NOT EXISTS outbox_event_org_seq ON outbox_event (organization_id, seq)",
)
# Migration 3 created a NOTIFY trigger on the outbox; a NOTIFY inside the update's transaction
# makes PostgreSQL commit every update one at a time (server/storage/outbox_signal.py says why),
# so the wake-up is now sent after commit and the trigger is dropped.
_PG_DROP_TRIGGER = (
    "DROP TRIGGER IF EXISTS outbox_event_notify ON outbox_event",
    "DROP FUNCTION IF EXISTS outbox_event_notify()",
)


def upgrade() -> None:
    db.create_tables([EventSequence, RelayLease], safe=True)
    existing = {column.name for column in db.get_columns("outbox_event")}
    for name, sql_type in _COLUMNS.items():
        if name not in existing:
            db.execute_sql(f"ALTER TABLE outbox_event ADD COLUMN {name} {sql_type}")
    for statement in _INDEXES:
        db.execute_sql(statement)


def drop_notify_trigger() -> None:
    if is_postgres():
        for statement in _PG_DROP_TRIGGER:
            db.execute_sql(statement)
