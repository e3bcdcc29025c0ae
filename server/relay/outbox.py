"""The relay's reads and writes of the outbox: the undelivered queue, delivery marks, pruning."""

from __future__ import annotations

import datetime as dt

from peewee import Case, fn

from server.core.unit_of_work import in_transaction
from server.events import store
from server.events.records import EventRecord
from server.storage.models import EventSequence, OutboxEvent, db, utcnow

PRUNE_BATCH = 1000


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
    total = 0
    while True:
        deleted = in_transaction(lambda: _prune_batch(utcnow() - retention))
        total += deleted
        if deleted < PRUNE_BATCH:
            return total


def _prune_batch(cutoff: dt.datetime) -> int:
    batch = (
        OutboxEvent.select(OutboxEvent.id, OutboxEvent.seq)
        .where(OutboxEvent.delivered_at < cutoff)
        .order_by(OutboxEvent.seq)
        .limit(PRUNE_BATCH)
    )
    rows = list(batch)
    if not rows:
        return 0
    last = max(r.seq or 0 for r in rows)
    OutboxEvent.delete().where(OutboxEvent.id.in_([r.id for r in rows])).execute()
    # Watchers resuming from before `last` are told their cursor is gone (OUT_OF_RANGE).
    bigger = Case(None, [(EventSequence.pruned_through < last, last)], EventSequence.pruned_through)
    EventSequence.update(pruned_through=bigger).execute()
    return len(rows)
