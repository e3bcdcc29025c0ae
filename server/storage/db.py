"""The database from a URL: pooled SQLite (WAL, IMMEDIATE) by default, PostgreSQL via psycopg 3."""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager, nullcontext
from typing import Any
from urllib.parse import urlparse

from peewee import Database
from playhouse.db_url import parse
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase

from server.storage.models import db

DEFAULT_URL = "sqlite:///issues.db"

SQLITE_PRAGMAS = {
    "journal_mode": "wal",  # readers never block the single writer
    "synchronous": 1,  # NORMAL: no fsync per commit in WAL
    "foreign_keys": 1,  # SQLite enforces FKs only when told, per connection
    "busy_timeout": 5000,  # ms; on a pooled SQLite `timeout` is the pool wait, not this
    "cache_size": -32000,
}


def database_url(url: str | None = None) -> str:
    return url or os.environ.get("DATABASE_URL") or DEFAULT_URL


def make_database(url: str | None = None, *, workers: int = 8) -> Database:
    """Build the database for `url` and bind the models to it."""
    url = database_url(url)
    scheme = urlparse(url).scheme
    params: dict[str, Any] = parse(url)
    if scheme.startswith("sqlite"):
        real = _sqlite(params, workers)
    elif scheme.startswith(("postgres", "postgresql")):
        real = _postgres(params, workers)
    else:
        raise ValueError(f"unsupported DATABASE_URL scheme {scheme!r} (use sqlite:// or postgresql://)")
    db.initialize(real)
    return real


def _sqlite(params: dict[str, Any], workers: int) -> Database:
    # IMMEDIATE takes the write lock at BEGIN: a DEFERRED transaction that reads then writes
    # fails with "database is locked" without ever waiting (peewee-notes P1).
    defaults = dict(
        pragmas=SQLITE_PRAGMAS,
        check_same_thread=False,
        lock_type="IMMEDIATE",
        max_connections=workers + 4,
        timeout=10,
        autoconnect=False,
    )
    database: Database = PooledSqliteDatabase(**{**defaults, **params})
    return database


def _postgres(params: dict[str, Any], workers: int) -> Database:
    defaults = dict(
        prefer_psycopg3=True,
        max_connections=workers + 4,
        timeout=10,  # wait for a free pooled connection instead of failing at once
        stale_timeout=300,
        connect_timeout=3,
        options="-c lock_timeout=5000 -c statement_timeout=30000",
        autoconnect=False,
    )
    database: Database = PooledPostgresqlDatabase(**{**defaults, **params})
    return database


def is_postgres(database: Database | None = None) -> bool:
    target = database or db.obj
    return isinstance(target, PooledPostgresqlDatabase)


# SQLite has one writer; a waiting writer sleeps in SQLite's busy handler (steps up to 100 ms)
# and can lose the race again and again, which made long tails under load. Queueing writers of
# this process on a lock hands the database over as soon as it is free. Reentrant, so a nested
# write transaction (a savepoint) in the same thread does not deadlock. Other processes (the
# workers of `serve --processes N`) still meet the busy handler: BEGIN IMMEDIATE waits up to
# busy_timeout for SQLite's per-database lock, so they stay serialised, only less fairly.
_SQLITE_WRITER = threading.RLock()


def write_lock() -> AbstractContextManager[Any]:
    """Held around a write transaction: the process-wide writer lock on SQLite, nothing on PG."""
    return nullcontext() if is_postgres() else _SQLITE_WRITER
