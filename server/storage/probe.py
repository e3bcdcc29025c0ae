"""The health probe: `SELECT 1` on a connection of its own, never a pooled one (a pool exhausted by
stuck calls must not hide a live database, nor a silent database hang the prober), bounded by a
timeout even when the server accepts the connection and never answers."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from typing import Any

from server.storage import liveness
from server.storage.db import is_postgres
from server.storage.models import db

log = logging.getLogger("issue_service.health")


def _close(conn: Any) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()


class Probe:
    """check() is True when the database answered SELECT 1 within `timeout` seconds.

    It keeps a spare connection, opened once the database answers. A probe that fails loses its
    connection and the spare takes its place, so the probe that confirms an outage (the watch
    runs it at once) is a SELECT 1 bounded by `timeout`, not a new connection that first waits
    out its connect timeout (libpq: at least 2 s). Fault injection saw a silent database
    reported NOT_SERVING after 3.3-4.4 s that way; now interval + 2 x timeout + 0.1 s at most.
    A spare that fails at once (it was dropped while idle: a restart, a pooler's idle timeout)
    proves nothing about the database: that check goes on with a new connection.
    """

    def __init__(self, *, timeout: float = 1.0) -> None:
        self.timeout = timeout
        self.last_error = ""
        self._conn: Any = None
        self._spare: Any = None

    def check(self) -> bool:
        try:
            self._check()
        except Exception as exc:  # any failure means "unreachable"; the watch logs the reason
            self.last_error = str(exc).strip() or type(exc).__name__
            return False
        if self._spare is None:
            self._spare = self._connect_quietly()
        return True

    def _check(self) -> None:
        fresh = self._conn is None
        if fresh:
            self._conn = self._connect()
        started = time.monotonic()
        try:
            self._select_one(self._conn)
        except Exception:
            _close(self._conn)
            self._conn, self._spare = self._spare, None
            if fresh or time.monotonic() - started >= self.timeout:
                raise  # a new connection failed, or the server kept silent: unreachable
            self._check()  # a stale connection failed at once: ask on a new one (or the spare)

    def close(self) -> None:
        conns, self._conn, self._spare = (self._conn, self._spare), None, None
        for conn in conns:
            _close(conn)

    def _connect_quietly(self) -> Any:
        try:
            return self._connect()
        except Exception:  # no spare: the next confirmation connects afresh, as it did before
            return None

    def _connect(self) -> Any:
        database = db.obj
        if not is_postgres(database):
            return sqlite3.connect(database.database, timeout=self.timeout, check_same_thread=False)
        import psycopg

        params = {k: v for k, v in database.connect_params.items() if k != "prepare_threshold"}
        # libpq's connect_timeout counts whole seconds, at least 2: the probe's own bound.
        params["connect_timeout"] = max(2, round(self.timeout))
        return psycopg.connect(dbname=database.database, autocommit=True, **params)

    def _select_one(self, conn: Any) -> None:
        if isinstance(conn, sqlite3.Connection):
            conn.execute("SELECT 1").fetchall()
            return
        with liveness.bounded(conn, seconds=self.timeout):
            conn.execute("SELECT 1").fetchall()
