"""Write-behind inside a transaction: independent writes leave together, in one round trip.

A step that writes and does not look at the result (an INSERT of activity rows, a DELETE of
inbox rows) hands its statement to `defer`; the statement is sent just before the next other
statement, or before COMMIT. On PostgreSQL the queued statements go as one statement of
data-modifying CTEs; SQLite has none, so it runs them one by one, in the same order.

What makes that safe: a deferred statement reads and writes only its own table (its `table`),
and a queue holds at most one statement per table (a second one flushes the first), so the
statements of one flush cannot see or undo each other, and every other statement sees all
writes queued before it. Outside a transaction nothing is deferred.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

Queued = tuple[str, str, Sequence[Any]]  # (table, sql, params)


class DeferredWrites:
    """Mixin for a peewee Database (before it in the bases)."""

    combine_writes = False  # PostgreSQL: one statement of data-modifying CTEs per flush

    def defer(self, sql: str, params: Sequence[Any], *, table: str) -> None:
        """Run `sql` (touching only `table`) before the next statement or the commit."""
        if self.transaction_depth() == 0:  # type: ignore[attr-defined]
            self.execute_sql(sql, params)
            return
        queue = self._queue()
        if any(queued == table for queued, _, _ in queue):
            self.flush()
            queue = self._queue()
        queue.append((table, sql, list(params)))

    def flush(self) -> None:
        queue = self._queue()
        if not queue:
            return
        items = list(queue)
        queue.clear()
        run: Any = super().execute_sql  # type: ignore[misc]
        if not self.combine_writes or len(items) == 1:
            for _, sql, params in items:
                run(sql, params)
            return
        ctes = ", ".join(f"w{i} AS ({sql})" for i, (_, sql, _) in enumerate(items))
        run(f"WITH {ctes} SELECT 1", [p for _, _, params in items for p in params])

    def _queue(self) -> list[Queued]:
        state: Any = self._state  # type: ignore[attr-defined]  # peewee's per-thread state
        queue: list[Queued] | None = getattr(state, "deferred", None)
        if queue is None:
            queue = state.deferred = []
        return queue

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        self.flush()
        return super().execute_sql(sql, params)  # type: ignore[misc]

    def begin(self, *args: Any, **kwargs: Any) -> None:
        self._queue().clear()
        self._announced("BEGIN", super().begin, *args, **kwargs)  # type: ignore[misc]

    def commit(self) -> None:
        self.flush()
        self._announced("COMMIT", super().commit)  # type: ignore[misc]

    def rollback(self) -> None:
        self._queue().clear()
        self._announced("ROLLBACK", super().rollback)  # type: ignore[misc]

    def _announced(self, sql: str, call: Any, *args: Any, **kwargs: Any) -> None:
        """Transaction control runs on the cursor, past the query hooks: tell them, so statement
        counts include the round trips of BEGIN and COMMIT."""
        hooks = self.query_hooks  # type: ignore[attr-defined]
        start = time.perf_counter()
        call(*args, **kwargs)
        if hooks:
            self._notify_hooks(sql, None, start, None)  # type: ignore[attr-defined]
