"""The commit sequence: cursors follow commit order, never insert order, and never go back."""

from __future__ import annotations

import psycopg
import pytest

from server.events import store
from server.storage.models import OutboxEvent, db
from tests.conftest import BACKEND

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
    the whole outbox (it did: a hash join against a sequential scan, on every tick)."""
    OutboxEvent.insert_many(
        [{"kind": "issue.resolved", "group_id": n % 50, "organization_id": 1} for n in range(5000)]
    ).execute()
    db.execute_sql("ANALYZE outbox_event")  # every row unstamped in the statistics
    assert store.stamp() == 5000
    ids = [OutboxEvent.insert(kind="issue.resolved", group_id=1, organization_id=1).execute() for _ in range(3)]
    plans = [
        _plan(store.unstamped_sql(), (1,)),
        _plan(store.unstamped_sql(), (store.STAMP_BATCH,)),
        _plan(store.SET_SEQS_PG, (ids, [1, 2, 3])),
    ]
    assert all("Seq Scan on outbox_event" not in plan for plan in plans), plans
    assert store.stamp() == 3


def _plan(sql: str, params: tuple[object, ...]) -> str:
    return "\n".join(row[0] for row in db.execute_sql(f"EXPLAIN {sql}", params).fetchall())
