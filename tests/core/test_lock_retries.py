"""Which lock conflicts a call retries: the ones that failed fast, never one that waited out the
lock timeout (waiting again only multiplied the wait); how long a write waits for a row lock;
what a statement past the server's time limit answers."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from peewee import OperationalError

from server.core import unit_of_work, update
from server.core.commands import UpdateCommand
from server.core.errors import Conflict, TimedOut
from server.core.unit_of_work import LOCK_WAIT_SQL, in_transaction
from server.storage.db import LOCK_TIMEOUT_MS
from server.storage.models import Group, db
from tests import factories as f
from tests.conftest import BACKEND
from tests.core.helpers import caller
from tests.statements import captured

pytestmark = pytest.mark.db


def _conflict(sqlstate: str) -> OperationalError:
    error = OperationalError("could not obtain lock")
    error.orig = SimpleNamespace(sqlstate=sqlstate)  # type: ignore[attr-defined]  # as peewee wraps psycopg's
    return error


class _FailingFirst:
    """Raises `error` on its first `times` calls (after `wait` seconds each), then answers 42."""

    def __init__(self, error: Exception, *, times: int, wait: float = 0.0) -> None:
        self.error, self.times, self.wait, self.calls = error, times, wait, 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.times:
            time.sleep(self.wait)
            raise self.error
        return 42


@pytest.mark.parametrize("sqlstate", ["40001", "40P01", "55P03"])
def test_a_conflict_that_failed_fast_is_retried(database: str, sqlstate: str) -> None:
    body = _FailingFirst(_conflict(sqlstate), times=2)
    assert in_transaction(body) == 42
    assert body.calls == 3


def test_a_conflict_that_waited_out_the_lock_timeout_is_not_retried(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unit_of_work, "RETRY_WITHIN", 0.05)  # the lock timeout, scaled down
    body = _FailingFirst(_conflict("55P03"), times=1, wait=0.1)
    with pytest.raises(Conflict) as exc:
        in_transaction(body)
    assert exc.value.reason == "CONCURRENT_UPDATE"
    assert body.calls == 1


def test_fast_conflicts_stop_after_the_last_attempt(database: str) -> None:
    body = _FailingFirst(_conflict("40P01"), times=unit_of_work.ATTEMPTS)
    with pytest.raises(Conflict):
        in_transaction(body)
    assert body.calls == unit_of_work.ATTEMPTS


@pytest.mark.skipif(BACKEND != "postgres", reason="row locks and lock_timeout are PostgreSQL's")
def test_a_short_deadline_caps_the_wait_for_a_row_another_session_holds(database: str) -> None:
    import psycopg

    w = f.world()
    g = f.group(w["project"])
    with psycopg.connect(database) as holder:
        holder.execute('SELECT id FROM "group" WHERE id = %s FOR UPDATE', [g.id])  # held until the end
        started = time.monotonic()
        with captured() as sent, pytest.raises(Conflict):
            update.update_group(
                caller=caller(w["user"].id), organization_id=w["org"].id, group_id=g.id,
                command=UpdateCommand(status="resolved"), time_left=lambda: 0.3,
            )  # fmt: skip
        waited = time.monotonic() - started
    caps = [params for sql, params in sent if sql == LOCK_WAIT_SQL]
    assert caps and all(cap == ["300"] for cap in caps)  # once per attempt (a 0.3 s wait is retried)
    assert waited < LOCK_TIMEOUT_MS / 1000  # not the session's whole lock_timeout
    assert Group.get_by_id(g.id).status == 0


def test_without_a_short_deadline_the_lock_wait_is_left_alone(database: str) -> None:
    w = f.world()
    g = f.group(w["project"])
    for time_left in (lambda: None, lambda: 30.0):
        with captured() as sent:
            update.update_group(
                caller=caller(w["user"].id), organization_id=w["org"].id, group_id=g.id,
                command=UpdateCommand(is_bookmarked=True), time_left=time_left,
            )  # fmt: skip
        assert not [sql for sql, _ in sent if sql == LOCK_WAIT_SQL]


@pytest.mark.skipif(BACKEND != "postgres", reason="statement_timeout is PostgreSQL's")
def test_a_statement_past_the_servers_time_limit_is_timed_out_not_internal(database: str) -> None:
    def slow() -> None:
        db.execute_sql("SET LOCAL statement_timeout = 50")
        db.execute_sql("SELECT pg_sleep(2)")

    with pytest.raises(TimedOut) as exc:
        in_transaction(slow)
    assert exc.value.reason == "STATEMENT_TIMEOUT"
