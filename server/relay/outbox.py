"""The relay's reads and writes of the outbox: the undelivered queue, delivery marks, pruning."""

from __future__ import annotations

import datetime as dt

from peewee import fn

from server.core.unit_of_work import in_transaction
from server.events import store
from server.events.records import EventRecord
from server.storage.models import OutboxEvent, db, utcnow


def undelivered(*, limit: int) -> list[EventRecord]:
    store.stamp()
    with db.connection_context():
        rows = (
            OutboxEvent.select()
            .where(OutboxEvent.delivered_at.is_null() & OutboxEvent.seq.is_null(False))
            .order_by(OutboxEvent.seq)
            .limit(limit)
        )
        return [EventRecord.from_row(row) for row in rows]


def mark_delivered(seqs: list[int]) -> None:
    if seqs:
        in_transaction(lambda: OutboxEvent.update(delivered_at=utcnow()).where(OutboxEvent.seq.in_(seqs)).execute())


def oldest_undelivered_age() -> float:
    """Seconds since the oldest undelivered event was written (0: none)."""
    with db.connection_context():
        oldest = OutboxEvent.select(fn.MIN(OutboxEvent.created_at)).where(OutboxEvent.delivered_at.is_null()).scalar()
    return max(0.0, (utcnow() - oldest).total_seconds()) if oldest else 0.0


def prune(*, retention: dt.timedelta) -> int:
    """Delete delivered events older than retention, a batch per transaction; returns the count."""
    return store.prune(older_than=retention, delivered_only=True)
