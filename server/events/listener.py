"""Wake-ups for the feed: PostgreSQL LISTEN on a dedicated session connection, or a timer.

The listening connection is opened from its own URL (--events-database-url): LISTEN needs a
session, which a transaction pooler (PgBouncer in transaction mode) does not keep, so point it at
PostgreSQL directly when the request pool goes through one. Polling stays on as a safety net
(a lost connection, a notification missed while reconnecting).
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlparse

from server.storage import liveness
from server.storage.migrate_events import NOTIFY_CHANNEL

log = logging.getLogger("issue_service.events")
NOTIFY_GAP = 0.02  # seconds; the feed's own rest between ticks is the same (server/events/feed.py)


class Wakeups:
    """SQLite: wait() returns when this process committed outbox rows (poke), every interval
    (other processes' commits), or at once after close()."""

    def __init__(self, *, interval: float) -> None:
        self.interval = interval
        self._closed = threading.Event()
        self._poked = threading.Event()

    def wait(self) -> None:
        self._poked.wait(self.interval)
        self._poked.clear()

    def poke(self) -> None:
        """Outbox rows of this process committed (server/storage/outbox_signal.py)."""
        self._poked.set()

    def close(self) -> None:
        self._closed.set()
        self._poked.set()


class PgWakeups(Wakeups):
    """wait() returns on a NOTIFY sent after some process committed outbox rows, or after the
    poll interval. poke() has the notifier send that NOTIFY, outside the update's transaction."""

    def __init__(self, *, url: str, interval: float) -> None:
        super().__init__(interval=interval)
        self.url = url
        self._conn: Any = None
        self._conn_lock = threading.Lock()
        self.notifier = Notifier(url=url)

    def poke(self) -> None:
        self.notifier.poke()

    def wait(self) -> None:
        conn = self._connection()
        if conn is None:
            super().wait()
            return
        try:
            for _ in conn.notifies(timeout=self.interval, stop_after=1):
                pass
            # One read serves every commit so far: drop the notifications already queued, so a
            # burst of commits costs the feed one wake-up instead of one per commit. timeout=0
            # reads what has arrived and returns; a positive timeout, however short, made
            # psycopg poll in a busy loop until it ran out (~650 generator steps per wake-up).
            for _ in conn.notifies(timeout=0):
                pass
        except Exception:
            if self._closed.is_set():  # close() dropped it under the wait: a shutdown, not a loss
                return
            log.warning("LISTEN connection lost; polling until it is back", exc_info=True)
            self._drop()

    def close(self) -> None:
        super().close()
        self.notifier.close()
        self._drop()

    def _connection(self) -> Any:
        # While the health prober finds the database unreachable, poll instead of reconnecting:
        # one prober makes the connection attempts of an outage (issue 12), not every waiter.
        if self._conn is None and not self._closed.is_set() and liveness.is_reachable():
            import psycopg

            conn = None
            try:
                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=3)
                conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            except Exception:
                if not self._closed.is_set():  # a close() meanwhile is a shutdown, not a failure
                    log.warning("cannot LISTEN on %s; polling", _redacted(self.url), exc_info=True)
                _close_quietly(conn, what="LISTEN")
                return None
            with self._conn_lock:  # a close() that ran during the connect must not miss it
                if self._closed.is_set():
                    _close_quietly(conn, what="LISTEN")
                    return None
                self._conn = conn
        return self._conn

    def _drop(self) -> None:
        with self._conn_lock:
            conn, self._conn = self._conn, None
        _close_quietly(conn, what="LISTEN")


class Notifier:
    """Sends one NOTIFY per burst of local commits, from its own thread and connection.

    A commit only sets an event; the thread clears it before it notifies, so commits during a
    NOTIFY cost one more and never go unannounced."""

    def __init__(self, *, url: str) -> None:
        self.url = url
        self._wanted = threading.Event()
        self._closed = threading.Event()
        self._conn: Any = None
        self._thread = threading.Thread(target=self._run, name="event-notifier", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wanted.set()

    def close(self) -> None:
        self._closed.set()
        self._wanted.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._closed.is_set():
                self._drop()
                return
            self._wanted.clear()
            self._notify()
            # Every NOTIFY wakes the feed of every process: at most one per gap, whatever the
            # commit rate (commits meanwhile set _wanted and get the next one).
            self._closed.wait(NOTIFY_GAP)

    def _notify(self) -> None:
        if not liveness.is_reachable():
            return  # the prober makes an outage's connection attempts; feeds poll meanwhile
        import psycopg

        try:
            if self._conn is None:
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=3)
            self._conn.execute("SELECT pg_notify(%s, '')", (NOTIFY_CHANNEL,))
        except Exception:
            log.warning("cannot NOTIFY on %s; other processes poll", _redacted(self.url), exc_info=True)
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        _close_quietly(conn, what="NOTIFY")


def _close_quietly(conn: Any, *, what: str) -> None:
    """Close a dropped connection; failing to is harmless (it was being dropped anyway)."""
    if conn is None:
        return
    try:
        conn.close()
    except Exception:
        log.debug("closing the %s connection failed", what, exc_info=True)


def wakeups_for(url: str, *, interval: float) -> Wakeups:
    if urlparse(url).scheme.startswith("postgres"):
        return PgWakeups(url=libpq_url(url), interval=interval)
    return Wakeups(interval=interval)


def libpq_url(url: str) -> str:
    """A libpq URL: drop the query parameters meant for peewee's pool (max_connections, ...)."""
    parsed = urlparse(url)
    return parsed._replace(scheme="postgresql", query="").geturl()


def _redacted(url: str) -> str:
    parsed = urlparse(url)
    return parsed._replace(netloc=parsed.hostname or "").geturl()
