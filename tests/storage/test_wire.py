"""The libpq round trip of the hot paths (server/storage/wire.py): same values as psycopg's
cursor, placeholders, prepared statements, failures."""

from __future__ import annotations

import datetime as dt
import gc
import json
import weakref
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from server.storage import wire
from server.storage.db import json_loads, pool_adapters
from tests.conftest import BACKEND

pytestmark = [pytest.mark.db, pytest.mark.skipif(BACKEND != "postgres", reason="libpq: PostgreSQL only")]

VALUES: list[Any] = [
    0,
    -(2**62),
    2**62,
    "plain",
    "ünïcödé ✓ 'quoted' \\ back",
    "",
    None,
    True,
    False,
    1.5,
    dt.datetime(2026, 12, 1, 7, 30, 15, 123456),
    dt.datetime(2026, 12, 1, 7, 30, tzinfo=dt.UTC),
]


@pytest.fixture
def conn(migrated: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(migrated, autocommit=True, context=pool_adapters()) as connection:  # the pool's adapters
        yield connection


def _prepared(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute("SELECT statement FROM pg_prepared_statements WHERE name LIKE '_iss_%%'").fetchall()
    return sorted(row[0] for row in rows)


def _outcome(read: Any) -> Any:
    try:
        return read()
    except psycopg.Error as exc:  # a str or NULL has no type of its own there, for psycopg too
        return type(exc).__name__


@pytest.mark.parametrize("sql", ["SELECT %s", "SELECT %s, pg_typeof(%s)::text", "SELECT %s::text"])
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_parameter_comes_back_as_psycopgs_cursor_returns_it(
    conn: psycopg.Connection[Any], sql: str, value: Any
) -> None:
    params = [value] * sql.count("%s")
    assert wire.runnable(sql, params)
    ours = _outcome(lambda: wire.run(conn, [(sql, params)], prepare=False)[0].fetchall())
    assert ours == _outcome(lambda: conn.execute(sql, params).fetchall())


def test_named_placeholders_repeat_and_a_doubled_percent_is_a_percent(conn: psycopg.Connection[Any]) -> None:
    sql = "SELECT %(a)s::bigint + %(b)s::bigint, %(a)s::bigint, '100%%'"
    (rows,) = wire.run(conn, [(sql, {"a": 2, "b": 3})], prepare=False)
    assert rows.fetchone() == (5, 2, "100%")
    assert rows.fetchone() is None


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT %b", [b"x"]),  # psycopg's binary placeholder
        ("SELECT %s, %(a)s", {"a": 1}),  # mixed styles
        ("SELECT %s", [b"bytes"]),
        ("SELECT %s", [dt.date(2026, 1, 1)]),
        ("SELECT %s", ["nul \x00 inside"]),  # libpq would cut it at the NUL; psycopg refuses it
        ("SELECT %s", [1, 2]),  # a parameter too many
        ("SELECT %(a)s", [1]),
        ("SELECT 1; SELECT 2", None),  # no parameters: the simple protocol, psycopg's
    ],
)
def test_what_it_does_not_send_is_left_to_psycopg(sql: str, params: Any) -> None:
    assert not wire.runnable(sql, params)


def test_a_round_trip_with_a_statement_it_does_not_send_sends_nothing(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TEMP TABLE n (v int)")
    statements = [("INSERT INTO n VALUES (%s::int)", [1]), ("SELECT %s", [b"bytes"])]
    assert wire.run(conn, statements, prepare=True) is None  # psycopg's cursor takes them all
    assert conn.execute("SELECT count(*) FROM n").fetchone() == (0,)


def test_transaction_control_is_runnable_and_statements_share_the_round_trip(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TEMP TABLE t (v int)")
    insert = "INSERT INTO t VALUES (%s::int), (%s::int)"
    begin, write, read, commit = wire.run(
        conn, [("BEGIN", None), (insert, [1, 2]), ("SELECT sum(v) FROM t WHERE v > %s", [0]), ("COMMIT", None)],
        prepare=True,
    )  # fmt: skip
    assert (begin.description, write.rowcount, read.fetchall(), commit.description) == (None, 2, [(3,)], None)
    assert read.description == [("sum",)]
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_a_text_is_prepared_on_its_second_run_and_then_reused(conn: psycopg.Connection[Any]) -> None:
    sql = "SELECT %s::bigint * 2"
    assert [wire.run(conn, [(sql, [i])], prepare=True)[0].fetchone() for i in (1,)] == [(2,)]
    assert _prepared(conn) == []  # one run: maybe a one-off
    for i in (2, 3, 4):
        assert wire.run(conn, [(sql, [i])], prepare=True)[0].fetchone() == (2 * i,)
    assert _prepared(conn) == ["SELECT $1::bigint * 2"]


def test_nothing_is_prepared_when_the_url_turns_prepared_statements_off(conn: psycopg.Connection[Any]) -> None:
    for i in range(3):
        assert wire.run(conn, [("SELECT %s::bigint", [i])], prepare=False)[0].fetchone() == (i,)
    assert _prepared(conn) == []


def test_past_the_limit_the_least_recently_used_statement_is_deallocated(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire, "PREPARED_MAX", 2)
    for n in (1, 2, 1, 3, 3):  # 1 and 2 prepared, 1 used again, 3 evicts 2
        for _ in range(2):
            assert wire.run(conn, [(f"SELECT %s::bigint + {n}", [1])], prepare=True)[0].fetchone() == (1 + n,)
    assert _prepared(conn) == ["SELECT $1::bigint + 1", "SELECT $1::bigint + 3"]


def test_a_prepared_statements_later_rows_load_as_a_cursor_loads_them(conn: psycopg.Connection[Any]) -> None:
    """The loaders of a prepared statement are looked up on its first result only (its columns'
    types cannot change): later rows, NULL at first and values after, still come back as psycopg's
    cursor returns them."""
    sql = "SELECT CASE WHEN %s::bigint > 0 THEN %s::bigint END, CASE WHEN %s::bigint > 0 THEN now()::timestamp END"
    runs = [wire.run(conn, [(sql, [n, n, n])], prepare=True)[0].fetchone() for n in (0, 0, 0, 5, 6)]
    assert len(_prepared(conn)) == 1
    assert runs[:3] == [(None, None)] * 3
    assert [(row[0], type(row[1])) for row in runs[3:]] == [(5, dt.datetime), (6, dt.datetime)]
    assert len(wire._shapes(conn)) == 1


def test_an_evicted_or_forgotten_statement_takes_its_loaders_along(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire, "PREPARED_MAX", 1)
    for n in (1, 2):  # 2 evicts 1
        for _ in range(3):
            assert wire.run(conn, [(f"SELECT %s::bigint + {n}", [1])], prepare=True)[0].fetchone() == (1 + n,)
    assert list(wire._shapes(conn)) == list(wire._state_of(conn).names.values())
    wire.forget(conn)
    assert wire._shapes(conn) == {}
    # names start again from the first one after `forget`: the new statement gets new loaders
    for _ in range(3):
        assert wire.run(conn, [("SELECT 'text'::text || %s::bigint", [1])], prepare=True)[0].fetchone() == ("text1",)


def test_a_failing_statement_raises_its_error_and_the_later_ones_do_not_run(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TEMP TABLE u (v int PRIMARY KEY)")
    statements = [
        ("BEGIN", None),
        ("INSERT INTO u VALUES (%s::int)", [1]),
        ("INSERT INTO u VALUES (%s::int)", [1]),
        ("INSERT INTO u VALUES (%s::int)", [2]),
    ]
    with pytest.raises(psycopg.errors.UniqueViolation):
        wire.run(conn, statements, prepare=True)
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM u").fetchone() == (0,)


def test_a_prepare_skipped_by_an_earlier_failure_is_prepared_again_next_time(conn: psycopg.Connection[Any]) -> None:
    good = ("SELECT %s::bigint + 1", [1])
    assert wire.run(conn, [good], prepare=True)[0].fetchone() == (2,)  # seen once: prepared on the next run
    with pytest.raises(psycopg.errors.DivisionByZero):
        wire.run(conn, [("SELECT 1 / %s::int", [0]), good], prepare=True)  # its PREPARE was skipped
    assert wire.run(conn, [good], prepare=True)[0].fetchone() == (2,)  # not "does not exist"
    assert _prepared(conn) == ["SELECT $1::bigint + 1"]


def test_a_lost_connection_raises_operational_error_and_is_closed(migrated: str, conn: psycopg.Connection[Any]) -> None:
    with psycopg.connect(migrated, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [conn.info.backend_pid])
    with pytest.raises(psycopg.OperationalError):
        wire.run(conn, [("SELECT %s::int", [1])], prepare=True)
    assert conn.closed


def test_rows_read_one_some_and_the_rest(conn: psycopg.Connection[Any]) -> None:
    (rows,) = wire.run(conn, [("SELECT generate_series(1, %s::int)", [5])], prepare=False)
    assert rows.rowcount == 5
    assert rows.fetchone() == (1,)
    assert rows.fetchmany(2) == [(2,), (3,)]
    assert list(rows) == [(4,), (5,)]
    assert rows.fetchall() == []


def test_a_prepared_statement_outlives_a_rolled_back_transaction(conn: psycopg.Connection[Any]) -> None:
    sql = ("SELECT %s::bigint - 1", [5])
    with pytest.raises(psycopg.errors.DivisionByZero):
        wire.run(conn, [("BEGIN", None), sql, sql, ("SELECT 1 / %s::int", [0])], prepare=True)
    conn.execute("ROLLBACK")
    assert wire.run(conn, [sql], prepare=True)[0].fetchone() == (4,)
    assert _prepared(conn) == ["SELECT $1::bigint - 1"]


def test_ddl_run_by_psycopg_deallocates_ours_and_they_are_prepared_afresh(conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TEMP TABLE v (a int)")
    read = ("SELECT * FROM v WHERE a > %s::int", [0])
    for _ in range(2):
        wire.run(conn, [read], prepare=True)
    assert len(_prepared(conn)) == 1
    status = conn.execute("ALTER TABLE v ADD COLUMN b int").statusmessage
    wire.after(conn, status)  # what the pool does after each statement psycopg runs
    assert _prepared(conn) == []
    conn.execute("INSERT INTO v VALUES (1, 2)")
    assert wire.run(conn, [read], prepare=True)[0].fetchall() == [(1, 2)]  # not "must not change result type"


def test_statements_deallocated_behind_its_back_fail_one_call_then_are_prepared_again(
    conn: psycopg.Connection[Any],
) -> None:
    read = ("SELECT %s::bigint", [7])
    for _ in range(2):
        wire.run(conn, [read], prepare=True)
    conn.execute("DEALLOCATE ALL")  # not through the pool: `after` never saw it
    with pytest.raises(psycopg.errors.InvalidSqlStatementName):
        wire.run(conn, [read], prepare=True)
    assert [wire.run(conn, [read], prepare=True)[0].fetchone() for _ in range(2)] == [(7,), (7,)]


def test_the_pools_statements_survive_a_rolled_back_call(database: str) -> None:
    """psycopg deallocates every statement it prepared on a ROLLBACK (a failed call): the next
    calls on that connection planned the hot statements again, five custom plans each. The pool
    prepares through wire.py, whose statements a ROLLBACK leaves alone."""
    from server.storage.models import db

    text = "SELECT %s::bigint + 0 AS survives_rollback"
    count = "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s"
    assert [db.execute_sql(text, [n]).fetchone()[0] for n in (1, 2)] == [1, 2]
    assert db.execute_sql(count, ["%survives_rollback"]).fetchone()[0] == 1

    class Failed(Exception):
        pass

    with pytest.raises(Failed), db.atomic():
        db.execute_sql(text, [3])
        raise Failed
    # a savepoint rolled back: psycopg's command status "ROLLBACK" cleared them too
    with db.atomic(), pytest.raises(Failed), db.atomic():
        db.execute_sql(text, [4])
        raise Failed
    assert db.execute_sql(count, ["%survives_rollback"]).fetchone()[0] == 1


@pytest.mark.parametrize("prepare", [True, False])
def test_a_closed_connection_is_freed_with_what_the_module_kept_for_it(migrated: str, prepare: bool) -> None:
    """What the module keeps per connection (prepared names, the row loader) must not keep the
    connection alive: a pool drops broken ones after every outage."""
    connection = psycopg.connect(migrated, autocommit=True, context=pool_adapters())
    for _ in range(2):  # the second run prepares
        wire.run(connection, [("SELECT %s::bigint", (1,))], prepare=prepare)
    gone = weakref.ref(connection)
    connection.close()
    del connection
    gc.collect()
    assert gone() is None


@pytest.mark.parametrize(
    "text", ['{"a": [1, 2.5, null, true]}', "[]", '"x"', "12", ' {"a": 1}', '{"a": 1} ', '{"é": "ü"}']
)
def test_json_cells_read_as_json_loads_reads_them(text: str) -> None:
    assert json_loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize("text", ["", "{", '{"a": 1} x', "nope"])
def test_a_json_cell_that_is_not_json_raises_as_json_loads_does(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json_loads(text.encode())
