"""SQLite writers of one process queue on a lock instead of polling SQLite's busy handler."""

from __future__ import annotations

import threading

import pytest

from server.core.unit_of_work import in_transaction
from server.storage import db as database_module
from server.storage.db import is_postgres

pytestmark = pytest.mark.db


def _held() -> bool:
    """Whether another thread finds the writer lock taken (a non-blocking try from outside)."""
    result: list[bool] = []

    def probe() -> None:
        lock = getattr(database_module.write_lock(), "lock", None)  # none on PostgreSQL
        if lock is None:
            result.append(False)
            return
        got = lock.acquire(blocking=False)
        if got:
            lock.release()
        result.append(not got)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return result[0]


def test_a_write_transaction_holds_the_writer_lock_on_sqlite_only(database: str) -> None:
    assert in_transaction(_held) is (not is_postgres())
    assert not _held()  # released after the commit


def test_a_read_does_not_take_the_writer_lock(database: str) -> None:
    assert in_transaction(_held, write=False) is False


def test_a_failed_write_releases_the_writer_lock(database: str) -> None:
    def boom() -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError):
        in_transaction(boom)
    assert not _held()


def test_a_nested_write_in_the_same_thread_does_not_deadlock(database: str) -> None:
    assert in_transaction(lambda: in_transaction(lambda: "inner")) == "inner"
