"""Write-behind inside a transaction: independent writes leave together, in one round trip.

A step that writes and does not look at the result (an INSERT of activity rows, a DELETE of
inbox rows) hands its statement to `defer`; the statement is sent just before the next other
statement, or before COMMIT. On PostgreSQL the queued statements go as one statement of
data-modifying CTEs, in the same network round trip as the statement that follows them
(psycopg's pipeline mode), and BEGIN waits for the transaction's first statement and travels
with it. SQLite has no data-modifying CTEs and no round trips: it runs them one by one, in order.

What makes that safe: a deferred statement reads and writes only its own table (its `table`),
and a queue holds at most one statement per table (a second one flushes the first), so the
statements of one flush cannot see or undo each other, and every other statement sees all
writes queued before it. Outside a transaction nothing is deferred.

A transaction's last read, whose row is wanted only once it has committed (an update's reply),
can travel with COMMIT too (`read_with_commit`): the writes, the read and COMMIT leave in one
round trip instead of two.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import peewee

from server.storage import liveness, wire

Queued = tuple[str, str, Sequence[Any]]  # (table, sql, params)
Statement = tuple[str, Any]  # (sql, params)


class PendingRow:
    """The first row of a read sent with COMMIT (None when it found none), once it was sent."""

    __slots__ = ("_row", "_sent")

    def __init__(self) -> None:
        self._row: Any = None
        self._sent = False

    def settle(self, row: Any) -> None:
        self._row, self._sent = row, True

    def row(self) -> Any:
        if not self._sent:  # the transaction rolled back before the read was sent
            raise RuntimeError("the read was never sent: its transaction did not commit")
        return self._row


class DeferredWrites:
    """Mixin for a peewee Database (before it in the bases)."""

    pipelined = False  # PostgreSQL: combined writes, lazy BEGIN, one round trip with the next statement
    prepare_statements = True  # PostgreSQL: off behind a transaction pooler

    def defer(self, sql: str, params: Sequence[Any], *, table: str) -> None:
        """Run `sql` (touching only `table`) before the next statement or the commit."""
        if self.transaction_depth() == 0:  # type: ignore[attr-defined]
            self.execute_sql(sql, params)
            return
        state = self._deferred()
        if any(queued == table for queued, _, _ in state.queue):
            self.flush()
        state.queue.append((table, sql, list(params)))

    def read_with_commit(self, sql: str, params: Any) -> PendingRow:
        """Read `sql`'s first row with the transaction's COMMIT, in its round trip.

        Nothing but COMMIT may follow it; any other statement sends the read first, in order, so
        inside a nested transaction (a savepoint) it leaves with the savepoint's RELEASE: the
        caller of the inner transaction has its row before the outer one commits. A rollback
        drops it unsent. On SQLite (no round trips) and outside a transaction it runs at once.
        """
        pending = PendingRow()
        if not self.pipelined or self.transaction_depth() == 0:  # type: ignore[attr-defined]
            pending.settle(self.execute_sql(sql, params).fetchone())
            return pending
        state = self._deferred()
        self._send_read(state)  # a second read: the first goes now
        state.read = (sql, params, pending)
        return pending

    def flush(self) -> None:
        """Send what is pending (BEGIN, queued writes, a read waiting for COMMIT) now."""
        self._send_read(self._deferred())
        pending = self._take_pending()
        for sql, params in pending:
            self._run(sql, params)

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        state = self._deferred()
        if state.read is not None and sql.startswith("ROLLBACK TO SAVEPOINT"):
            state.read = None  # its body failed: the transaction may be unable to run it anyway
        self._send_read(state)
        pending = self._take_pending()
        if not pending:
            return self._run(sql, params)
        if not self.pipelined:
            for before, before_params in pending:
                self._run(before, before_params)
            return self._run(sql, params)
        return self._pipeline([*pending, (sql, params)])[-1]

    def _send_read(self, state: Any) -> None:
        if state.read is None:
            return
        (sql, params, pending), state.read = state.read, None
        pending.settle(self.execute_sql(sql, params).fetchone())

    def begin(self, *args: Any, **kwargs: Any) -> None:
        state = self._deferred()
        state.queue.clear()
        state.read = None
        if self.pipelined:  # sent with the transaction's first statement
            state.begin = True
            return
        self._announced("BEGIN", super().begin, *args, **kwargs)  # type: ignore[misc]

    def commit(self) -> None:
        state = self._deferred()
        if state.begin and not state.queue and state.read is None:  # nothing ran: no transaction to end
            state.begin = False
            return
        pending = self._take_pending()
        if self.pipelined:
            read, state.read = state.read, None
            reads = [] if read is None else [(read[0], read[1])]
            with liveness.committing():
                cursors = self._pipeline([*pending, *reads, ("COMMIT", None)])
            if read is not None:
                read[2].settle(cursors[-2].fetchone())
            return
        for sql, params in pending:
            self._run(sql, params)
        with liveness.committing():
            self._announced("COMMIT", super().commit)  # type: ignore[misc]

    def rollback(self) -> None:
        state = self._deferred()
        state.queue.clear()
        state.read = None  # its PendingRow stays unsent
        if state.begin:  # BEGIN was never sent
            state.begin = False
            return
        self._announced("ROLLBACK", super().rollback)  # type: ignore[misc]

    def _take_pending(self) -> list[Statement]:
        state = self._deferred()
        pending: list[Statement] = [("BEGIN", None)] if state.begin else []
        state.begin = False
        items, state.queue = state.queue, []
        # A queued read (a row lock whose rows nobody reads) leaves as its own statement:
        # PostgreSQL skips a SELECT in a WITH that nothing references.
        reads = any(sql.lstrip()[:6].upper() == "SELECT" for _, sql, _ in items)
        if self.pipelined and len(items) > 1 and not reads:
            ctes = ", ".join(f"w{i} AS ({sql})" for i, (_, sql, _) in enumerate(items))
            pending.append((f"WITH {ctes} SELECT 1", [p for _, _, params in items for p in params]))
        else:
            pending += [(sql, params) for _, sql, params in items]
        return pending

    def _deferred(self) -> Any:
        state: Any = self._state  # type: ignore[attr-defined]  # peewee's per-thread state
        if not hasattr(state, "queue"):
            state.queue, state.begin, state.read = [], False, None
        return state

    def _run(self, sql: str, params: Any) -> Any:
        bound = wire.bind([(sql, params)]) if self.pipelined else None
        if bound is not None:
            return self._round_trip([(sql, params)], bound=bound)[0]
        cursor = super().execute_sql(sql, params)  # type: ignore[misc]
        if self.pipelined:
            wire.after(self.connection(), cursor.statusmessage)  # type: ignore[attr-defined]
        return cursor

    def _pipeline(self, statements: list[Statement]) -> list[Any]:
        """Every statement in one round trip; their cursors (or wire.Rows), in order."""
        return self._round_trip(statements)

    def _round_trip(self, statements: list[Statement], *, bound: list[wire.Bound] | None = None) -> list[Any]:
        """`bound`: the statements as wire.bind bound them, when the caller already did."""
        conn = self.connection()  # type: ignore[attr-defined]
        start = time.perf_counter()
        if bound is None:
            bound = wire.bind(statements)
        try:
            with peewee.__exception_wrapper__:  # type: ignore[attr-defined]
                if bound is not None:
                    cursors: list[Any] = wire.run_bound(conn, bound, prepare=self.prepare_statements)
                else:
                    cursors = self._psycopg_pipeline(conn, statements)
        except Exception as exc:
            self._tell_hooks(statements, start, exc)
            raise
        self._tell_hooks(statements, start, None)
        return cursors

    @staticmethod
    def _psycopg_pipeline(conn: Any, statements: list[Statement]) -> list[Any]:
        cursors = []
        with conn.pipeline():
            for sql, params in statements:
                cursors.append(conn.cursor())
                cursors[-1].execute(sql, params)
        return cursors

    def _tell_hooks(self, statements: list[Statement], start: float, exc: Exception | None) -> None:
        """One event per statement; the round trip's time goes to its last statement (the others
        report none), so the statements' durations add up to the time spent waiting, once."""
        if self.query_hooks:  # type: ignore[attr-defined]
            now = time.perf_counter()
            for i, (sql, params) in enumerate(statements):
                last = i == len(statements) - 1
                self._notify_hooks(sql, params, start if last else now, exc)  # type: ignore[attr-defined]

    def _announced(self, sql: str, call: Any, *args: Any, **kwargs: Any) -> None:
        """Transaction control runs on the cursor, past the query hooks: tell them, so statement
        counts include the round trips of BEGIN and COMMIT."""
        start = time.perf_counter()
        call(*args, **kwargs)
        if self.query_hooks:  # type: ignore[attr-defined]
            self._notify_hooks(sql, None, start, None)  # type: ignore[attr-defined]
