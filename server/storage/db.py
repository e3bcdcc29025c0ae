"""The database from a URL: pooled SQLite (WAL, IMMEDIATE) by default, PostgreSQL via psycopg 3."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from json.scanner import make_scanner
from typing import Any
from urllib.parse import urlparse

import psycopg
from peewee import Database
from playhouse.db_url import parse
from playhouse.pool import PooledPostgresqlDatabase, PooledSqliteDatabase
from psycopg.adapt import AdaptersMap
from psycopg.pq import TransactionStatus
from psycopg.types.json import set_json_loads
from psycopg.types.numeric import Int8Dumper

from server.storage import liveness
from server.storage.checkout import LeanCheckout
from server.storage.deferred import DeferredWrites
from server.storage.json_text import reusable_encode
from server.storage.models import db
from server.storage.sqlite_writer import SqliteWriter

DEFAULT_URL = "sqlite:///issues.db"
# A text is prepared on the server on its second run on a connection (wire.py): the hot paths run
# fixed texts, so they are planned once per connection; a text run once (a one-off search) never is.
PREPARED_STATEMENTS = {"on": True, "true": True, "off": False, "false": False}
# A pooled connection idle longer than this is probed (`SELECT 1`) before it is handed out; a
# busy one is trusted, and a failed statement marks its connection broken, so the pool drops it.
IDLE_CHECK_SECONDS = 30.0
# How long a pooled connection's check (a SELECT 1 or a ROLLBACK) may wait on the server before
# the connection is given up: libpq's own bound for connecting (connect_timeout) is as long.
CHECK_SECONDS = 2.0

BUSY_TIMEOUT_MS = 5000
SQLITE_PRAGMAS = {
    "journal_mode": "wal",  # readers never block the single writer
    "synchronous": 1,  # NORMAL: no fsync per commit in WAL
    "foreign_keys": 1,  # SQLite enforces FKs only when told, per connection
    "busy_timeout": BUSY_TIMEOUT_MS,  # on a pooled SQLite `timeout` is the pool wait, not this
    "cache_size": -32000,
}


def database_url(url: str | None = None) -> str:
    return url or os.environ.get("DATABASE_URL") or DEFAULT_URL


def make_database(url: str | None = None, *, workers: int = 8) -> Database:
    """Build the database for `url` and bind the models to it."""
    url = database_url(url)
    # Idempotent for the same URL and size: rebinding the models swaps the database under every
    # thread, and a thread inside a transaction then (the event feed runs all the time) would
    # leave it open on the old pool, holding its locks.
    # A pool already bound to this URL that is at least as large serves (tests build several
    # servers in one process; production builds one).
    current: Database | None = getattr(db, "obj", None)
    made_url, made_workers = getattr(current, "_made_from", (None, 0))
    if current is not None and made_url == url and workers <= made_workers:
        return current
    scheme = urlparse(url).scheme
    params: dict[str, Any] = parse(url)
    if scheme.startswith("sqlite"):
        real = _sqlite(params, workers)
    elif scheme.startswith(("postgres", "postgresql")):
        real = _postgres(params, workers)
    else:
        raise ValueError(f"unsupported DATABASE_URL scheme {scheme!r} (use sqlite:// or postgresql://)")
    if current is not None and hasattr(current, "writer"):
        current.writer.close()  # its lock file's descriptor; the new database has its own writer
    db.initialize(real)
    real._made_from = (url, workers)  # type: ignore[attr-defined]
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
    params.pop("prepared_statements", None)  # sqlite3 caches its statements per connection anyway
    database: Database = SqlitePool(**{**defaults, **params})
    database.writer = SqliteWriter(database.database, wait=BUSY_TIMEOUT_MS / 1000)  # type: ignore[attr-defined]
    return database


def prepared_statements(params: dict[str, Any]) -> bool:
    """The `prepared_statements` URL parameter (on/off, default on), taken out of `params`.

    Off behind a transaction pooler (PgBouncer in transaction mode): a statement prepared on one
    server connection is unknown on the next one the pooler hands out.
    """
    raw = params.pop("prepared_statements", "on")
    key = str(raw).lower()
    if key not in PREPARED_STATEMENTS:
        raise ValueError(f"DATABASE_URL parameter prepared_statements must be on or off, not {raw!r}")
    return PREPARED_STATEMENTS[key]


class LazyCheckPool(LeanCheckout, DeferredWrites, PooledPostgresqlDatabase):  # type: ignore[misc]
    """peewee's pool without its `SELECT 1` round trip on every checkout; deferred writes leave
    as one statement of data-modifying CTEs, pipelined with the next statement (deferred.py).

    The transaction status is local state: a connection whose server went away reads UNKNOWN
    (or closed) after its first failed statement and is dropped here. Only a connection that sat
    idle past IDLE_CHECK_SECONDS, which a server or a firewall may have closed meanwhile, is probed,
    and so is every connection returned before the last broken one came back (after an outage
    its idle siblings are likely dead too).
    """

    pipelined = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._returned_at: dict[int, float] = {}
        self._broken_at = 0.0
        super().__init__(*args, **kwargs)

    def _is_closed(self, conn: Any) -> bool:
        returned = self._returned_at.pop(id(conn), 0.0)
        status = conn.pgconn.transaction_status
        if conn.closed or status == TransactionStatus.UNKNOWN:
            return True
        trusted = returned > self._broken_at and time.monotonic() - returned <= IDLE_CHECK_SECONDS
        if status == TransactionStatus.IDLE and trusted:
            return False
        with liveness.bounded(conn, seconds=CHECK_SECONDS):  # a silent server: dropped, not waited on
            return bool(super()._is_closed(conn))  # rolls back a dirty one or probes an idle one

    def _can_reuse(self, conn: Any) -> bool:
        now = time.monotonic()
        if conn.pgconn.transaction_status == TransactionStatus.IDLE:  # nothing to send: peewee's answer
            reusable = not conn.closed
        else:
            with liveness.bounded(conn, seconds=CHECK_SECONDS):  # a ROLLBACK (or UNKNOWN: dropped)
                reusable = bool(super()._can_reuse(conn))
        if not reusable:
            self._broken_at = now
            return False
        self._returned_at[id(conn)] = now
        return True


class SqlitePool(LeanCheckout, DeferredWrites, PooledSqliteDatabase):  # type: ignore[misc]
    """peewee's SQLite pool with deferred writes (run one by one: SQLite has no writing CTEs)."""


# A server that stops answering must not hold a call forever (libpq parameters): a connection
# attempt gives up after 2 s (libpq's minimum), an idle connection is probed by TCP keepalives
# after 10 s, and data the server's kernel does not acknowledge for 5 s drops the connection.
# A server whose kernel still acknowledges (a stuck process, a proxy that holds the bytes) is
# caught by the health prober instead (server/storage/liveness.py).
CONNECTION_LIVENESS = {
    "connect_timeout": 2,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 5000,
}


# Startup settings of every pooled connection. jit=off: PostgreSQL JIT-compiles a statement whose
# estimated cost passes jit_above_cost (100,000), at every execution (compiled code is not kept,
# prepared or not). Our statements are short, but their estimates grow with the tables (the
# history back-pointer lookup of an update's write crossed the line once group_history held
# ~50,000 rows): on 2026-11-30 each such UpdateGroup then spent ~190 ms compiling 38 functions
# for a statement that runs in 2 ms, and updates fell from ~395 to ~40 per second.
LOCK_TIMEOUT_MS = 5000  # how long a statement waits for a row lock before 55P03 (ABORTED)
SESSION_OPTIONS = f"-c lock_timeout={LOCK_TIMEOUT_MS} -c statement_timeout=30000 -c jit=off"


# psycopg turns a query's %s / %(name)s placeholders into $n on every execute, and caches the
# result per text only for texts up to 4,096 bytes (psycopg._queries.MAX_CACHED_STATEMENT_LENGTH:
# long texts are usually ORM-generated and never repeat). Ours are fixed texts built once per
# backend; GetGroup's single statement was 4.3 KB, so it was re-parsed on every call: 66 us, about
# a tenth of the call's Python (2026-11-30; 3.6 KB since its reply reads fewer columns). The cache
# is psycopg's bounded LRU (128 texts).
# Private to psycopg, hence the guard; tests/storage/test_pool.py fails if the cache is missed.
PLACEHOLDER_CACHE_BYTES = 16_384


def _cache_long_statements() -> None:
    import psycopg._queries as queries

    if getattr(queries, "MAX_CACHED_STATEMENT_LENGTH", PLACEHOLDER_CACHE_BYTES) < PLACEHOLDER_CACHE_BYTES:
        queries.MAX_CACHED_STATEMENT_LENGTH = PLACEHOLDER_CACHE_BYTES


def pool_adapters() -> AdaptersMap:
    """psycopg's adapters, with every Python int sent as bigint and JSON read by `json_loads`.
    By default psycopg picks smallint, integer or bigint by the value, and keys a prepared statement by its parameters'
    types: one text became two or three prepared statements per connection, each planned afresh
    (GetGroup's group ids below 32,768 went as smallint, the others as integer). Every column and
    cast our statements compare an int with is an integer type, which bigint compares with; ints
    past 64 bits never reach SQL (the edges bound every number: transport/limits.py,
    core/search/bounds.py)."""
    adapters = AdaptersMap(psycopg.adapters)
    adapters.register_dumper(int, Int8Dumper)
    set_json_loads(json_loads, adapters)
    return adapters


_scan_json: Any = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # the stubs' type is wrong


def json_loads(data: str | bytes) -> Any:
    """json.loads for the json and jsonb cells PostgreSQL sends (UTF-8 text), by the decoder's
    C scanner at once. json.loads on bytes first guesses their encoding and goes through two
    Python-level steps: ~18k instructions for a small object against ~4k, and a reply reads a
    few such cells. Text with anything around or after the value goes to json.loads, which
    decides (or raises) exactly as before."""
    text = data.decode() if isinstance(data, bytes) else data
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:
        return json.loads(text)  # not JSON where it starts: json.loads raises its usual error
    return value if end == len(text) else json.loads(text)


# json.dumps with its default arguments: ~0.9 of the ~1.3 us a small row table took was making
# the encoder (server/storage/json_text.py).
json_dumps: Callable[[Any], str] = reusable_encode(json.JSONEncoder()) or json.dumps
"""json.dumps(value), the same text, for the JSON parameters of the hot statements (an update's
rows travel as one JSON table per table written: server/core/bulk_sql.py)."""


def _postgres(params: dict[str, Any], workers: int) -> Database:
    _cache_long_statements()
    prepare = prepared_statements(params)
    defaults = dict(
        prefer_psycopg3=True,
        context=pool_adapters(),
        # Statements are prepared by wire.py, never by psycopg: psycopg answers a ROLLBACK or a
        # DROP/ALTER by deallocating every prepared statement of the session when it holds any of
        # its own, which would pull ours from under the next call.
        prepare_threshold=None,
        max_connections=workers + 4,
        timeout=10,  # wait for a free pooled connection instead of failing at once
        stale_timeout=300,
        **CONNECTION_LIVENESS,
        options=SESSION_OPTIONS,
        autoconnect=False,
    )
    database: Database = LazyCheckPool(**{**defaults, **params})
    database.prepare_statements = prepare  # type: ignore[attr-defined]
    return database


def is_postgres(database: Database | None = None) -> bool:
    target = database or db.obj
    return isinstance(target, PooledPostgresqlDatabase)


_NO_LOCK = nullcontext()


def write_lock() -> AbstractContextManager[Any]:
    """Held around a write transaction: SQLite's writer queue (server/storage/sqlite_writer.py),
    nothing on PostgreSQL."""
    return getattr(db.obj, "writer", _NO_LOCK)
