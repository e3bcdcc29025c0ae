"""A pooled connection handed out and taken back in a few steps, and never a round trip under the
pool's lock.

Every RPC checks a connection out of peewee's pool and back in. peewee's general path resets its
thread state twice, enters its exception wrapper and database lock each way, goes through the
pool's locking decorator and logs at debug level on the way back: ~64k instructions of a
GetGroup's ~1.5M, for what is a heap pop and a heap push. `LeanCheckout` does all of it with the
same checks, in the same order, and the same bookkeeping (`_connections`, `_in_use`, the waiters'
condition).

What peewee does under its pool lock (and its database lock) that may wait on the network is done
here outside it: the check of a connection that sat idle (a `SELECT 1`, or a ROLLBACK), the
ROLLBACK of one returned dirty, and opening a new connection. Under peewee's code, one thread
probing a connection to a database that had gone silent held the lock until the database came
back, and every other call, and the health prober dropping idle connections, waited behind it
(fault injection, 2026-12-01: 20 s of silence froze the whole pool for 20 s). The lock now only
guards the heap and the counts; a connection being checked or opened counts as in use meanwhile,
so the pool never hands out more than its maximum.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Any

from peewee import __exception_wrapper__ as exception_wrapper  # type: ignore[attr-defined]
from playhouse.pool import MaxConnectionsExceeded, PoolConnection, PooledDatabase


class _Opening:
    """Stands in `_in_use` for a connection being opened, so that it counts toward the maximum."""

    __slots__ = ()


class LeanCheckout:
    """Mixin placed before a peewee PooledDatabase subclass (it uses the pool's attributes)."""

    _state: Any
    _pool_lock: Any
    _pool_available: Any
    _connections: list[tuple[float, int, Any]]
    _in_use: dict[int, Any]
    _heap_counter: int
    _stale_timeout: int | None
    _max_connections: int | None
    _wait_timeout: float
    server_version: Any
    deferred: bool
    # The pool's own hooks (and a subclass's overrides of them), from the class this mixes into.
    _is_closed: Callable[[Any], bool]
    _is_stale: Callable[[float], bool]
    _can_reuse: Callable[[Any], bool]
    _close_raw: Callable[[Any], None]
    _set_server_version: Callable[[Any], None]
    _initialize_connection: Callable[[Any], None]

    def connect(self, reuse_if_open: bool = False) -> bool:
        state = self._state
        if not state.closed or self.deferred:
            return bool(super().connect(reuse_if_open))  # type: ignore[misc]  # peewee refuses these
        conn = self._check_out()
        state.set_connection(conn)
        return True

    def _check_out(self) -> Any:
        """A connection for this thread: an idle one that passes the checks, else a new one;
        waits (up to the pool's timeout) while every connection is in use."""
        deadline = time.monotonic() + (self._wait_timeout or 0)
        while True:
            with self._pool_lock:
                taken = self._take()
                if taken is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise MaxConnectionsExceeded("Max connections exceeded, timed out attempting to connect.")
                    self._pool_available.wait(timeout=min(remaining, 1.0))
                    continue
            timestamp, conn = taken
            if conn is None:
                return self._open()
            if self._usable(conn, timestamp):
                return conn

    def _take(self) -> tuple[float, Any] | None:
        """Under the lock: the oldest idle connection, now counted in use; (0, None) when a new
        one may be opened (its slot taken meanwhile); None when the pool is full."""
        if self._connections:
            timestamp, _counter, conn = heapq.heappop(self._connections)
            self._in_use[id(conn)] = PoolConnection(timestamp, conn, time.time())
            return timestamp, conn
        if self._max_connections and len(self._in_use) >= self._max_connections:
            return None
        return 0.0, None

    def _usable(self, conn: Any, timestamp: float) -> bool:
        """The pool's checks of an idle connection, outside the lock (one may be a round trip);
        a connection that fails them is closed and gives its slot back."""
        if not self._is_closed(conn) and not (self._stale_timeout and self._is_stale(timestamp)):
            return True
        self._release(conn)
        self._close_raw(conn)  # stale, or closed by the server (or cut by a bounded check): its socket goes
        return False

    def _open(self) -> Any:
        slot = _Opening()
        with self._pool_lock:
            self._in_use[id(slot)] = PoolConnection(0.0, slot, time.time())
        try:
            with exception_wrapper:
                conn = super(PooledDatabase, self)._connect()  # type: ignore[misc]  # the driver's connect
                if self.server_version is None:
                    self._set_server_version(conn)
                self._initialize_connection(conn)
        except BaseException:
            self._release(slot)
            raise
        now = time.time()
        with self._pool_lock:
            del self._in_use[id(slot)]
            self._in_use[id(conn)] = PoolConnection(now, conn, now)
        return conn

    def _release(self, conn: Any) -> None:
        """Give a connection's slot back (the connection is not pooled) and wake a waiter."""
        with self._pool_lock:
            self._in_use.pop(id(conn), None)
            self._pool_available.notify()

    def close(self) -> bool:
        state = self._state
        if state.closed or state.transactions or self.deferred:
            return bool(super().close())  # type: ignore[misc]  # peewee refuses or ignores these
        try:
            with exception_wrapper:
                self._check_in(state.conn)
        finally:
            state.reset()
        return True

    def _check_in(self, conn: Any) -> None:
        """What the pool's _close does with a connection it handed out: back on the heap, or
        closed when stale or not reusable; and a thread waiting for one woken. Whether it can be
        reused is asked first, outside the lock: a dirty one is rolled back, a round trip."""
        reusable = self._can_reuse(conn)
        with self._pool_lock:
            pooled = self._in_use.pop(id(conn), None)
            keep = pooled is not None and reusable and not (self._stale_timeout and self._is_stale(pooled.timestamp))
            if keep:
                self._heap_counter += 1
                heapq.heappush(self._connections, (pooled.timestamp, self._heap_counter, conn))
            self._pool_available.notify()
        if pooled is not None and not keep:
            self._close_raw(conn)
