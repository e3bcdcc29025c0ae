"""The per-process shutdown, in the order a load balancer needs:

SIGTERM -> health NOT_SERVING while calls are still answered for the pre-stop delay (so probes
see it and traffic moves away) -> stop accepting -> in-flight calls drain within the grace period
-> what is left is cancelled (handlers see context.is_active() false and roll back) -> wait
until every handler thread has returned -> only then close the database pool -> exit 0.

Closing the pool while a handler still runs on a connection crashed SQLite (SIGSEGV), so the
pool is never closed before the executor is empty. A supervisor calls `run_until_signalled` in
each worker process; `serve()` does the same for a single process (installing the handlers
before it prints its banner).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from concurrent import futures
from typing import Any, Protocol

log = logging.getLogger("issue_service")
# After cancellation a handler returns at its next liveness check (one chunk, one statement);
# one that has not returned by then is stuck in the driver, and the process leaves without it.
DRAIN_TIMEOUT = 30.0


class Stoppable(Protocol):
    """What shutdown needs of a running server (server.transport.app.Running)."""

    executor: futures.ThreadPoolExecutor

    @property
    def feed_stopped(self) -> bool:
        """The event feed's thread ended (while it reads, it holds a database connection)."""

    def enter_not_serving(self) -> None: ...

    def stop_accepting(self, grace: float) -> None: ...

    def stop_background(self) -> None: ...


def signal_events() -> tuple[threading.Event, threading.Event]:
    """(stop, hurry): the first SIGTERM/SIGINT sets stop; a second one sets hurry too, which
    skips what is left of the pre-stop delay (an impatient Ctrl-C)."""
    signals = Signals(stop=threading.Event(), hurry=threading.Event())
    signal.signal(signal.SIGTERM, signals.handle)
    signal.signal(signal.SIGINT, signals.handle)
    return signals.stop, signals.hurry


class Signals:
    """A handler that a second signal may interrupt anywhere, even inside its own Event.set().

    Python runs a handler in the main thread between two bytecodes, so a signal arriving while
    the handler holds an Event's lock (inside set(), notifying) runs the handler again there; a
    nested set() of the same Event then waits for a lock its own thread holds, forever. A
    signal to the whole process group (Ctrl-C, systemd) reaches a worker together with the one
    its supervisor relays: 2 of 25 such stops hung (fault injection, 2026-12-01). A nested call
    only counts; the outer one sets what the count asks for once it is out of the locks.
    """

    def __init__(self, *, stop: threading.Event, hurry: threading.Event) -> None:
        self.stop, self.hurry = stop, hurry
        self.received: list[int] = []  # appended in one step: a nested handler cannot lose one
        self._handling = False

    def handle(self, signum: int, _frame: Any) -> None:
        self.received.append(signum)
        if self._handling:
            return  # inside the handler already: it sees the count when it gets here
        self._handling = True
        try:
            done = 0
            while done != len(self.received):
                done = len(self.received)
                self.stop.set()
                if done > 1:
                    self.hurry.set()
        finally:
            self._handling = False
        log.info("signal %d: shutting down", signum)


# The main thread waits in slices this long: see wait_in_main.
SIGNAL_POLL = 0.2


def wait_in_main(event: threading.Event, timeout: float | None = None) -> bool:
    """`event.wait(timeout)` for the main thread, woken every SIGNAL_POLL seconds.

    The kernel hands a signal sent to the process to any thread that does not block it (another
    one whenever the main thread has one pending already); Python's handler then runs in the
    main thread at its next bytecode, and a main thread blocked in a plain wait() never gets
    there: a worker ignored its supervisor's SIGTERM for the whole minute of a test (2026-12-02).
    Waking up in slices runs such a handler within SIGNAL_POLL seconds."""
    end = None if timeout is None else time.monotonic() + timeout
    while True:
        left = SIGNAL_POLL if end is None else min(SIGNAL_POLL, end - time.monotonic())
        if left <= 0:
            return event.is_set()
        if event.wait(left):
            return True


def drain(executor: futures.ThreadPoolExecutor, *, timeout: float) -> bool:
    """Wait until every handler thread has returned; False if some are still running at timeout."""
    waiter = threading.Thread(target=executor.shutdown, kwargs={"wait": True}, name="drain", daemon=True)
    waiter.start()
    waiter.join(timeout)
    return not waiter.is_alive()


def shutdown(running: Stoppable, *, pre_stop_delay: float, grace: float, hurry: threading.Event | None = None,
             drain_timeout: float = DRAIN_TIMEOUT) -> bool:  # fmt: skip
    """The whole sequence; True when every handler returned and the pool was closed."""
    started = time.monotonic()
    running.enter_not_serving()
    if pre_stop_delay > 0:
        log.info("health NOT_SERVING; still answering for %.1fs before draining", pre_stop_delay)
        wait_in_main(hurry or threading.Event(), pre_stop_delay)
    running.stop_accepting(grace)
    drained = drain(running.executor, timeout=drain_timeout)
    running.stop_background()
    if not drained:
        log.error("handlers still running %.0fs after cancellation; leaving the pool open", drain_timeout)
        return False
    if not running.feed_stopped:
        log.error("the event feed is still on the database; leaving the pool open")
        return False
    _close_pool()
    log.info("stopped in %.2fs", time.monotonic() - started)
    return True


def _close_pool() -> None:
    from server.storage.models import db

    close_all = getattr(db.obj, "close_all", None)
    if close_all is not None:
        close_all()


def shutdown_in_order(running: Stoppable, *, pre_stop_delay: float, grace: float,
                      hurry: threading.Event | None = None) -> int:  # fmt: skip
    """shutdown(), then the exit code (always 0). If a handler is stuck in the driver, the
    interpreter would wait for its thread forever at exit, and closing its connection under it
    is what crashed: leave at once; the database rolls back the abandoned transaction when the
    connection drops."""
    if not shutdown(running, pre_stop_delay=pre_stop_delay, grace=grace, hurry=hurry):
        logging.shutdown()
        os._exit(0)
    return 0


def run_until_signalled(running: Stoppable, *, pre_stop_delay: float, grace: float) -> int:
    """For a worker process: block until SIGTERM/SIGINT, shut down in order, return 0."""
    stop, hurry = signal_events()
    wait_in_main(stop)
    return shutdown_in_order(running, pre_stop_delay=pre_stop_delay, grace=grace, hurry=hurry)
