"""The health probe: `SELECT 1` on a connection of its own, never a pooled one (a pool exhausted by
stuck calls must not hide a live database, nor a silent database hang the prober), bounded by a
timeout even when the server accepts the connection and never answers."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from typing import Any

from server.storage import liveness
from server.storage.db import is_postgres
from server.storage.models import db

log = logging.getLogger("issue_service.health")


class Probe:
    """check() is True when the database answered SELECT 1 within `timeout` seconds."""

    def __init__(self, *, timeout: float = 1.0) -> None:
        self.timeout = timeout
        self.last_error = ""
        self._conn: Any = None

    def check(self) -> bool:
        try:
            if self._conn is None:
                self._conn = self._connect()
            self._select_one(self._conn)
        except Exception as exc:  # any failure means "unreachable"; the watch logs the reason
            self.last_error = str(exc).strip() or type(exc).__name__
            self.close()
            return False
        return True

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

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
