"""At most one relay publishes at a time; the others are hot standbys.

Why one publisher and not SKIP LOCKED batches: two relays taking different batches at once
publish them concurrently, so a later event of an issue can reach the stream before an earlier
one. A single leased publisher keeps per-issue (indeed global) commit order; Nats-Msg-Id makes a
re-publish after a crash (published, not yet marked delivered) a no-op in the stream.

PostgreSQL: a session advisory lock on the relay's own connection; if the process dies (even
kill -9) the server drops the session and the lock, and a standby takes over at its next try.
SQLite: a lease row with an expiry the holder renews every batch.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from typing import Any

from peewee import IntegrityError

from server.core.unit_of_work import in_transaction
from server.events.listener import libpq_url
from server.storage import liveness
from server.storage.models import RelayLease, utcnow

CHECK_SECONDS = 5.0  # a lease check the database leaves unanswered this long gives the lease up
ADVISORY_KEY = 0x15_5E_11  # "issue" relay; any constant other features do not use
LEASE_NAME = "relay"


class Lease:
    problem: str | None = None  # why the last acquire could not ask (None: it asked)

    def acquire(self) -> bool:
        """True when this process is (still) the publisher; False while another one is, or
        while the database cannot be asked (then `problem` says why)."""
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError


class PgLease(Lease):
    def __init__(self, url: str) -> None:
        self.url = libpq_url(url)
        self._conn: Any = None
        self._held = False  # this session holds the advisory lock

    def acquire(self) -> bool:
        import psycopg

        try:
            held = self._hold()
        except psycopg.Error as exc:
            self.problem = f"{exc.__class__.__name__}: {exc}"
            self.release()
            return False
        self.problem = None  # asked and answered, whether held here or by another relay
        return held

    def _hold(self) -> bool:
        import psycopg

        if self._conn is None:
            self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=3)
            self._held = False
        if not self._held:
            # A standby keeps its session and asks again on it at its next turn: closing it made
            # a new session per poll (5 a second with the default interval).
            with liveness.bounded(self._conn, seconds=CHECK_SECONDS):
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()
            if not row[0]:
                return False
            self._held = True
        # The session, hence the lock, is still there; a silent database (the kernel acknowledges,
        # nothing answers) cuts the connection after CHECK_SECONDS instead of holding the relay.
        with liveness.bounded(self._conn, seconds=CHECK_SECONDS):
            self._conn.execute("SELECT 1")
        return True

    def release(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            conn.close()  # ending the session releases the lock


class SqliteLease(Lease):
    def __init__(self, *, ttl: float) -> None:
        self.ttl = dt.timedelta(seconds=ttl)
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def acquire(self) -> bool:
        return in_transaction(self._take)

    def _take(self) -> bool:
        now = utcnow()
        taken = (
            RelayLease.update(holder=self.holder, expires_at=now + self.ttl)
            .where(
                (RelayLease.name == LEASE_NAME) & ((RelayLease.holder == self.holder) | (RelayLease.expires_at < now))
            )
            .execute()
        )
        if taken:
            return True
        try:
            RelayLease.insert(name=LEASE_NAME, holder=self.holder, expires_at=now + self.ttl).execute()
        except IntegrityError:
            return False  # another relay holds an unexpired lease
        return True

    def release(self) -> None:
        in_transaction(lambda: RelayLease.delete().where(RelayLease.holder == self.holder).execute())


def lease_for(url: str, *, ttl: float) -> Lease:
    return PgLease(url) if url.startswith("postgres") else SqliteLease(ttl=ttl)
