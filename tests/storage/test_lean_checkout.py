"""The pool's short checkout path (storage.checkout) keeps every rule of peewee's own: the same
connection back, stale and unusable ones dropped, a full pool waited on, a transaction refused;
and the liveness gate (a queue of tokens) admits no more than its slots."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from peewee import OperationalError

from server.storage import db as storage
from server.storage.liveness import Gate


@pytest.fixture()
def pool(tmp_path: Path) -> Iterator[storage.SqlitePool]:
    # A pool of its own, not make_database's: that one becomes the process's database, under
    # whatever test server (and its event feed's thread) is still running in this process.
    database = storage.SqlitePool(
        str(tmp_path / "pool.db"), max_connections=1, timeout=5, check_same_thread=False, autoconnect=False
    )
    yield database
    database.close_all()


def _checked_out(pool: storage.SqlitePool) -> object:
    pool.connect()
    conn = pool.connection()
    pool.close()
    return conn


def test_a_returned_connection_is_handed_out_again_and_tracked_while_in_use(pool: storage.SqlitePool) -> None:
    first = _checked_out(pool)
    pool.connect()
    assert pool.connection() is first and list(pool._in_use) == [id(first)] and not pool._connections
    pool.close()
    assert not pool._in_use and [conn for _, _, conn in pool._connections] == [first]


def test_a_stale_connection_is_closed_and_replaced(pool: storage.SqlitePool) -> None:
    first = _checked_out(pool)
    pool._stale_timeout = 60
    pool._connections = [(0.0, 1, first)]  # returned in 1970
    pool.connect()
    assert pool.connection() is not first
    pool.close()
    with pytest.raises(Exception, match="closed"):
        first.execute("SELECT 1")  # type: ignore[attr-defined]


def test_a_connection_the_pool_cannot_reuse_is_closed_not_pooled(
    pool: storage.SqlitePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool.connect()
    conn = pool.connection()
    monkeypatch.setattr(pool, "_can_reuse", lambda c: False)
    pool.close()
    assert not pool._connections and not pool._in_use and pool.is_closed()
    with pytest.raises(Exception, match="closed"):
        conn.execute("SELECT 1")


def test_closing_inside_a_transaction_is_refused_as_peewee_refuses_it(pool: storage.SqlitePool) -> None:
    pool.connect()
    with pool.atomic(), pytest.raises(OperationalError, match="transaction is open"):
        pool.close()
    pool.close()


def test_a_full_pool_is_waited_on_and_the_waiter_woken_by_the_check_in(pool: storage.SqlitePool) -> None:
    pool.connect()  # the pool's one connection
    held = pool.connection()
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(_checked_out(pool)))
    waiter.start()
    waiter.join(timeout=0.3)
    assert waiter.is_alive() and not got  # waiting for the connection, not given a second one
    pool.close()
    waiter.join(timeout=5)
    assert got == [held]


def test_the_gate_admits_its_slots_and_refuses_the_next_after_its_wait() -> None:
    gate = Gate(2)
    assert gate.acquire(timeout=0) and gate.acquire(timeout=0)
    assert not gate.acquire(timeout=0.05)
    gate.release()
    assert gate.acquire(timeout=0)
