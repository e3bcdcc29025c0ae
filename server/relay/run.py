"""The relay loop: lead or stand by; stamp, publish a batch in seq order, mark it, prune."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from server.relay import health, outbox
from server.relay.lease import Lease
from server.relay.nats_out import Publisher, Target
from server.storage import liveness

T = TypeVar("T")
log = logging.getLogger("issue_service.relay")
# A database call may take this long before the relay gives up on it (pruning a large backlog:
# PRUNE_SECONDS). A database that goes silent (the kernel acknowledges, nothing answers) held a
# leading relay with no bound, /readyz said "publishing" and SIGTERM waited for the database
# (fault injection, 2026-12-02); now the call's connection is cut and the turn fails.
DB_SECONDS = 10.0
PRUNE_SECONDS = 60.0
PAUSE_BEFORE_MARK_ENV = "ISSUES_RELAY_TEST_PAUSE_BEFORE_MARK"  # tests: widen the crash window


@dataclass(frozen=True)
class RelayConfig:
    target: Target
    batch_size: int = 500
    poll_interval: float = 0.2
    retention: dt.timedelta = dt.timedelta(days=7)
    max_backoff: float = 30.0
    prune_every: float = 60.0


class Relay:
    def __init__(self, config: RelayConfig, *, lease: Lease, heartbeat: health.Heartbeat) -> None:
        self.config = config
        self.lease = lease
        self.heartbeat = heartbeat
        self.publisher = Publisher(config.target)
        self.stopping = asyncio.Event()
        self._backoff = 0.0
        self._pruned_at = 0.0

    async def run(self) -> int:
        """Until SIGTERM/SIGINT: the current batch finishes, then exit 0."""
        while not self.stopping.is_set():
            self.heartbeat.beat()
            leader = await self._lead()
            published = await self._turn() if leader else 0
            if published < self.config.batch_size:
                await self._sleep(self._backoff or self.config.poll_interval)
        await self.publisher.close()
        await asyncio.to_thread(self.lease.release)
        return 0

    async def _lead(self) -> bool:
        """Whether this relay publishes now. A standby is ready; one that cannot reach the
        database to ask is not (it would not take over if the publisher died)."""
        problem: str | None = None
        try:
            leader = await asyncio.to_thread(self.lease.acquire)
        except Exception as exc:  # the database is down (SQLite's lease raises; PostgreSQL's tells)
            leader, problem = False, f"database: {exc.__class__.__name__}: {exc}"
        else:
            if self.lease.problem is not None:
                problem = f"database: {self.lease.problem}"
        health.LEADER.set(1 if leader else 0)
        if problem is not None:
            self.heartbeat.failing(problem)
            self._backoff = self._next_backoff()
        elif not leader:
            self.heartbeat.ready(role="standby")
            self._backoff = 0.0
        return leader

    def _next_backoff(self) -> float:
        return min(self.config.max_backoff, max(0.1, self._backoff * 2))

    async def _turn(self) -> int:
        try:
            # Connected before looking for events, so a NATS that is down is found (and /readyz
            # says so) while there is nothing to publish, not when the next event is due.
            if not self.publisher.connected:
                await self.publisher.connect()
            published = await self._batch()
            self._backoff = 0.0
        except Exception as exc:  # NATS or the database is down: retry with capped backoff
            health.FAILED.inc()
            self.heartbeat.failing(f"publishing: {exc.__class__.__name__}: {exc}")
            self._backoff = self._next_backoff()
            log.warning("relay batch failed (%s: %s); retrying in %.1fs", exc.__class__.__name__, exc, self._backoff)
            await self.publisher.close()
            return 0
        self.heartbeat.ready(role="publishing")
        if time.monotonic() - self._pruned_at > self.config.prune_every:
            self._pruned_at = time.monotonic()
            await self._prune()
        return published

    async def _prune(self) -> None:
        try:
            pruned = await bounded_call(lambda: outbox.prune(retention=self.config.retention), seconds=PRUNE_SECONDS)
            health.PRUNED.inc(pruned)
        except Exception as exc:  # the database went away since the batch: the next turn finds it
            self.heartbeat.failing(f"pruning: {exc.__class__.__name__}: {exc}")
            log.warning("relay prune failed (%s: %s); trying again in %.0fs", exc.__class__.__name__, exc,
                        self.config.prune_every)  # fmt: skip

    async def _batch(self) -> int:
        records = await bounded_call(lambda: outbox.undelivered(limit=self.config.batch_size))
        health.LAG.set(await bounded_call(outbox.oldest_undelivered_age))
        done: list[int] = []
        try:
            for record in records:  # one at a time, in seq order: order per issue is kept
                if not await self.publisher.publish(record):
                    health.DUPLICATES.inc()
                    log.info("event %d was already in the stream (published before a restart)", record.seq)
                done.append(record.seq)
                health.PUBLISHED.inc()
            pause = float(os.environ.get(PAUSE_BEFORE_MARK_ENV) or 0)
            if pause and done:
                await asyncio.sleep(pause)
        finally:  # what was acked is marked even when a later publish failed
            await bounded_call(lambda: outbox.mark_delivered(done))
        return len(records)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)


async def bounded_call(call: Callable[[], T], *, seconds: float = DB_SECONDS) -> T:
    """`call` (database work through the pool) in a thread, for at most `seconds`: past them its
    connection is cut (liveness: the socket shut down, a COMMIT included), so the thread fails at
    once instead of waiting for the database, and this raises TimeoutError."""
    task = asyncio.ensure_future(asyncio.to_thread(call))
    try:
        return await asyncio.wait_for(asyncio.shield(task), timeout=seconds)
    except TimeoutError:
        liveness.abort_in_flight()
        liveness.abort_commits(older_than=0)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=seconds)
        raise TimeoutError(f"the database did not answer within {seconds:.0f}s") from None


def run_relay(config: RelayConfig, *, lease: Lease, health_address: str) -> int:
    # A SIGTERM that arrives while the relay is still starting (before the event loop's handlers
    # exist) must stop it the same clean way, not kill it with -15.
    early_stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: early_stop.set())
    heartbeat = health.Heartbeat()
    server = health.serve_health(health_address, heartbeat)
    host, port = server.server_address[:2]
    print(f"relay health on http://{host!s}:{port}/healthz", flush=True)

    async def main() -> int:
        relay = Relay(config, lease=lease, heartbeat=heartbeat)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, relay.stopping.set)
        if early_stop.is_set():
            relay.stopping.set()
        return await relay.run()

    try:
        return asyncio.run(main())
    finally:
        server.shutdown()
