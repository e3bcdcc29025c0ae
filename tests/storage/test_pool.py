"""The pool: the `prepared_statements` URL parameter, and no liveness round trip per checkout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg._queries as queries
import pytest
from playhouse.db_url import parse
from playhouse.pool import PooledPostgresqlDatabase

from server.storage import db as storage
from tests.conftest import BACKEND


@pytest.mark.parametrize(
    ("query", "prepare"),
    [("", True), ("?prepared_statements=on", True),
     ("?prepared_statements=off", False), ("?prepared_statements=OFF&max_connections=3", False)],
)  # fmt: skip
def test_prepared_statements_parameter_is_read_and_taken_out(query: str, prepare: bool) -> None:
    params = parse(f"postgresql://u@h:5432/d{query}")
    assert storage.prepared_statements(params) is prepare
    assert "prepared_statements" not in params  # never reaches psycopg.connect


def test_the_pool_prepares_through_wire_only() -> None:
    on = storage._postgres(parse("postgresql://u@h:5432/d"), workers=2)
    off = storage._postgres(parse("postgresql://u@h:5432/d?prepared_statements=off"), workers=2)
    assert (on.prepare_statements, off.prepare_statements) == (True, False)
    # psycopg never prepares: it would deallocate all of the session's statements on a ROLLBACK
    assert on.connect_params["prepare_threshold"] is None is off.connect_params["prepare_threshold"]


def test_a_prepared_statements_value_other_than_on_or_off_is_refused() -> None:
    with pytest.raises(ValueError, match="prepared_statements must be on or off, not 'sometimes'"):
        storage.prepared_statements(parse("postgresql://u@h/d?prepared_statements=sometimes"))


def test_sqlite_accepts_and_ignores_the_parameter(tmp_path: Any) -> None:
    database = storage.make_database(f"sqlite:///{tmp_path}/x.db?prepared_statements=off")
    assert "prepared_statements" not in database.connect_params


@pytest.fixture()
def pool(migrated: str) -> Iterator[storage.LazyCheckPool]:
    if BACKEND != "postgres":
        pytest.skip("the lazy liveness check is PostgreSQL's pool (TEST_BACKEND=postgres)")
    params = parse(f"{migrated}?prepared_statements=off")
    storage.prepared_statements(params)
    pool = storage.LazyCheckPool(prefer_psycopg3=True, prepare_threshold=None, max_connections=2, **params)
    pool.prepare_statements = False
    yield pool
    pool.close_all()


def _probes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    original = PooledPostgresqlDatabase._is_closed

    def spy(self: Any, conn: Any) -> bool:
        calls.append(conn)
        return bool(original(self, conn))

    monkeypatch.setattr(PooledPostgresqlDatabase, "_is_closed", spy)
    return calls


@pytest.mark.db
def test_a_recently_returned_connection_is_handed_out_without_a_probe(
    pool: storage.LazyCheckPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    probes = _probes(monkeypatch)
    with pool.connection_context():
        first = pool.connection()
    with pool.connection_context():
        assert pool.connection() is first
        assert pool.execute_sql("SELECT 2").fetchone() == (2,)
    assert probes == []


@pytest.mark.db
def test_an_idle_connection_is_probed_and_a_dead_one_replaced(
    pool: storage.LazyCheckPool, migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    probes = _probes(monkeypatch)
    with pool.connection_context():
        first = pool.connection()
        pid = first.info.backend_pid
    pool._returned_at[id(first)] = time.monotonic() - storage.IDLE_CHECK_SECONDS - 1
    with pool.connection_context():  # idle too long: probed, alive, kept
        assert pool.connection() is first
    assert probes == [first]
    _terminate(migrated, pid)
    pool._returned_at[id(first)] = time.monotonic() - storage.IDLE_CHECK_SECONDS - 1
    with pool.connection_context():  # probed, found dead: a new connection instead
        assert pool.connection().info.backend_pid != pid


@pytest.mark.db
def test_after_a_broken_connection_comes_back_its_idle_siblings_are_probed(
    pool: storage.LazyCheckPool, migrated: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sibling, broken = pool._connect(), pool._connect()
    pool._close(sibling)  # back in the pool, recently: trusted so far
    _terminate(migrated, broken.info.backend_pid)
    with pytest.raises(psycopg.OperationalError):
        broken.execute("SELECT 1")
    pool._close(broken)  # returned broken: dropped, and the pool grows wary
    probes = _probes(monkeypatch)
    with pool.connection_context():
        assert pool.connection() is sibling
    assert probes == [sibling]


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


@pytest.mark.db
def test_pooled_connections_run_with_the_timeouts_and_without_jit(migrated: str) -> None:
    # jit=off: PostgreSQL JIT-compiles, at every execution, any statement whose cost estimate
    # passes jit_above_cost; our short statements crossed it as the tables grew (server/storage/db.py).
    if BACKEND != "postgres":
        pytest.skip("session settings are PostgreSQL's (TEST_BACKEND=postgres)")
    database = storage.make_database(migrated)
    with database.connection_context():
        settings = {
            name: database.execute_sql(f"SHOW {name}").fetchone()[0]
            for name in ("jit", "lock_timeout", "statement_timeout")
        }
    assert settings == {"jit": "off", "lock_timeout": "5s", "statement_timeout": "30s"}


def test_a_long_fixed_statement_is_parsed_once_not_per_call(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """psycopg re-parses texts over 4 KB on every execute unless its cache limit is raised
    (server/storage/db.py, PLACEHOLDER_CACHE_BYTES); GetGroup's statement was 4.3 KB once."""
    if BACKEND != "postgres":
        pytest.skip("psycopg's placeholder conversion (TEST_BACKEND=postgres)")
    terms = " + ".join(f"%(n)s * {i}" for i in range(400))
    text = f"SELECT {terms} AS total"
    assert len(text.encode()) > 4096  # the case the raised limit is for
    parsed: list[bytes] = []
    original = queries._query2pg_nocache

    def spy(query: bytes, encoding: str) -> Any:
        parsed.append(bytes(query))
        return original(query, encoding)

    monkeypatch.setattr(queries, "_query2pg_nocache", spy)
    db = storage.make_database(database)
    with db.connection_context():
        totals = [db.execute_sql(text, {"n": n}).fetchone()[0] for n in (1, 2, 3)]
    assert totals == [sum(range(400)) * n for n in (1, 2, 3)]
    assert parsed.count(text.encode()) <= 1


def test_small_and_large_ids_share_one_prepared_statement(database: str) -> None:
    """psycopg sends an int as smallint, integer or bigint by its value and prepares a text once
    per parameter types; the pool sends every int as bigint, so one text is one statement."""
    if BACKEND != "postgres":
        pytest.skip("prepared statements are PostgreSQL's (TEST_BACKEND=postgres)")
    db = storage.make_database(database)
    text = "SELECT %s::bigint + 0 AS prepared_once"
    with db.connection_context():
        values = [db.execute_sql(text, [n]).fetchone()[0] for n in (5, 40_000, 3_000_000_000) * 6]
        count = db.execute_sql(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ["%prepared_once"]
        ).fetchone()[0]
    assert values == [5, 40_000, 3_000_000_000] * 6
    assert count == 1


def test_a_unix_socket_url_reaches_psycopg_as_its_host() -> None:
    # The README's same-host form: no host in the authority, the socket directory as `host`.
    pool = storage._postgres(parse("postgresql://user@/issues?host=/var/run/postgresql"), workers=2)
    assert pool.database == "issues"
    assert pool.connect_params["host"] == "/var/run/postgresql"
    assert pool.connect_params["user"] == "user"
