"""Deferred writes: they leave before the next statement or the commit, together on PostgreSQL."""

from __future__ import annotations

import pytest
from peewee import IntegrityError

from server.storage.models import Organization, Team, db
from tests.conftest import BACKEND
from tests.statements import recorded

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
