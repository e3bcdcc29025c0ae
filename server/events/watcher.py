"""One consumer of the feed: a bounded queue while live, the database while catching up."""

from __future__ import annotations

import threading
from collections import deque

from server.events.records import EventFilter, EventRecord


class Watcher:
    """State shared by the feed thread (which pushes) and the RPC thread (which takes).

    Live: the feed pushes matching events into a queue of at most `capacity`. When the queue is
    full the feed drops it and switches the watcher to catch-up, where the RPC thread re-reads
    the database from its own cursor: a slow consumer costs a cursor, never unbounded memory.
    """

    def __init__(self, *, where: EventFilter, cursor: int, capacity: int) -> None:
        self.where = where
        self.cursor = cursor  # every matching event up to here has been handed out
        self.capacity = capacity
        self.live = False
        self.closed = False
        self.overflows = 0
        self._queue: deque[EventRecord] = deque()
        self._cond = threading.Condition()

    def push(self, records: list[EventRecord]) -> None:
        """Called by the feed, under the feed lock, for every batch it reads."""
        with self._cond:
            if not self.live or self.closed:
                return
            matching = [r for r in records if r.seq > self.cursor and self.where.matches(r)]
            if len(self._queue) + len(matching) > self.capacity:
                self.live, self.overflows = False, self.overflows + 1
                self._queue.clear()  # re-read from the cursor instead of buffering
            else:
                self._queue.extend(matching)
            self._cond.notify_all()

    def refilter(self, where: EventFilter) -> None:
        """Access read again: from now on only `where` matches, queued events included."""
        with self._cond:
            if where != self.where:
                self.where = where
                self._queue = deque(r for r in self._queue if where.matches(r))

    def go_live(self, *, feed_head: int) -> bool:
        """Called under the feed lock: live once the cursor has reached what the feed pushed."""
        with self._cond:
            if self.cursor >= feed_head:
                self.live = True
            return self.live

    def take(self, *, timeout: float, limit: int = 1) -> list[EventRecord]:
        """Up to `limit` queued events in order; empty on timeout, close, or a switch to catch-up."""
        taken: list[EventRecord] = []
        with self._cond:
            if not self._queue and self.live and not self.closed:
                self._cond.wait(timeout)
            while self._queue and self.live and len(taken) < limit:
                record = self._queue.popleft()
                if record.seq > self.cursor:
                    self.cursor = record.seq
                    taken.append(record)
        return taken

    def idle_position(self, *, feed_head: int) -> int:
        """Where a resume may start: past feed_head when live with nothing queued."""
        with self._cond:
            if self.live and not self._queue:
                return max(self.cursor, feed_head)
            return self.cursor

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
