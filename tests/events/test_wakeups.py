"""Wake-ups after commit: an update that wrote outbox rows wakes the event feeds once its COMMIT
returned; a rolled-back one never does (server/storage/outbox_signal.py)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from server.core.unit_of_work import in_transaction
from server.events.listener import PgWakeups, Wakeups
from server.storage import outbox_signal
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


@pytest.mark.skipif(BACKEND != "postgres", reason="NOTIFY is PostgreSQL's; SQLite watchers poll")
def test_a_poke_on_postgresql_notifies_every_listening_process(database: str) -> None:
    wakeups = PgWakeups(url=database, interval=60.0)
    try:
        with psycopg.connect(database, autocommit=True) as listener:
            listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            wakeups.poke()
            assert len(list(listener.notifies(timeout=30, stop_after=1))) == 1
    finally:
        wakeups.close()
