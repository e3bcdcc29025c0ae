"""A round trip of fixed statements straight through libpq, for the hot paths on PostgreSQL.

psycopg's cursors and pipeline spend ~50 us of Python per statement around libpq (a cursor, a
query conversion, dumpers, a generator per step, one send and two polls per statement in a
pipeline). Our hot statements are fixed texts with int, str, bool, float, datetime or NULL
parameters, so here they go through psycopg's libpq wrapper (`psycopg.pq`) directly: every
statement of the round trip is queued in libpq's buffer, sent in one flush, and the results are
read until the pipeline's sync. The waiting is still psycopg's (`Connection.wait`), so a silent
or vanished server raises psycopg's OperationalError as before, and the rows are loaded by
psycopg's Transformer with the connection's adapters: the same Python values as a cursor gives.

A statement with another kind of parameter (a date, a UUID, bytes, a JSON wrapper) or with none
(DDL, possibly several statements in one text: the simple query protocol) is left to psycopg's
cursor: `runnable` says which.

Prepared statements: a text is prepared on its second run on a connection, at most PREPARED_MAX
per connection (the least recently used deallocated), never when the database URL turns them off
(behind PgBouncer in transaction mode). The pool lets only this module prepare: psycopg drops
every statement it prepared after any ROLLBACK (a failed call), and the next calls then planned
the hot statements again; statements prepared here outlive a ROLLBACK, and DDL resets them
(`after`).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from psycopg import errors, pq
from psycopg.adapt import Transformer
from psycopg.waiting import Ready, Wait

PREPARED_MAX = 100
_SEEN_MAX = 512  # texts seen once per connection, remembered to prepare them on their next run
_INT8, _BOOL, _FLOAT8, _TIMESTAMP, _TIMESTAMPTZ = 20, 16, 701, 1114, 1184
# The types psycopg would send (with our pool's ints as bigint); str as unknown, as psycopg does,
# so that PostgreSQL infers it from where it goes.
_TYPES = {int: _INT8, str: 0, bool: _BOOL, float: _FLOAT8, dt.datetime: _TIMESTAMP}
_PLACEHOLDER = re.compile(rb"%(?:\((?P<name>[^)]+)\))?(?P<kind>.)", re.DOTALL)
_SYNC, _ERROR, _ABORTED = pq.ExecStatus.PIPELINE_SYNC, pq.ExecStatus.FATAL_ERROR, pq.ExecStatus.PIPELINE_ABORTED
_TUPLES = pq.ExecStatus.TUPLES_OK

Statement = tuple[str, Any]  # (sql with %s or %(name)s placeholders, params)


class _Unsupported(Exception):
    pass


@lru_cache(maxsize=256)
def _convert(sql: str) -> tuple[bytes, tuple[str, ...] | int] | None:
    """The text with $n placeholders, and the parameters' names in order (or their count);
    None for a text psycopg must convert (%b, %t, or mixed placeholder styles)."""
    try:
        return _numbered(sql)
    except _Unsupported:
        return None


def _numbered(sql: str) -> tuple[bytes, tuple[str, ...] | int]:
    names: list[str] = []
    count = 0

    def number(match: re.Match[bytes]) -> bytes:
        nonlocal count
        kind = match.group("kind")
        if kind == b"%" and match.group("name") is None:
            return b"%"
        if kind != b"s":
            raise _Unsupported
        name = match.group("name")
        if name is None:
            count += 1
            return b"$%d" % count
        key = name.decode()
        if key not in names:
            names.append(key)
        return b"$%d" % (names.index(key) + 1)

    text = _PLACEHOLDER.sub(number, sql.encode())
    if names and count:
        raise _Unsupported
    return text, tuple(names) if names else count


def _ordered(sql: str, params: Any) -> tuple[bytes, Sequence[Any]] | None:
    converted = _convert(sql)
    if converted is None:
        return None
    text, shape = converted
    if isinstance(shape, tuple):
        if not isinstance(params, dict):
            return None
        return text, [params[name] for name in shape]
    if isinstance(params, dict) or len(params or ()) != shape:
        return None
    return text, params or ()


def runnable(sql: str, params: Any) -> bool:
    """Whether `run` takes this statement (else it is for psycopg's cursor)."""
    return _bound(sql, params) is not None


Bound = tuple[bytes, Sequence[Any]]  # a statement's $n text and its parameters' values in order


def bind(statements: Sequence[Statement]) -> list[Bound] | None:
    """Every statement bound for `run_bound`; None if one of them is not `runnable`."""
    bound = []
    for sql, params in statements:
        if (statement := _bound(sql, params)) is None:
            return None
        bound.append(statement)
    return bound


def _bound(sql: str, params: Any) -> Bound | None:
    """The statement's $n text and its parameters' values in order, or None if not `runnable`."""
    if not params:
        return (sql.encode(), ()) if sql in ("BEGIN", "COMMIT") else None
    ordered = _ordered(sql, params)
    if ordered is None or not _dumpable(ordered[1]):
        return None
    return ordered


def _dumpable(values: Sequence[Any]) -> bool:
    for value in values:
        kind = type(value)
        # libpq reads a text parameter up to its first NUL: psycopg refuses such a string
        # (DataError) where this would cut it short, so it stays psycopg's.
        if value is not None and (kind not in _TYPES or (kind is str and "\x00" in value)):
            return False
    return True


def _dump(values: Sequence[Any], encoding: str) -> tuple[list[bytes | None], list[int]]:
    data: list[bytes | None] = []
    types: list[int] = []
    for value in values:
        kind = type(value)
        oid = _TYPES.get(kind, 0)
        if value is None:
            data.append(None)
        elif kind is bool:
            data.append(b"t" if value else b"f")
        elif kind is dt.datetime:
            data.append(value.isoformat().encode())
            oid = _TIMESTAMP if value.tzinfo is None else _TIMESTAMPTZ
        else:
            data.append(str(value).encode(encoding))
        types.append(oid)
    return data, types


class Rows:
    """The rows of one statement, loaded as a psycopg cursor would: what peewee reads of one."""

    def __init__(self, result: Any, rows: list[tuple[Any, ...]]) -> None:
        self._result = result
        self._rows = rows
        self._next = 0

    @property
    def rowcount(self) -> int:
        """The rows the statement returned or changed (-1 when its tag tells none), as a cursor's."""
        tuples = self._result.command_tuples
        return tuples if tuples is not None else -1

    @property
    def description(self) -> list[tuple[str]] | None:
        """The columns' names (what peewee reads of a cursor's description), or None for a
        statement that returns no rows. Built when asked: the hot paths read rows by position,
        and GetGroup's 83 names took 13 of the 33 us its result cost."""
        result = self._result
        if result.status != _TUPLES:
            return None
        return [((result.fname(i) or b"").decode(),) for i in range(result.nfields)]

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchmany(self, size: int = 1) -> list[tuple[Any, ...]]:
        rows = self._rows[self._next : self._next + size]
        self._next += len(rows)
        return rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self._rows[self._next :]
        self._next = len(self._rows)
        return rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        self._rows = []


class _Prepared:
    """The statements prepared on one connection, least recently used first."""

    def __init__(self) -> None:
        self.names: OrderedDict[tuple[bytes, tuple[int, ...]], bytes] = OrderedDict()
        self.seen: OrderedDict[tuple[bytes, tuple[int, ...]], None] = OrderedDict()
        self.counter = 0


_TRANSFORMER = "_issues_wire_transformer"


def _transformer(conn: Any) -> Any:
    """The psycopg Transformer that loads this connection's rows: one per connection, as a cursor
    keeps one across its executes. It caches the loader of each type it met, where a new one per
    round trip asked the adapters map for every column of every result again. Kept on the
    connection itself, not in the weak-keyed map: it holds the connection, so an entry there
    would keep every closed connection alive. A connection serves one thread at a time."""
    transformer = conn.__dict__.get(_TRANSFORMER)
    if transformer is None:
        transformer = Transformer(conn)
        setattr(conn, _TRANSFORMER, transformer)
    return transformer


_SHAPES = "_issues_wire_shapes"


class _Shape:
    """The loaders of one prepared statement's results. PostgreSQL refuses to run a prepared
    statement whose result would change shape ("cached plan must not change result type"), so
    they are looked up on its first result only. Looking them up is a lookup per column, every
    time: ~45k of the ~360k instructions GetGroup's statement and its rows cost, where loading
    the cells themselves costs a few thousand."""

    __slots__ = ("nfields", "transformer")

    def __init__(self, conn: Any, result: Any) -> None:
        self.transformer = Transformer(conn)
        self.transformer.set_pgresult(result)
        self.nfields = result.nfields


def _shapes(conn: Any) -> dict[bytes, _Shape]:
    """The connection's shapes by prepared statement name, kept on the connection as its
    transformer is (a Transformer holds its connection)."""
    shapes: dict[bytes, _Shape] | None = conn.__dict__.get(_SHAPES)
    if shapes is None:
        shapes = {}
        setattr(conn, _SHAPES, shapes)
    return shapes


def _load(conn: Any, name: bytes | None, result: Any) -> list[tuple[Any, ...]]:
    """The result's rows as a cursor would load them."""
    if name is None:  # a statement not prepared: its result says which loaders, each time
        transformer = _transformer(conn)
        transformer.set_pgresult(result)
        return transformer.load_rows(0, result.ntuples, tuple)  # type: ignore[no-any-return]
    shapes = _shapes(conn)
    shape = shapes.get(name)
    if shape is not None and shape.nfields == result.nfields:
        shape.transformer.set_pgresult(result, set_loaders=False)
    else:
        shape = shapes[name] = _Shape(conn, result)
    return shape.transformer.load_rows(0, result.ntuples, tuple)


_prepared: WeakKeyDictionary[Any, _Prepared] = WeakKeyDictionary()
_prepared_lock = threading.Lock()


def _state_of(conn: Any) -> _Prepared:
    state = _prepared.get(conn)
    if state is None:
        with _prepared_lock:
            state = _prepared.setdefault(conn, _Prepared())
    return state


# What psycopg deallocates its own prepared statements after (psycopg._preparing): a dropped or
# altered object may come back with another shape, and a statement planned against the old one
# fails ("cached plan must not change result type"); DISCARD or DEALLOCATE ALL took them away.
_INVALIDATING = re.compile(r"^(?:DROP|ALTER|DISCARD ALL|DEALLOCATE ALL)\b")


def after(conn: psycopg.Connection[Any], status: str | None) -> None:
    """A statement psycopg ran on `conn` ended with this command status: if it was DDL that can
    invalidate a plan (or it dropped every prepared statement), start afresh."""
    if not status or not _INVALIDATING.match(status):
        return
    state = _prepared.get(conn)
    if state is not None and state.names:
        conn.execute("DEALLOCATE ALL")
    forget(conn)


def forget(conn: Any) -> None:
    """Nothing is known to be prepared on this connection any more (nor of its types)."""
    with _prepared_lock:
        _prepared.pop(conn, None)
    conn.__dict__.pop(_TRANSFORMER, None)
    conn.__dict__.pop(_SHAPES, None)


def run(conn: psycopg.Connection[Any], statements: Sequence[Statement], *, prepare: bool) -> list[Rows] | None:
    """Send every statement in one round trip; their rows, in order. None, with nothing sent,
    when one of them is not `runnable`: psycopg's cursor takes them."""
    bound = bind(statements)
    return None if bound is None else run_bound(conn, bound, prepare=prepare)


def run_bound(conn: psycopg.Connection[Any], bound: Sequence[Bound], *, prepare: bool) -> list[Rows]:
    """`run` for statements `bind` already bound (a caller that had to know whether they are
    runnable binds them once, not twice).

    The first failing statement raises its psycopg error once the round trip has ended (libpq
    skips the ones after it); what happens to the transaction is the caller's, as with a cursor.
    """
    pg = conn.pgconn
    prepared = _state_of(conn) if prepare else None
    with conn.lock:
        pg.enter_pipeline_mode()
        try:
            encoding = conn.info.encoding  # a property that builds an object: read once
            sent = [_send(conn, prepared, text, values, encoding) for text, values in bound]
            pg.pipeline_sync()
            results = conn.wait(_exchange(pg))
            pg.exit_pipeline_mode()
        except BaseException:
            # Results still unread (a lost connection, an interrupt): the session's state is
            # unknown, so the connection is closed and the pool drops it.
            conn.close()
            raise
    if prepared is not None:
        _settle_prepared(prepared, sent, results)
    return _rows(conn, results, sent, encoding=encoding)


# Results to skip before the statement's own; the key it prepared; the prepared statement it ran.
Sent = tuple[int, "tuple[bytes, tuple[int, ...]] | None", bytes | None]


def _send(conn: Any, state: _Prepared | None, text: bytes, values: Sequence[Any], pg_encoding: str) -> Sent:
    """Queue one statement in libpq's buffer: how many results come before its own (a PREPARE,
    a DEALLOCATE), the key of the statement it prepared, if it did, and the name of the prepared
    statement it runs, if it runs one."""
    pg = conn.pgconn
    if not values:  # BEGIN, COMMIT
        pg.send_query_params(text, None)
        return 0, None, None
    data, types = _dump(values, pg_encoding)
    key = (text, tuple(types))
    name = None if state is None else state.names.get(key)
    if name is not None:
        assert state is not None
        state.names.move_to_end(key)
        pg.send_query_prepared(name, data)
        return 0, None, name
    if state is None or _first_run(state, key):
        pg.send_query_params(text, data, param_types=types)
        return 0, None, None
    skips = _evict(conn, pg, state)
    state.counter += 1
    name = state.names[key] = b"_iss_%d" % state.counter
    pg.send_prepare(name, text, param_types=types)
    pg.send_query_prepared(name, data)
    return skips + 1, key, name


def _first_run(state: _Prepared, key: tuple[bytes, tuple[int, ...]]) -> bool:
    """A text not prepared yet is prepared on its second run: one run once (a one-off search)
    never is."""
    if key in state.seen:
        del state.seen[key]
        return False
    state.seen[key] = None
    if len(state.seen) > _SEEN_MAX:
        state.seen.popitem(last=False)
    return True


def _settle_prepared(state: _Prepared, sent: list[Sent], results: list[Any]) -> None:
    """A PREPARE that failed (or that an earlier failure skipped) prepared nothing: forget it."""
    at = 0
    for skip, key, _ in sent:
        at += skip
        if key is not None and results[at - 1].status != pq.ExecStatus.COMMAND_OK:
            state.names.pop(key, None)
            state.seen[key] = None  # its next run prepares it
        at += 1


def _evict(conn: Any, pg: Any, state: _Prepared) -> int:
    # Should this round trip fail before its DEALLOCATE runs, the evicted statement stays on the
    # server, unused, until the connection closes: at most one per failed round trip.
    if len(state.names) < PREPARED_MAX:
        return 0
    _, old = state.names.popitem(last=False)
    _shapes(conn).pop(old, None)
    pg.send_query_params(b"DEALLOCATE " + old, None)
    return 1


def _exchange(pg: Any) -> Any:
    """Flush the queued statements, then read every result up to the sync (a psycopg generator)."""
    while pg.flush():  # the buffer did not fit in the socket: wait until it takes more
        ready = yield Wait.RW
        if ready & Ready.R:
            pg.consume_input()
    results: list[Any] = []
    while True:
        ended = True  # a NULL right after a statement's result ends it; a second: nothing yet
        while not pg.is_busy():
            result = pg.get_result()
            if result is None:
                if ended:
                    break
                ended = True
                continue
            if result.status == _SYNC:
                return results
            results.append(result)
            ended = False
        yield Wait.R
        pg.consume_input()


def _rows(conn: Any, results: list[Any], sent: list[Sent], *, encoding: str) -> list[Rows]:
    failure = next((r for r in results if r.status == _ERROR), None)
    if failure is not None:
        error = errors.error_from_result(failure, encoding=encoding)
        if isinstance(error, errors.InvalidSqlStatementName):
            # Our statements went away behind our back (something ran DEALLOCATE ALL on this
            # session outside `after`): this call fails, the next ones prepare afresh.
            forget(conn)
        raise error
    if any(r.status == _ABORTED for r in results):
        raise errors.InternalError("a statement of the round trip was skipped without an error")
    out, at = [], 0
    for skip, _, name in sent:
        at += skip
        result = results[at]
        out.append(Rows(result, _load(conn, name, result) if result.status == _TUPLES else []))
        at += 1
    return out
