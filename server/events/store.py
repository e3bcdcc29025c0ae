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

import json

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
        if not db.execute_sql(unstamped_sql(), (1,)).fetchone():
            return 0  # the common idle case costs one index probe, no write transaction
    return in_transaction(lambda: _stamp_locked(limit))


def unstamped_sql() -> str:
    # ORDER BY id is the order of the partial index on unstamped rows, so the probe and the batch
    # are read from that index whatever the statistics say. Without it, statistics taken during a
    # backlog made PostgreSQL scan the whole outbox for rows no longer there, on every idle probe.
    return f"SELECT id FROM outbox_event WHERE seq IS NULL ORDER BY id LIMIT {db.obj.param}"


SET_SEQS_PG = (
    "UPDATE outbox_event SET seq = v.seq FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, seq)"
    " WHERE outbox_event.id = v.id"
)
SET_SEQS_SQLITE = (
    "UPDATE outbox_event SET seq = json_extract(v.value, '$[1]') FROM json_each(?) AS v"
    " WHERE outbox_event.id = json_extract(v.value, '$[0]')"
)


def _stamp_locked(limit: int) -> int:
    base = _lock_sequence()
    ids = [int(row[0]) for row in db.execute_sql(unstamped_sql(), (limit,)).fetchall()]
    if not ids:
        return 0
    # Ids and their seqs as one parameter, joined by primary key: the planner knows how many
    # rows come. (One UPDATE ... FROM (SELECT ... LIMIT 5000) was costed as 5,000 rows and
    # hash-joined against a sequential scan of the whole outbox on every tick: 2026-11-30,
    # ~10 million outbox rows read per 5 s of resolve load once the outbox held 150,000 events.)
    seqs = list(range(base, base + len(ids)))
    if is_postgres():
        db.execute_sql(SET_SEQS_PG, (ids, seqs))
    else:
        db.execute_sql(SET_SEQS_SQLITE, (json.dumps([list(pair) for pair in zip(ids, seqs, strict=True)]),))
    EventSequence.update(next_seq=EventSequence.next_seq + len(ids)).where(EventSequence.id == SEQUENCE_ROW).execute()
    return len(ids)


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
