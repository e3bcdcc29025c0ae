"""One event feed per server process: wake on NOTIFY (or poll), stamp, read once, fan out."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from server.core.errors import ResourceExhausted
from server.events import store
from server.events.listener import Wakeups
from server.events.watcher import Watcher
from server.storage import liveness, outbox_signal

log = logging.getLogger("issue_service.events")
READ_PAGE = 1000
# The feed rests this long after each tick, so a stream of commits costs at most ~50 ticks a
# second per process instead of one per commit: wake-ups that arrive meanwhile stay pending and
# the next tick serves them all. Measured on 2026-11-30 (PostgreSQL, UpdateGroup resolve toggles,
# one process): a tick per commit cost ~1 ms of server CPU per update (3.0 vs 2.1 ms with the
# feed stopped). It adds at most this much to an event's commit-to-watch delay.
TICK_GAP = 0.02
PRUNE_EVERY = 60.0  # seconds between a feed's prunings (serve --events-retention)


class EventFeed:
    """A background thread that stamps new outbox rows and hands them to this process's watchers.

    Every watcher of the process shares the one read per wake-up; a watcher behind the feed (new,
    resuming, or overflowed) reads the database itself until it catches up (server/events/watch.py).
    """

    def __init__(
        self, *, wakeups: Wakeups, queue_size: int = 1000, max_watchers: int = 16, tick_gap: float = TICK_GAP,
        retention: dt.timedelta | None = None,
    ) -> None:  # fmt: skip
        self.wakeups = wakeups
        self.tick_gap = tick_gap
        self.retention = retention  # None: events are kept until a relay prunes them
        self._pruned_at = 0.0
        self.queue_size = queue_size
        self.max_watchers = max_watchers
        self.head = 0  # every event up to here was pushed to the live watchers
        self.overflows = 0  # watchers switched to catch-up because their queue was full
        # The last tick stamped rows: under a stream of commits the next finds work too, so it
        # skips the probe that spares an idle tick its write transaction (one round trip, not two).
        self._busy = False
        self.lock = threading.Lock()
        self._watchers: set[Watcher] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-feed", daemon=True)

    def start(self) -> None:
        self.head = store.head()
        outbox_signal.subscribe(self.wakeups.poke)
        self._thread.start()

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the thread and close the watchers. If the thread is still inside a tick after
        `timeout`, its database connection is still in use: see `running`."""
        outbox_signal.unsubscribe(self.wakeups.poke)
        self._stop.set()
        self.wakeups.close()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)
        with self.lock:
            for watcher in self._watchers:
                watcher.close()
        if self.running:
            log.error("event feed still reading the outbox %.0fs after stop", timeout)

    @property
    def running(self) -> bool:
        """The feed's thread is alive (and may hold a database connection)."""
        return self._thread.is_alive()

    def _skip_read_without_watchers(self, *, stamped: int) -> bool:
        """With nobody watching, move head to the stamped head instead of reading every event.

        Safe against a watcher arriving meanwhile: `stamped` was read before, and head is moved
        only under the lock while there is still no watcher. A watcher that registers later
        catches up from the database through at least that head before it goes live
        (server/events/watch.py).
        """
        if self._watchers:
            return False
        with self.lock:
            if self._watchers:
                return False
            self.head = max(self.head, stamped)
            return True

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)

    @contextmanager
    def watching(self, watcher: Watcher) -> Iterator[Watcher]:
        with self.lock:
            if len(self._watchers) >= self.max_watchers:
                raise ResourceExhausted(
                    f"Too many event watchers on this server (at most {self.max_watchers}); retry later",
                    reason="TOO_MANY_WATCHERS",
                )
            self._watchers.add(watcher)
        try:
            yield watcher
        finally:
            with self.lock:
                self._watchers.discard(watcher)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.wakeups.wait()
            if self._stop.is_set():
                return
            if not liveness.is_reachable():
                continue  # the health prober makes an outage's connection attempts, not the feed
            try:
                self.tick()
                self.prune_if_due()
            except Exception:  # the database is down or busy: the next wake-up tries again
                log.warning("event feed could not read the outbox", exc_info=True)
                self._stop.wait(1.0)
            self._stop.wait(self.tick_gap)

    def prune_if_due(self) -> int:
        """Without a relay nothing else prunes the outbox: with a retention, every stamped event
        older than it goes, delivered or not, once per PRUNE_EVERY. Returns how many went."""
        if self.retention is None or time.monotonic() - self._pruned_at < PRUNE_EVERY:
            return 0
        self._pruned_at = time.monotonic()
        pruned = store.prune(older_than=self.retention, delivered_only=False)
        if pruned:
            log.info("pruned %d events older than the retention (%s)", pruned, self.retention)
        return pruned

    def tick(self) -> None:
        """Stamp what committed, then push every event after head to the live watchers.

        Each batch and page checks for stop, so a large backlog never holds up a shutdown.
        """
        run = store.stamp_batch(probe=not self._busy)
        while run.count == store.STAMP_BATCH and not self._stop.is_set():
            run = store.stamp_batch(probe=False)
        self._busy = run.count > 0
        if self._skip_read_without_watchers(stamped=run.head):
            return
        while not self._stop.is_set():
            records = store.read_after(self.head, limit=READ_PAGE)
            if not records:
                return
            with self.lock:
                for watcher in self._watchers:
                    was_live = watcher.live
                    watcher.push(records)
                    self.overflows += was_live and not watcher.live
                self.head = records[-1].seq
            if len(records) < READ_PAGE:
                return
