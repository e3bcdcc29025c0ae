"""The commit sequence: cursors follow commit order, never insert order, and never go back."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from server.events import store
from server.storage.models import EventSequence, OutboxEvent, db
from tests.conftest import BACKEND
from tests.statements import round_trips

ROW = "INSERT INTO outbox_event (kind, group_id, organization_id, project_id, created_at) VALUES (%s, %s, 1, 1, now())"


def _insert_uncommitted(url: str, group_id: int) -> psycopg.Connection:
    conn = psycopg.connect(url)
    conn.execute(ROW, ("issue.resolved", group_id))
    return conn


@pytest.mark.skipif(BACKEND != "postgres", reason="SQLite has one writer: insert order is commit order there")
def test_a_lower_id_committed_later_is_not_skipped_by_a_resuming_consumer(database: str) -> None:
    early_id = _insert_uncommitted(database, group_id=1)  # lower insert id, commits last
    late_id = _insert_uncommitted(database, group_id=2)
    try:
        late_id.commit()
        store.stamp()
        first = store.read_after(0, limit=10)
        assert [e.group_id for e in first] == [2]  # the uncommitted row is neither seen nor numbered
        early_id.commit()
        store.stamp()
        resumed = store.read_after(first[-1].seq, limit=10)
    finally:
        early_id.close()
        late_id.close()
    assert [e.group_id for e in resumed] == [1]
    assert resumed[0].seq > first[-1].seq
    ids = {row.group_id: row.id for row in OutboxEvent.select()}
    assert ids[1] < ids[2]  # the case really happened: insert order differs from commit order


def test_rows_committed_together_are_numbered_in_insert_order(database: str) -> None:
    OutboxEvent.insert_many(
        [{"kind": "issue.resolved", "group_id": n, "organization_id": 1} for n in range(5)]
    ).execute()
    assert store.stamp() == 5
    events = store.read_after(store.head() - 5, limit=10)
    assert [e.group_id for e in events] == list(range(5))
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + 5))


def test_a_seq_is_never_reused_after_pruning(database: str) -> None:
    OutboxEvent.insert_many(
        [{"kind": "issue.resolved", "group_id": n, "organization_id": 1} for n in range(3)]
    ).execute()
    store.stamp()
    before = store.head()
    OutboxEvent.delete().execute()
    OutboxEvent.insert(kind="issue.resolved", group_id=9, organization_id=1).execute()
    store.stamp()
    assert [e.seq for e in store.read_after(0, limit=10)] == [before + 1]


def test_nothing_to_stamp_costs_no_write(database: str) -> None:
    store.stamp()
    assert store.stamp() == 0


@pytest.mark.skipif(BACKEND != "postgres", reason="NOTIFY is PostgreSQL's; SQLite watchers poll")
def test_no_notify_trigger_serialises_the_updates_commits(database: str) -> None:
    with psycopg.connect(database) as conn:
        names = conn.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'outbox_event'::regclass").fetchall()
    assert names == []


@pytest.mark.skipif(BACKEND != "postgres", reason="PostgreSQL's planner and its statistics")
def test_stamping_a_few_rows_reads_the_indexes_even_with_statistics_of_a_backlog(database: str) -> None:
    """Statistics taken while thousands of rows waited unstamped must not make a later tick scan
    the whole outbox (it did: a hash join against a sequential scan, on every tick), however
    much the table has grown since (dead rows of earlier events: with 60,000 of them the batch
    read turned to a sequential scan and a sort, seen as a flaky failure of this test)."""
    for _ in range(6):
        OutboxEvent.insert_many([{"kind": "issue.resolved", "group_id": 1, "organization_id": 1}] * 10_000).execute()
    OutboxEvent.delete().execute()
    OutboxEvent.insert_many(
        [{"kind": "issue.resolved", "group_id": n % 50, "organization_id": 1} for n in range(5000)]
    ).execute()
    db.execute_sql("ANALYZE outbox_event")  # every row unstamped in the statistics
    assert store.stamp() == 5000
    for _ in range(3):
        OutboxEvent.insert(kind="issue.resolved", group_id=1, organization_id=1).execute()
    probe = _plan(store.probe_sql(), (store.SEQUENCE_ROW,))
    with db.atomic():  # as a tick runs the batch: after the lock, in its transaction
        db.execute_sql(store.LOCK_PG, (store.SEQUENCE_ROW,))
        batch = _plan(store.STAMP_PG, {"limit": store.STAMP_BATCH, "row": store.SEQUENCE_ROW})
    assert all("Seq Scan on outbox_event" not in plan for plan in (probe, batch)), (probe, batch)
    assert store.stamp() == 3


def _plan(sql: str, params: object) -> str:
    return "\n".join(row[0] for row in db.execute_sql(f"EXPLAIN {sql}", params).fetchall())


@pytest.mark.skipif(BACKEND != "postgres", reason="round trips are PostgreSQL's; SQLite runs in-process")
def test_a_tick_stamps_in_two_round_trips_one_without_the_probe_and_an_idle_one_in_one(database: str) -> None:
    """The probe; then BEGIN, the lock and the batch (numbered and written) with COMMIT. It was
    seven: the probe, BEGIN and the lock, the ids, their seqs, the sequence, COMMIT, the head;
    then three (the lock in a round trip of its own)."""
    OutboxEvent.insert(kind="issue.resolved", group_id=9, organization_id=1).execute()
    store.stamp()  # the sequence row exists (its first use creates it)
    OutboxEvent.insert_many(
        [{"kind": "issue.resolved", "group_id": n, "organization_id": 1} for n in range(3)]
    ).execute()
    before = store.head()
    with round_trips() as trips:
        run = store.stamp_batch()
    assert (run.count, run.head) == (3, before + 3) and run.head == store.head()
    assert trips == [["SELECT"], ["BEGIN", "SELECT", "WITH", "COMMIT"]]
    OutboxEvent.insert(kind="issue.resolved", group_id=7, organization_id=1).execute()
    with round_trips() as trips:
        busy = store.stamp_batch(probe=False)
    assert (busy.count, busy.head) == (1, before + 4)
    assert trips == [["BEGIN", "SELECT", "WITH", "COMMIT"]]
    with round_trips() as trips:
        idle = store.stamp_batch()
    assert (idle.count, idle.head) == (0, before + 4)
    assert trips == [["SELECT"]]


@pytest.mark.skipif(BACKEND != "postgres", reason="row versions (xmin) are PostgreSQL's")
def test_a_run_without_the_probe_that_finds_nothing_writes_no_new_sequence_row(database: str) -> None:
    """A feed that skipped its probe, or lost the race to another's, must not rewrite the one
    sequence row every tick (a dead row version each time)."""
    OutboxEvent.insert(kind="issue.resolved", group_id=9, organization_id=1).execute()
    store.stamp()
    version = "SELECT xmin::text, next_seq FROM event_sequence WHERE id = %s"
    before = db.execute_sql(version, (store.SEQUENCE_ROW,)).fetchone()
    assert store.stamp_batch(probe=False).count == 0
    assert db.execute_sql(version, (store.SEQUENCE_ROW,)).fetchone() == before


def test_without_the_probe_an_idle_run_stamps_nothing_and_the_first_run_creates_the_sequence(database: str) -> None:
    OutboxEvent.delete().execute()
    EventSequence.delete().execute()  # as on a new database
    assert store.stamp_batch(probe=False) == store.Stamped(count=0, head=0)
    OutboxEvent.insert_many(
        [{"kind": "issue.resolved", "group_id": n, "organization_id": 1} for n in range(2)]
    ).execute()
    assert store.stamp_batch(probe=False) == store.Stamped(count=2, head=2)
    assert store.stamp_batch(probe=False) == store.Stamped(count=0, head=2)
    assert [e.seq for e in store.read_after(0, limit=10)] == [1, 2]


def test_stampers_racing_number_every_row_once_and_leave_no_gap(database: str) -> None:
    """Several processes' feeds stamp at once: each batch must see what the one before it
    stamped (its statement runs after the lock), or a row gets two seqs, or the sequence skips."""
    store.stamp()  # the sequence row exists
    stop = threading.Event()
    errors: list[BaseException] = []

    def stamper(probe: bool) -> None:
        try:
            with db.connection_context():
                while not stop.is_set():
                    store.stamp_batch(limit=7, probe=probe)
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)

    # A feed that just stamped skips the probe: both kinds race.
    threads = [threading.Thread(target=stamper, args=(probe,)) for probe in (True, False, False)]
    for thread in threads:
        thread.start()
    try:
        for n in range(60):
            OutboxEvent.insert_many(
                [{"kind": "issue.resolved", "group_id": n, "organization_id": 1} for _ in range(3)]
            ).execute()
    finally:
        time.sleep(0.2)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, errors
    store.stamp()
    seqs = sorted(row.seq for row in OutboxEvent.select(OutboxEvent.seq))
    assert len(seqs) == 180 and None not in seqs
    assert seqs == list(range(seqs[0], seqs[0] + 180))  # each once, no gap
    assert store.head() == seqs[-1]
