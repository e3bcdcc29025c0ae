"""Wake-ups after commit: an update that wrote outbox rows wakes the event feeds once its COMMIT
returned; a rolled-back one never does (server/storage/outbox_signal.py)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from server.core.unit_of_work import in_transaction
from server.events import store
from server.events.feed import EventFeed
from server.events.listener import NOTIFY_GAP, PgWakeups, Wakeups
from server.storage import liveness, outbox_signal
from server.storage.migrate_events import NOTIFY_CHANNEL
from server.storage.models import OutboxEvent
from tests.conftest import BACKEND


class Calls:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def _write_outbox() -> None:
    OutboxEvent.insert(kind="issue.resolved", group_id=1, organization_id=1).execute()
    outbox_signal.mark()


def test_a_commit_that_wrote_outbox_rows_calls_the_listeners_after_commit(database: str) -> None:
    calls = Calls()
    outbox_signal.subscribe(calls)
    try:
        in_transaction(_write_outbox)
        in_transaction(lambda: None)  # wrote nothing: no wake-up
    finally:
        outbox_signal.unsubscribe(calls)
    assert calls.count == 1


def test_a_rolled_back_transaction_wakes_nobody(database: str) -> None:
    calls = Calls()
    outbox_signal.subscribe(calls)

    def refused() -> None:
        _write_outbox()
        raise ValueError("refused after writing")

    try:
        with pytest.raises(ValueError):
            in_transaction(refused)
        in_transaction(lambda: None)
    finally:
        outbox_signal.unsubscribe(calls)
    assert calls.count == 0
    assert OutboxEvent.select().count() == 0


def test_a_poke_ends_a_polling_wait_at_once() -> None:
    wakeups = Wakeups(interval=60.0)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (wakeups.wait(), done.set()))
    thread.start()
    wakeups.poke()
    assert done.wait(30)
    thread.join()


@contextmanager
def _listening(database: str) -> Iterator[tuple[PgWakeups, psycopg.Connection[Any]]]:
    """This process's wake-ups, and another session LISTENing as another process's feed would."""
    wakeups = PgWakeups(url=database, interval=60.0)
    try:
        with psycopg.connect(database, autocommit=True) as listener:
            listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            yield wakeups, listener
    finally:
        wakeups.close()


@pytest.mark.skipif(BACKEND != "postgres", reason="NOTIFY is PostgreSQL's; SQLite watchers poll")
def test_a_poke_on_postgresql_notifies_every_listening_process(database: str) -> None:
    with _listening(database) as (wakeups, listener):
        wakeups.poke()
        assert len(list(listener.notifies(timeout=30, stop_after=1))) == 1


class CountingFeed(EventFeed):
    """The real wait/rest loop; tick() only counts (no database)."""

    def __init__(self, wakeups: Wakeups, *, tick_gap: float) -> None:
        super().__init__(wakeups=wakeups, tick_gap=tick_gap)
        self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1


def test_a_stream_of_commits_costs_the_feed_one_tick_per_gap_not_one_per_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store, "head", lambda: 0)
    monkeypatch.setattr(liveness, "is_reachable", lambda: True)
    feed = CountingFeed(Wakeups(interval=60.0), tick_gap=0.1)
    feed.start()
    try:
        deadline = time.monotonic() + 0.55
        pokes = 0
        while time.monotonic() < deadline:  # ~thousands of commits in about half a second
            outbox_signal.mark()
            outbox_signal.committed()
            pokes += 1
        time.sleep(0.25)  # the last wake-up is still served
    finally:
        feed.stop()
    assert pokes > 100
    assert 2 <= feed.ticks <= 9  # one per 0.1 s gap (plus the first and the last), never per commit


@pytest.mark.skipif(BACKEND != "postgres", reason="NOTIFY is PostgreSQL's; SQLite watchers poll")
def test_a_burst_of_commits_sends_a_few_notifies_not_one_per_commit(database: str) -> None:
    with _listening(database) as (wakeups, listener):
        for _ in range(500):
            wakeups.poke()
        time.sleep(0.3)
        received = list(listener.notifies(timeout=1.0))
    assert 1 <= len(received) <= 1 + int(0.3 / NOTIFY_GAP) + 2


@pytest.mark.skipif(BACKEND != "postgres", reason="NOTIFY is PostgreSQL's; SQLite watchers poll")
def test_a_wake_up_drops_the_queued_notifies_without_busy_polling(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of NOTIFYs wakes the feed once; the wait that follows waits for its interval.
    Reading the queued ones polls the socket once: counted in psycopg's generator steps."""
    steps = 0
    original = psycopg.connection.notifies  # the generator psycopg's wait drives, step by step

    def counted(pgconn: Any) -> Any:
        nonlocal steps
        inner = original(pgconn)
        sent: Any = None
        while True:
            steps += 1
            try:
                sent = yield inner.send(sent)
            except StopIteration as stop:
                return stop.value

    monkeypatch.setattr(psycopg.connection, "notifies", counted)
    wakeups = PgWakeups(url=database, interval=0.3)
    try:
        wakeups.wait()  # connects and LISTENs; nothing pending: waits the interval
        with psycopg.connect(database, autocommit=True) as other:
            for _ in range(20):
                other.execute(f"NOTIFY {NOTIFY_CHANNEL}")
        time.sleep(0.2)  # all twenty delivered to the listening session
        steps, started = 0, time.monotonic()
        wakeups.wait()
        assert time.monotonic() - started < 0.25  # woken at once
        assert steps < 20  # a busy poll of even 1 ms took hundreds
        started = time.monotonic()
        wakeups.wait()
        assert time.monotonic() - started >= 0.25  # nothing left queued: the whole interval
    finally:
        wakeups.close()


@pytest.mark.skipif(BACKEND != "postgres", reason="NOTIFY is PostgreSQL's; SQLite watchers poll")
def test_closing_the_wakeups_under_a_wait_logs_no_lost_connection(
    database: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Every shutdown closed the LISTEN connection under the feed's wait, and the wait logged it
    # as lost, with a traceback (fault injection, 2026-12-01).
    wakeups = PgWakeups(url=database, interval=30.0)
    thread = threading.Thread(target=wakeups.wait)
    thread.start()
    deadline = time.monotonic() + 10
    while wakeups._conn is None and time.monotonic() < deadline:  # connected and listening
        time.sleep(0.01)
    time.sleep(0.1)  # inside its wait for a notification
    with caplog.at_level(logging.WARNING, logger="issue_service.events"):
        wakeups.close()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.skipif(BACKEND != "postgres", reason="NOTIFY is PostgreSQL's; SQLite watchers poll")
def test_a_close_during_the_listen_connect_leaves_no_connection_and_logs_nothing(
    database: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    wakeups = PgWakeups(url=database, interval=0.1)
    opened: list[psycopg.Connection[Any]] = []
    connect = psycopg.connect

    def connect_then_shutdown(*args: Any, **kwargs: Any) -> psycopg.Connection[Any]:
        conn = connect(*args, **kwargs)
        opened.append(conn)
        wakeups.close()  # the shutdown lands while the feed's thread is still connecting
        return conn

    monkeypatch.setattr(psycopg, "connect", connect_then_shutdown)
    with caplog.at_level(logging.WARNING, logger="issue_service.events"):
        wakeups.wait()  # returns at once: closed
    assert len(opened) == 1 and opened[0].closed  # not left open behind the close
    assert wakeups._conn is None
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
