"""Deferred writes: they leave before the next statement or the commit, together on PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Any

import peewee
import pytest
from peewee import IntegrityError

from server.storage.models import Organization, Team, db
from tests.conftest import BACKEND
from tests.statements import recorded, round_trips

pytestmark = pytest.mark.db


def _insert_org(slug: str) -> tuple[str, list[object]]:
    p = db.obj.param
    sql = 'INSERT INTO "organization" ("slug", "name", "allow_joinleave", "events_member_admin", "features")'
    return f"{sql} VALUES ({p}, {p}, {p}, {p}, {p})", [slug, slug, False, True, "[]"]


def _insert_team(org_id: int, slug: str) -> tuple[str, list[object]]:
    p = db.obj.param
    return f'INSERT INTO "team" ("organization_id", "slug", "name") VALUES ({p}, {p}, {p})', [org_id, slug, slug]


def test_a_deferred_write_runs_before_the_next_statement_which_sees_it(database: str) -> None:
    with recorded() as seen, db.atomic():
        db.obj.defer(*_insert_org("a"), table="organization")
        # queued, not sent; PostgreSQL's BEGIN waits for the first statement too
        assert seen == ([] if BACKEND == "postgres" else ["BEGIN"])
        assert Organization.select().where(Organization.slug == "a").count() == 1
    assert [s.split()[0] for s in seen] == ["BEGIN", "INSERT", "SELECT", "COMMIT"]


def test_writes_to_different_tables_leave_together_on_postgresql(database: str) -> None:
    org = Organization.create(slug="o", name="o")
    with recorded() as seen, db.atomic():
        db.obj.defer(*_insert_org("b"), table="organization")
        db.obj.defer(*_insert_team(org.id, "t"), table="team")
    writes = seen[1:-1]
    if BACKEND == "postgres":
        assert len(writes) == 1 and writes[0].startswith("WITH w0 AS (INSERT") and "w1 AS (INSERT" in writes[0]
    else:  # SQLite has no data-modifying CTEs: one by one, in order
        assert [w.split('"')[1] for w in writes] == ["organization", "team"]
    assert Team.select().count() == 1 and Organization.select().count() == 2


def test_a_queued_row_lock_leaves_as_its_own_statement_not_a_cte(database: str) -> None:
    """PostgreSQL skips a SELECT in a WITH that nothing references: a queued lock read must run."""
    org = Organization.create(slug="l", name="l")
    p = db.obj.param
    lock = f'SELECT "id" FROM "organization" WHERE "id" = {p}' + (" FOR UPDATE" if BACKEND == "postgres" else "")
    with round_trips() as trips, recorded() as seen, db.atomic():
        db.obj.defer(lock, [org.id], table="organization")
        db.obj.defer(*_insert_team(org.id, "t"), table="team")
    assert [s.split()[0] for s in seen[1:-1]] == ["SELECT", "INSERT"]
    if BACKEND == "postgres":
        assert trips == [["BEGIN", "SELECT", "INSERT", "COMMIT"]]  # still one round trip
    assert Team.select().count() == 1


def test_a_second_write_to_the_same_table_sends_the_first_one_first(database: str) -> None:
    with recorded() as seen, db.atomic():
        db.obj.defer(*_insert_org("c"), table="organization")
        db.obj.defer(*_insert_org("d"), table="organization")
    assert [s.split()[0] for s in seen] == ["BEGIN", "INSERT", "INSERT", "COMMIT"]
    assert Organization.select().count() == 2


def test_a_rollback_discards_what_was_queued(database: str) -> None:
    with pytest.raises(RuntimeError), db.atomic():
        db.obj.defer(*_insert_org("e"), table="organization")
        raise RuntimeError("abandon")
    assert Organization.select().count() == 0


def test_outside_a_transaction_a_write_runs_at_once(database: str) -> None:
    with recorded() as seen:
        db.obj.defer(*_insert_org("f"), table="organization")
    assert len(seen) == 1 and Organization.select().count() == 1


def test_a_transaction_that_ran_nothing_sends_nothing_on_postgresql(database: str) -> None:
    with recorded() as seen, db.atomic():
        pass
    assert seen == ([] if BACKEND == "postgres" else ["BEGIN", "COMMIT"])


def test_an_error_in_a_pipelined_write_rolls_the_transaction_back(database: str) -> None:
    org = Organization.create(slug="g", name="g")
    with pytest.raises(IntegrityError), db.atomic():
        db.obj.defer(*_insert_team(org.id, "t"), table="team")
        db.obj.defer(*_insert_org("g"), table="organization")  # slug taken: fails at the flush
        Team.select().count()
    assert Team.select().count() == 0


def _read_org(slug: str) -> tuple[str, list[object]]:
    return f'SELECT "slug" FROM "organization" WHERE "slug" = {db.obj.param}', [slug]


def test_a_read_with_commit_leaves_with_the_writes_and_commit_in_one_round_trip(database: str) -> None:
    with round_trips() as trips, db.atomic():
        db.obj.defer(*_insert_org("h"), table="organization")
        pending = db.obj.read_with_commit(*_read_org("h"))
        if BACKEND == "postgres":  # nothing sent yet: the row exists only after COMMIT
            assert trips == []
            with pytest.raises(RuntimeError, match="never sent"):
                pending.row()
    assert pending.row() == ("h",)  # it saw the transaction's own write
    if BACKEND == "postgres":
        assert trips == [["BEGIN", "INSERT", "SELECT", "COMMIT"]]


def test_a_statement_after_a_read_with_commit_sends_the_read_first(database: str) -> None:
    with recorded() as seen, db.atomic():
        pending = db.obj.read_with_commit(*_read_org("i"))
        db.obj.execute_sql(*_insert_org("i"))
    assert pending.row() is None  # read before the insert, as written
    assert [s.split()[0] for s in seen] == ["BEGIN", "SELECT", "INSERT", "COMMIT"]


def test_a_rolled_back_read_with_commit_was_never_sent(database: str) -> None:
    with pytest.raises(ValueError), db.atomic():
        db.obj.execute_sql(*_insert_org("j"))
        pending = db.obj.read_with_commit(*_read_org("j"))
        if BACKEND == "postgres":
            raise ValueError("abandon before COMMIT")
        raise ValueError("abandon")
    if BACKEND == "postgres":
        with pytest.raises(RuntimeError, match="never sent"):
            pending.row()
    assert Organization.select().count() == 0


def test_in_a_nested_transaction_a_read_with_commit_leaves_with_its_release(database: str) -> None:
    # The outer transaction's caller (a request id's record) needs the reply before it commits.
    with db.atomic():
        db.obj.execute_sql(*_insert_org("k"))
        with recorded() as seen:
            with db.atomic():
                pending = db.obj.read_with_commit(*_read_org("k"))
            assert pending.row() == ("k",)
        assert [s.split()[0] for s in seen] == ["SAVEPOINT", "SELECT", "RELEASE"]


def test_a_read_with_commit_in_a_rolled_back_savepoint_is_dropped(database: str) -> None:
    with db.atomic():
        with recorded() as seen, pytest.raises(ValueError), db.atomic():
            db.obj.execute_sql(*_insert_org("m"))
            pending = db.obj.read_with_commit(*_read_org("m"))
            raise ValueError("the body fails after its read was queued")
        if BACKEND == "postgres":
            assert [s.split()[0] for s in seen] == ["BEGIN", "SAVEPOINT", "INSERT", "ROLLBACK"]  # no SELECT
            with pytest.raises(RuntimeError, match="never sent"):
                pending.row()
        assert Organization.select().count() == 0  # the savepoint rolled back; the outer one goes on


def test_a_failed_read_with_commit_rolls_the_transaction_back(database: str) -> None:
    with pytest.raises(peewee.DatabaseError), db.atomic():
        db.obj.execute_sql(*_insert_org("l"))
        db.obj.read_with_commit("SELECT no_such_column FROM organization", [])
    assert Organization.select().count() == 0


def test_a_round_trips_time_is_counted_once(database: str) -> None:
    # The access log's sql_ms sums the statements' durations: a pipeline of four is one wait, and
    # it goes to the last statement. Told of a round trip that began 10 s ago, the statements
    # before the last report (next to) none of it; this thread's events only (a session server's
    # threads run statements too).
    me = threading.get_ident()
    events: list[Any] = []

    def hook(event: Any) -> None:
        if threading.get_ident() == me:
            events.append(event)

    statements = [("BEGIN", None), ("INSERT", None), ("SELECT", None), ("COMMIT", None)]
    db.obj.query_hooks.append(hook)
    try:
        db.obj._tell_hooks(statements, time.perf_counter() - 10.0, None)
    finally:
        db.obj.query_hooks.remove(hook)
    assert [e.sql for e in events] == ["BEGIN", "INSERT", "SELECT", "COMMIT"]
    assert events[-1].duration >= 10.0
    assert sum(e.duration for e in events[:-1]) < 1.0
