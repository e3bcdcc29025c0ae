"""The relay's PostgreSQL lease tells "another relay publishes" from "the database cannot be asked"."""

from __future__ import annotations

import psycopg
import pytest

from server.relay.lease import ADVISORY_KEY, PgLease
from tests.conftest import BACKEND
from tests.forwarder import forwarded_database

pytestmark = pytest.mark.skipif(BACKEND != "postgres", reason="the advisory lock is PostgreSQL's")


def test_a_standby_that_loses_the_database_and_gets_it_back_is_a_standby_again(database: str) -> None:
    forwarder, url = forwarded_database(database)
    lease = PgLease(url)
    try:
        with psycopg.connect(database, autocommit=True) as publisher:
            publisher.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_KEY,))  # another relay publishes
            assert (lease.acquire(), lease.problem) == (False, None)
            forwarder.stop()
            assert lease.acquire() is False
            assert lease.problem is not None and "OperationalError" in lease.problem
            forwarder.start()
            assert (lease.acquire(), lease.problem) == (False, None)
        assert (lease.acquire(), lease.problem) == (True, None)  # the publisher's session ended
    finally:
        lease.release()
        forwarder.stop()


def test_a_standby_asks_again_on_the_session_it_has(database: str) -> None:
    # It closed its session after each refusal and opened one at its next poll: five new
    # sessions a second per standby (fault injection, 2026-12-02).
    lease = PgLease(database)
    try:
        with psycopg.connect(database, autocommit=True) as publisher:
            publisher.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_KEY,))
            assert lease.acquire() is False
            session = lease._conn.info.backend_pid
            for _ in range(3):
                assert lease.acquire() is False
                assert lease._conn.info.backend_pid == session
        assert lease.acquire() is True  # the same session takes the lock once it is free
        assert lease._conn.info.backend_pid == session
        assert lease.acquire() is True
    finally:
        lease.release()
