"""Database calls bounded even when the database never answers.

Every call's transaction runs inside `connection()`, which
- refuses at once while the health prober says the database is unreachable (the breaker), so an
  outage costs no connection attempt per call and no worker waits on a dead server;
- admits at most `max_calls` calls at a time (the gate); a call that finds every slot taken for
  `gate_wait` seconds is refused, so calls stuck on a silent database can never occupy every
  worker thread: health checks and calls that need no database keep being answered;
- registers its connection, so that when the prober finds the database silent, the calls stuck
  on it are cut loose (their sockets shut down: the driver raises a connection error at once,
  where a partition would otherwise leave them waiting for TCP to give up).

A COMMIT in flight is not cut when the database goes silent: its outcome would become unknown
to the caller, where a moment later it might have been a plain success. But it is not waited on
forever either: TCP's timeouts never fire when the server's kernel still acknowledges (a stuck
server process, a proxy holding the bytes), and fault injection saw a COMMIT wait out a whole
20 s silence. While the prober finds the database unreachable, a COMMIT waiting longer than
COMMIT_WAIT seconds is cut; the call answers UNAVAILABLE with COMMIT_OUTCOME_UNKNOWN (retry with
the same request_id to learn the outcome).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from server.storage.models import db

log = logging.getLogger("issue_service.liveness")
COMMIT_WAIT = 5.0  # seconds a COMMIT may wait on an unreachable database before it is cut


class Unreachable(Exception):
    """The prober found the database unreachable; the call was not tried."""


class Saturated(Exception):
    """Every database slot stayed taken for the gate's wait; the call was not tried."""


class Gate:
    """At most `slots` holders at a time: a queue of that many tokens. queue.SimpleQueue takes
    and gives one in C; threading.BoundedSemaphore does it in Python under a Condition (~13k
    instructions a call against ~2k, and every call passes the gate)."""

    def __init__(self, slots: int) -> None:
        self._tokens: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(slots):
            self._tokens.put(None)

    def acquire(self, *, timeout: float) -> bool:
        try:
            self._tokens.get(timeout=timeout)
        except queue.Empty:
            return False
        return True

    def release(self) -> None:
        self._tokens.put(None)


class _State:
    def __init__(self) -> None:
        self.reachable = True
        self.max_calls = 64
        self.gate = Gate(self.max_calls)
        self.gate_wait = 1.0
        self.lock = threading.Lock()
        self.calls: dict[int, tuple[Any, float]] = {}  # thread id -> (connection, since)
        self.commits: dict[int, tuple[Any, float]] = {}  # thread id -> (connection, COMMIT sent at)


_state = _State()


def configure(*, max_calls: int, gate_wait: float = 1.0) -> int:
    """At most max_calls calls on the database at once; the others wait gate_wait, then fail.
    Returns the previous max_calls (a test server restores it when it stops)."""
    previous = _state.max_calls
    _state.gate = Gate(max_calls)
    _state.max_calls, _state.gate_wait = max_calls, gate_wait
    return previous


def is_reachable() -> bool:
    return _state.reachable


def set_reachable(reachable: bool) -> None:
    """The prober's verdict, after each of its probes. Unreachable: refuse new calls and cut
    loose the ones in flight; at every failed probe, cut the COMMITs past COMMIT_WAIT."""
    was = _state.reachable
    _state.reachable = reachable
    if was and not reachable:
        cut = abort_in_flight()
        _drop_idle_connections()
        log.warning("database unreachable: refusing calls; cut loose %d in flight", cut)
    if not reachable and (stuck := abort_commits(older_than=COMMIT_WAIT)):
        log.warning("database unreachable: cut %d COMMIT(s) waiting over %.0f s; outcome unknown", stuck, COMMIT_WAIT)


_nested = threading.local()


def connection() -> AbstractContextManager[None]:
    """A pooled connection for one call, under the breaker, the gate and the watch.

    Reentrant: a transaction inside another (a request id's record around the update) shares
    the outer one's slot and connection instead of waiting for a second slot.
    """
    if getattr(_nested, "depth", 0):
        return _nested_connection()
    return _CHECKOUT


@contextlib.contextmanager
def _nested_connection() -> Iterator[None]:
    _nested.depth += 1
    try:
        with db.connection_context():
            yield
    finally:
        _nested.depth -= 1


class _Checkout:
    """The outermost `connection()`, as a plain context manager: every call goes through it, and
    a generator-based one with peewee's ConnectionContext and a second one for the watch cost
    ~15 us more per call (most of them lookups through the database proxy). What it holds
    between enter and exit is the thread's (`_nested`), so one instance serves every thread."""

    __slots__ = ()

    def __enter__(self) -> None:
        if not _state.reachable:
            raise Unreachable("database unreachable (health probe failed)")
        gate = _state.gate  # the one acquired is the one released, even if reconfigured meanwhile
        if not gate.acquire(timeout=_state.gate_wait):
            raise Saturated("too many calls waiting on the database")
        database = db.obj
        try:
            # What peewee's connection_context() does: open unless open, and count this context
            # on the thread's stack, so that a nested one does not close the connection.
            if database.is_closed():
                database.connect()
            database._state.ctx.append(self)
            conn = database._state.conn
        except BaseException:
            gate.release()
            raise
        _nested.depth, _nested.gate, _nested.database = 1, gate, database
        with _state.lock:
            _state.calls[threading.get_ident()] = (conn, time.monotonic())

    def __exit__(self, *exc: object) -> None:
        local = _nested
        gate, database = local.gate, local.database
        local.depth, local.gate, local.database = 0, None, None
        try:
            with _state.lock:
                _state.calls.pop(threading.get_ident(), None)
            database._state.ctx.pop()
            if not database._state.ctx:
                database.close()
        finally:
            gate.release()


_CHECKOUT = _Checkout()


@contextlib.contextmanager
def committing() -> Iterator[None]:
    """COMMIT in flight: not cut loose with the other calls when the database goes silent
    (shutting its socket would turn "applied" into "unknown" for the caller), only once it has
    waited past COMMIT_WAIT on an unreachable database (`abort_commits`). A connection lost
    while committing leaves the outcome in doubt: `commit_in_doubt` says so."""
    key = threading.get_ident()
    with _state.lock:
        entry = _state.calls.pop(key, None)
        if entry is not None:
            _state.commits[key] = (entry[0], time.monotonic())
    _nested.in_doubt = False
    try:
        yield
    except Exception:
        _nested.in_doubt = True
        raise
    finally:
        if entry is not None:
            with _state.lock:
                _state.commits.pop(key, None)
                _state.calls[key] = entry


def commit_in_doubt() -> bool:
    """Whether this thread's last COMMIT failed after it was sent (read once: it resets)."""
    doubt = bool(getattr(_nested, "in_doubt", False))
    _nested.in_doubt = False
    return doubt


def abort_in_flight() -> int:
    """Shut down the socket of every registered network connection; returns how many."""
    cut = 0
    with _state.lock:  # held: a registered connection is checked out, so still open
        for conn, _since in _state.calls.values():
            cut += abort_connection(conn)
    return cut


@contextlib.contextmanager
def bounded(conn: Any, *, seconds: float) -> Iterator[None]:
    """Whatever waits on `conn` inside is cut loose after `seconds`: the driver has no
    client-side timeout for a statement, so a timer shuts the socket down (the wait then fails
    with a connection error, and the connection is done for)."""
    timer = threading.Timer(seconds, abort_connection, args=(conn,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def abort_commits(*, older_than: float) -> int:
    """Shut down the socket of every COMMIT in flight for more than `older_than` seconds."""
    cut = 0
    cutoff = time.monotonic() - older_than
    with _state.lock:
        for conn, since in _state.commits.values():
            if since <= cutoff:
                cut += abort_connection(conn)
    return cut


def abort_connection(conn: Any) -> int:
    """Shut a network connection's socket down under whoever waits on it; 1 if there was one."""
    fileno = getattr(conn, "fileno", None)  # psycopg has one; sqlite3 (a file) has none
    if fileno is None:
        return 0
    try:
        duplicate = socket.socket(fileno=os.dup(fileno()))
    except (OSError, ValueError, TypeError):
        return 0  # already closed
    with duplicate, contextlib.suppress(OSError):
        duplicate.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked reading it
    return 1


def _drop_idle_connections() -> None:
    """Idle pooled connections went to the same silent server: do not hand them out again."""
    close_idle = getattr(db.obj, "close_idle", None)
    if close_idle is not None:
        try:
            close_idle()
        except Exception:  # best effort: a dead connection also fails its first statement
            log.debug("closing idle connections failed", exc_info=True)
