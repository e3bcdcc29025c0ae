"""SQLite's writers queue on a lock file across processes (server/storage/sqlite_writer.py)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
from peewee import OperationalError

from server.storage.sqlite_writer import SqliteWriter, lock_file_of

HOLD = 0.5  # seconds the other process holds the writer; bounds, not timing asserts


def _hold(database: str, ready: Any, released: Any, seconds: float) -> None:
    writer = SqliteWriter(database, wait=5.0)
    with writer:
        ready.set()
        time.sleep(seconds)
        released.value = time.monotonic()  # CLOCK_MONOTONIC: comparable across processes


def _other_process_holds(database: str, seconds: float) -> tuple[multiprocessing.Process, Any]:
    ctx = multiprocessing.get_context("fork")
    ready, released = ctx.Event(), ctx.Value("d", 0.0)
    holder = ctx.Process(target=_hold, args=(database, ready, released, seconds))
    holder.start()
    assert ready.wait(30)
    return holder, released


def test_a_writer_waits_for_another_process_and_gets_the_lock_once_it_is_free(tmp_path: Path) -> None:
    database = str(tmp_path / "issues.db")
    writer = SqliteWriter(database, wait=30.0)
    with writer:  # opened in this process before the fork: the child must not share its lock
        pass
    holder, released = _other_process_holds(database, HOLD)
    with writer:
        acquired = time.monotonic()
    holder.join(30)
    assert holder.exitcode == 0
    assert released.value > 0 and acquired >= released.value


def test_a_writer_gives_up_after_its_wait_as_sqlite_would(tmp_path: Path) -> None:
    database = str(tmp_path / "issues.db")
    holder, _ = _other_process_holds(database, 30.0)
    try:
        with pytest.raises(OperationalError, match="database is locked"), SqliteWriter(database, wait=0.2):
            pass
    finally:
        holder.kill()
        holder.join(30)
    with SqliteWriter(database, wait=5.0):  # a killed holder leaves nothing held
        pass


def test_nested_holds_in_one_thread_keep_the_lock_until_the_outermost_ends(tmp_path: Path) -> None:
    database = str(tmp_path / "issues.db")
    writer, probe = SqliteWriter(database, wait=5.0), SqliteWriter(database, wait=0.05)
    ctx = multiprocessing.get_context("fork")
    with writer:
        with writer:
            pass
        taken = ctx.Process(target=_try, args=(database,))  # still held after the inner exit
        taken.start()
        taken.join(30)
        assert taken.exitcode == 1
    with probe:
        pass


def _try(database: str) -> None:
    try:
        with SqliteWriter(database, wait=0.05):
            pass
    except OperationalError:
        raise SystemExit(1) from None


@pytest.mark.parametrize("database", [":memory:", "", "file::memory:?cache=shared"])
def test_an_in_memory_database_has_no_lock_file(database: str) -> None:
    assert lock_file_of(database) is None
