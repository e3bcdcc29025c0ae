"""A pooled connection handed out and taken back in a few steps, for the case every call takes.

Every RPC checks a connection out of peewee's pool and back in. peewee's general path resets its
thread state twice, enters its exception wrapper and database lock each way, goes through the
pool's locking decorator and logs at debug level on the way back: ~64k instructions of a
GetGroup's ~1.5M, for what is a heap pop and a heap push. `LeanCheckout` does the common case
(an idle pooled connection passes the pool's checks; an open one without a transaction goes
back) with the same checks, in the same order, under the pool's own lock; every other case (none
idle, a new connection to open, the pool full and a wait for a free one, a transaction still
open) goes through peewee's code unchanged.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from typing import Any

from peewee import __exception_wrapper__ as exception_wrapper  # type: ignore[attr-defined]
from playhouse.pool import PoolConnection


class LeanCheckout:
    """Mixin placed before a peewee PooledDatabase subclass (it uses the pool's attributes)."""

    _state: Any
    _pool_lock: Any
    _pool_available: Any
    _connections: list[tuple[float, int, Any]]
    _in_use: dict[int, Any]
    _heap_counter: int
    _stale_timeout: int | None
    deferred: bool
    # The pool's own hooks (and a subclass's overrides of them), from the class this mixes into.
    _is_closed: Callable[[Any], bool]
    _is_stale: Callable[[float], bool]
    _can_reuse: Callable[[Any], bool]
    _close_raw: Callable[[Any], None]

    def connect(self, reuse_if_open: bool = False) -> bool:
        state = self._state
        if state.closed and not self.deferred:
            conn = self._idle_connection()
            if conn is not None:
                state.set_connection(conn)
                return True
        return bool(super().connect(reuse_if_open))  # type: ignore[misc]

    def _idle_connection(self) -> Any:
        """The oldest idle connection that passes the pool's checks, now in use; None when
        none is left (peewee's connect then opens one, or waits for one)."""
        with self._pool_lock:
            while self._connections:
                timestamp, _counter, conn = heapq.heappop(self._connections)
                if self._is_closed(conn):
                    continue  # closed by the server or the driver: dropped, as peewee does
                if self._stale_timeout and self._is_stale(timestamp):
                    self._close_raw(conn)
                    continue
                self._in_use[id(conn)] = PoolConnection(timestamp, conn, time.time())
                return conn
        return None

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
        closed when stale or not reusable; and a thread waiting for one woken."""
        with self._pool_lock:
            pooled = self._in_use.pop(id(conn), None)
            if pooled is not None:
                if (self._stale_timeout and self._is_stale(pooled.timestamp)) or not self._can_reuse(conn):
                    self._close_raw(conn)
                else:
                    self._heap_counter += 1
                    heapq.heappush(self._connections, (pooled.timestamp, self._heap_counter, conn))
            self._pool_available.notify()
