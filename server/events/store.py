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

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

from peewee import Case, fn

from server.core.unit_of_work import in_transaction
from server.events.records import EventFilter, EventRecord
from server.storage.db import is_postgres
from server.storage.models import EventSequence, OutboxEvent, db, utcnow

STAMP_BATCH = 5000
SEQUENCE_ROW = 1


@dataclass(frozen=True)
class Stamped:
    count: int  # rows this run numbered
    head: int  # the highest seq stamped and committed when the run ended (0: none yet)


def stamp(*, limit: int = STAMP_BATCH) -> int:
    """Number the committed, unstamped rows in insert-id order; returns how many were stamped."""
    return stamp_batch(limit=limit).count


def stamp_batch(*, limit: int = STAMP_BATCH, probe: bool = True) -> Stamped:
    """stamp(), also telling the head it left, so a tick needs no read of its own for it.

    probe=False skips the read that spares an idle run its write transaction: for a caller that
    expects work (the feed, right after a run that stamped rows), one round trip instead of two.
    """
    if probe:
        with db.connection_context():
            unstamped, next_seq = db.execute_sql(probe_sql(), (SEQUENCE_ROW,)).fetchone()
        if not unstamped:  # the common idle case: one statement, no write transaction
            return Stamped(count=0, head=(next_seq or 1) - 1)
    if not is_postgres():
        return in_transaction(lambda: _stamp_locked_sqlite(limit))
    run = in_transaction(lambda: _stamp_locked_pg(limit))()
    if run is None:  # the sequence row's first use: create it, then stamp
        in_transaction(_lock_sequence)
        run = in_transaction(lambda: _stamp_locked_pg(limit))()
        assert run is not None  # the row exists now, and nothing deletes it
    return run


# The unstamped rows in stamping order, up to a LIMIT the user of it appends. ORDER BY id is the
# order of the partial index on unstamped rows, so the probe and the batch are read from that
# index whatever the statistics say. Without it, statistics taken during a backlog made
# PostgreSQL scan the whole outbox for rows no longer there, on every idle probe.
UNSTAMPED_IDS = "SELECT id FROM outbox_event WHERE seq IS NULL ORDER BY id LIMIT"


def unstamped_sql() -> str:
    return f"{UNSTAMPED_IDS} {db.obj.param}"


def probe_sql() -> str:
    """Whether a row waits unstamped, and the sequence's next seq (NULL before its first use).
    Not EXISTS: PostgreSQL drops an EXISTS subquery's ORDER BY and LIMIT, and with them the
    partial index (a sequential scan of the outbox, with statistics of a backlog)."""
    param = db.obj.param
    return f"SELECT ({UNSTAMPED_IDS} 1) IS NOT NULL, (SELECT next_seq FROM event_sequence WHERE id = {param})"


# PostgreSQL: one round trip. BEGIN, the lock of the sequence row, and the batch read, numbered
# and written with the sequence moved in one statement, sent with COMMIT (a tick was seven round
# trips, then three). The batch statement runs after the one that locked the sequence row, so its
# snapshot already sees every batch stamped before it and the next_seq they left (READ COMMITTED:
# a snapshot per statement); locked in the same statement, its snapshot would predate the lock
# and number rows another stamper had just numbered. The ids reach the UPDATE as an array joined
# by primary key, so the planner expects few rows: joined against the LIMIT subquery itself, it
# costed 5,000 and hash-joined a sequential scan of the whole outbox on every tick (2026-11-30).
# The sequence moves only when rows were stamped: a run that found none (a feed that skipped its
# probe, or lost the race to another process's) writes no new version of the sequence row.
# Back: (next_seq, base); (NULL, NULL) when the sequence row does not exist yet.
# The lock also turns sequential scans off for the rest of the stamping transaction: the batch's
# only good plan is the partial index of unstamped rows, but with statistics of a backlog (every
# row unstamped) on a table grown since, the planner expected about STAMP_BATCH matches and
# scanned and sorted the whole outbox on every tick (a flaky plan test, 2026-12-02).
LOCK_PG = "SELECT next_seq, set_config('enable_seqscan', 'off', true) FROM event_sequence WHERE id = %s FOR UPDATE"
STAMP_PG = (
    "WITH seq AS (SELECT next_seq AS base FROM event_sequence WHERE id = %(row)s),"
    " batch AS (SELECT array_agg(id ORDER BY id) AS ids FROM"
    f" ({UNSTAMPED_IDS} %(limit)s) AS unstamped),"
    " stamped AS (UPDATE outbox_event SET seq = (SELECT base FROM seq) + v.n - 1"
    " FROM unnest((SELECT ids FROM batch)) WITH ORDINALITY AS v(id, n)"
    " WHERE outbox_event.id = v.id RETURNING 1),"
    " moved AS (UPDATE event_sequence SET next_seq = (SELECT base FROM seq) + (SELECT count(*) FROM stamped)"
    " WHERE id = %(row)s AND EXISTS (SELECT 1 FROM stamped) RETURNING next_seq)"
    " SELECT COALESCE((SELECT next_seq FROM moved), (SELECT base FROM seq)), (SELECT base FROM seq)"
)
SET_SEQS_SQLITE = (
    "UPDATE outbox_event SET seq = json_extract(v.value, '$[1]') FROM json_each(?) AS v"
    " WHERE outbox_event.id = json_extract(v.value, '$[0]')"
)


def _stamp_locked_pg(limit: int) -> Callable[[], Stamped | None]:
    database = db.obj
    database.defer(LOCK_PG, (SEQUENCE_ROW,), table="event_sequence")  # leaves with BEGIN and the batch
    pending = database.read_with_commit(STAMP_PG, {"limit": limit, "row": SEQUENCE_ROW})

    def stamped() -> Stamped | None:
        next_seq, base = pending.row()
        if base is None:
            return None
        return Stamped(count=next_seq - base, head=next_seq - 1)

    return stamped


def _stamp_locked_sqlite(limit: int) -> Stamped:
    base = _lock_sequence()
    ids = [int(row[0]) for row in db.execute_sql(unstamped_sql(), (limit,)).fetchall()]
    if not ids:
        return Stamped(count=0, head=base - 1)
    seqs = list(range(base, base + len(ids)))
    db.execute_sql(SET_SEQS_SQLITE, (json.dumps([list(pair) for pair in zip(ids, seqs, strict=True)]),))
    EventSequence.update(next_seq=EventSequence.next_seq + len(ids)).where(EventSequence.id == SEQUENCE_ROW).execute()
    return Stamped(count=len(ids), head=base + len(ids) - 1)


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


def cursor_bounds() -> tuple[int, int]:
    """(pruned through, head): a resume cursor is valid from the first to the second, read
    together from the sequence row (0, 0 before anything was stamped)."""
    with db.connection_context():
        row = EventSequence.get_or_none(EventSequence.id == SEQUENCE_ROW)
    return (row.pruned_through, row.next_seq - 1) if row is not None else (0, 0)


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


PRUNE_BATCH = 1000


def prune(*, older_than: dt.timedelta, delivered_only: bool = True) -> int:
    """Delete events written longer ago than `older_than`, a batch per transaction; returns how
    many. delivered_only: only those the relay has published (the relay's own pruning); else
    every stamped one (a deployment without a relay, `serve --events-retention`). An unstamped
    row is never pruned: its seq, and so its place in every reader's order, is still to come."""
    total = 0
    while True:
        deleted = in_transaction(lambda: _prune_batch(utcnow() - older_than, delivered_only=delivered_only))
        total += deleted
        if deleted < PRUNE_BATCH:
            return total


def _prune_batch(cutoff: dt.datetime, *, delivered_only: bool) -> int:
    old = (OutboxEvent.delivered_at < cutoff) if delivered_only else (OutboxEvent.created_at < cutoff)
    batch = (
        OutboxEvent.select(OutboxEvent.id, OutboxEvent.seq)
        .where(old & OutboxEvent.seq.is_null(False))
        .order_by(OutboxEvent.seq)
        .limit(PRUNE_BATCH)
    )
    rows = list(batch)
    if not rows:
        return 0
    last = max(r.seq or 0 for r in rows)  # every row has a seq (the query asked for it)
    OutboxEvent.delete().where(OutboxEvent.id.in_([r.id for r in rows])).execute()
    # Watchers resuming from before `last` are told their cursor is gone (OUT_OF_RANGE).
    bigger = Case(None, [(EventSequence.pruned_through < last, last)], EventSequence.pruned_through)
    EventSequence.update(pruned_through=bigger).execute()
    return len(rows)
