"""The commit sequence: stamp committed outbox rows after commit, read events after a cursor.

Why a sequence stamped after commit: on PostgreSQL an update with a lower insert id can commit
after one with a higher id, so a reader that has seen id 11 and resumes "after 11" would skip
id 10 for ever. The sequencer only ever sees committed rows, and stamps them under one lock (the
sequence row's row lock on PostgreSQL, the write lock on SQLite), each stamping run numbering
after the previous one. So seq order is commit order (per issue too: the group's row lock
serialises its writers), and the stamped seqs a reader can see are always a prefix: resuming
after any seq never skips an event.
"""

from __future__ import annotations

from peewee import fn

from server.core.unit_of_work import in_transaction
from server.events.records import EventFilter, EventRecord
from server.storage.db import is_postgres
from server.storage.models import EventSequence, OutboxEvent, db

STAMP_BATCH = 5000
SEQUENCE_ROW = 1


def stamp(*, limit: int = STAMP_BATCH) -> int:
    """Number the committed, unstamped rows in insert-id order; returns how many were stamped."""
    with db.connection_context():
        if not OutboxEvent.select(OutboxEvent.id).where(OutboxEvent.seq.is_null()).limit(1).exists():
            return 0  # the common idle case costs one index probe, no write transaction
    return in_transaction(lambda: _stamp_locked(limit))


def _stamp_locked(limit: int) -> int:
    base = _lock_sequence() - 1
    param = db.obj.param
    cursor = db.execute_sql(
        f"UPDATE outbox_event SET seq = {param} + t.n "
        "FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM outbox_event "
        f"WHERE seq IS NULL ORDER BY id LIMIT {param}) AS t WHERE outbox_event.id = t.id",
        (base, limit),
    )
    count = int(cursor.rowcount)
    if count:
        EventSequence.update(next_seq=EventSequence.next_seq + count).where(EventSequence.id == SEQUENCE_ROW).execute()
    return count


def _lock_sequence() -> int:
    """The next seq, with the sequence row locked until commit (created on first use)."""
    suffix = " FOR UPDATE" if is_postgres() else ""  # SQLite: the write transaction serialises
    sql = f"SELECT next_seq FROM event_sequence WHERE id = {db.obj.param}{suffix}"
    row = db.execute_sql(sql, (SEQUENCE_ROW,)).fetchone()
    if row is not None:
        return int(row[0])
    start = (OutboxEvent.select(fn.MAX(OutboxEvent.seq)).scalar() or 0) + 1
    EventSequence.insert(id=SEQUENCE_ROW, next_seq=start).on_conflict_ignore().execute()
    return _lock_sequence()


def head() -> int:
    """The highest seq stamped and committed (0: none yet)."""
    with db.connection_context():
        row = EventSequence.get_or_none(EventSequence.id == SEQUENCE_ROW)
    return row.next_seq - 1 if row is not None else 0


def pruned_through() -> int:
    with db.connection_context():
        row = EventSequence.get_or_none(EventSequence.id == SEQUENCE_ROW)
    return row.pruned_through if row is not None else 0


def read_after(
    cursor: int, *, limit: int, through: int | None = None, where: EventFilter | None = None
) -> list[EventRecord]:
    """Events with seq in (cursor, through], in seq order, at most `limit`."""
    clause = OutboxEvent.seq > cursor
    if through is not None:
        clause &= OutboxEvent.seq <= through
    if where is not None:
        clause &= where.where()
    with db.connection_context():
        rows = OutboxEvent.select().where(clause).order_by(OutboxEvent.seq).limit(limit)
        return [EventRecord.from_row(row) for row in rows]
