"""A pooled connection's check waits on the network outside the pool's lock, and not forever.

Fault injection (2026-12-01): connections idle past IDLE_CHECK_SECONDS are probed with `SELECT 1`
at checkout. With the database silent (the kernel acknowledges, no byte comes back) the probe
waited until the database came back, inside peewee's pool lock: every other checkout and
check-in, and the health prober dropping idle connections, waited with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from peewee import OperationalError
from playhouse.db_url import parse

from server.storage import db as storage
from tests.conftest import BACKEND, PG_ADMIN_URL
from tests.forwarder import Forwarder, forwarded_database

CHECK = 0.5  # seconds a check may wait (storage.CHECK_SECONDS, shortened for the test)


@pytest.fixture()
def silent_pool(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Forwarder]]:
    if BACKEND != "postgres":
        pytest.skip("a silent database is simulated in front of PostgreSQL (TEST_BACKEND=postgres)")
    forwarder, url = forwarded_database(PG_ADMIN_URL)
    pool: Any = storage._postgres(parse(url), workers=2)  # a pool of its own, not the process's
    _two_idle_connections(pool)
    monkeypatch.setattr(storage, "IDLE_CHECK_SECONDS", 0.0)  # every idle connection is probed
    monkeypatch.setattr(storage, "CHECK_SECONDS", CHECK)
    forwarder.blackhole()
    yield pool, forwarder
    forwarder.stop()
    pool.close_all()


def _two_idle_connections(pool: Any) -> None:
    both_out = threading.Barrier(2)

    def use() -> None:
        pool.connect()
        both_out.wait(timeout=10)  # two at once: two connections
        pool.close()

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(pool._connections) == 2


@pytest.mark.db
def test_a_probe_of_a_silent_database_neither_holds_the_pool_nor_waits_forever(silent_pool: Any) -> None:
    pool, _forwarder = silent_pool
    outcome: dict[str, Any] = {}

    def check_out() -> None:
        started = time.monotonic()
        try:
            pool.connect()
            outcome["result"] = "connected"
        except OperationalError as exc:
            outcome["result"] = exc
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=check_out, daemon=True)
    thread.start()
    time.sleep(CHECK / 2)  # the thread is in its first probe now
    # What the health prober does when it finds the database silent; in a thread of its own,
    # so that a regression fails here instead of hanging the suite.
    dropper = threading.Thread(target=pool.close_idle, daemon=True)
    dropper.start()
    dropper.join(timeout=CHECK / 2)
    assert not dropper.is_alive()  # not waiting behind the probe
    thread.join(timeout=30)
    assert not thread.is_alive()
    # Both idle connections failed their checks (cut after CHECK each, or closed by the
    # prober), then a new connection found no answer either (libpq's connect_timeout, 2 s).
    assert isinstance(outcome["result"], OperationalError)
    assert outcome["seconds"] < 2 * CHECK + 2 + 3  # generous for a shared machine
    assert pool._in_use == {}  # every slot given back
