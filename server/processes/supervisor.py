"""`serve --processes N`: one supervisor, N forked workers sharing the port with SO_REUSEPORT.

The supervisor reserves the port (reservation.py), forks the workers before any grpc object
exists, announces once they all serve, and then only relays signals: SIGTERM/SIGINT drain every
worker (each runs the ordinary per-process shutdown of `serve`) and exit 0 when all drained;
SIGHUP is forwarded (token reload). A worker that dies unexpectedly is logged and replaced; more
than RESTART_BUDGET deaths within RESTART_WINDOW seconds is a crash loop: the supervisor drains
the rest and exits 1, so the process manager sees the failure instead of a flapping service.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import time
from collections import deque
from typing import TYPE_CHECKING

from server.processes.children import SignalPipe, describe, drained, reap
from server.processes.metrics import Exposition
from server.processes.reservation import Reservation, reserve
from server.processes.worker import Tracer, Worker, fork_worker
from server.transport.listen import LISTEN_FAILED, ListenError
from server.transport.shutdown import DRAIN_TIMEOUT

if TYPE_CHECKING:
    from server.transport.app import Config

log = logging.getLogger("issue_service.processes")
START_TIMEOUT = 120.0  # seconds for a worker to serve; a busy 2-core CI box can be slow to import
RESTART_BUDGET = 5
RESTART_WINDOW = 60.0
DRAIN_MARGIN = 5.0  # past a worker's own shutdown bounds, it is killed (and the exit is 1)


def supervise(config: Config, address: str, *, processes: int, tracer: Tracer | None = None) -> int:
    """Run N workers on `address` until SIGTERM/SIGINT; the exit status says whether all drained."""
    from server.telemetry.logs import configure_logging

    configure_logging()
    try:
        reservation = reserve(address)
    except ListenError as exc:
        log.error("%s", exc)
        return LISTEN_FAILED
    try:
        supervisor = Supervisor(config=config, reservation=reservation, signals=SignalPipe(), tracer=tracer)
        return supervisor.run(processes)
    finally:
        reservation.release()


class Supervisor:
    def __init__(self, *, config: Config, reservation: Reservation, signals: SignalPipe, tracer: Tracer | None) -> None:
        self.config = config
        self.tracer = tracer
        self.reservation = reservation
        self.signals = signals
        self.workers: dict[int, Worker] = {}
        self.deaths: deque[float] = deque()
        self.exposition: Exposition | None = None

    def run(self, processes: int) -> int:
        started = [self._fork(i) for i in range(processes)]
        if not all(self._wait_ready(w) for w in started) or not self._expose_metrics():
            return self._drain(failed=True)
        from server.transport.app import announce

        log.info("supervisor pid %d: %d workers on port %d", os.getpid(), processes, self.reservation.port)
        metrics_port = None if self.exposition is None else self.exposition.port
        announce(address=self.reservation.address, port=self.reservation.port,
                 metrics_address=self.config.metrics_address, metrics_port=metrics_port,
                 tracing=self.tracer is not None)  # fmt: skip
        try:
            return self._loop()
        finally:
            if self.exposition is not None:
                self.exposition.close()

    def _expose_metrics(self) -> bool:
        if self.config.metrics_port is None:
            return True
        try:
            self.exposition = Exposition(address=self.config.metrics_address, port=self.config.metrics_port,
                                         endpoints=self._metrics_endpoints)  # fmt: skip
        except OSError as exc:
            log.error("cannot serve metrics on %s:%d: %s", self.config.metrics_address, self.config.metrics_port, exc)
            return False
        return True

    def _metrics_endpoints(self) -> list[tuple[int, int]]:
        return [(w.index, w.metrics_port) for w in self.workers.values() if w.metrics_port is not None]

    def _loop(self) -> int:
        exposition = () if self.exposition is None else (self.exposition.fileno(),)
        while True:
            signals, scraped = self.signals.wait(also=exposition)
            if scraped and self.exposition is not None:
                self.exposition.handle()
            for signum in signals:
                if signum in (signal.SIGTERM, signal.SIGINT):
                    log.info("signal %d: draining %d workers", signum, len(self.workers))
                    return self._drain()
                if signum == signal.SIGHUP:
                    self._send(signal.SIGHUP)
                if signum == signal.SIGCHLD and not self._replace_dead():
                    return self._drain(failed=True)

    def _fork(self, index: int) -> Worker:
        inherited = [*self.reservation.fds(), self.signals.read_fd, self.signals.write_fd]
        if self.exposition is not None:
            inherited.append(self.exposition.fileno())
        inherited += [w.ready_fd for w in self.workers.values() if w.ready_fd >= 0]
        address = self.reservation.address
        worker = fork_worker(index=index, config=self.config, address=address, inherited=inherited, tracer=self.tracer)
        self.workers[worker.pid] = worker
        return worker

    def _wait_ready(self, worker: Worker) -> bool:
        """Read the worker's one-line report; EOF or silence means it failed to start."""
        data, deadline = b"", time.monotonic() + START_TIMEOUT
        while not data.endswith(b"\n") and (left := deadline - time.monotonic()) > 0:
            if not select.select([worker.ready_fd], [], [], left)[0]:
                break
            chunk = os.read(worker.ready_fd, 4096)
            if not chunk:
                break
            data += chunk
        os.close(worker.ready_fd)
        worker.ready_fd = -1
        if not data.endswith(b"\n"):
            log.error("worker %d (pid %d) did not start; see its log lines above", worker.index, worker.pid)
            return False
        worker.metrics_port = json.loads(data)["metrics_port"]
        return True

    def _replace_dead(self) -> bool:
        """Reap dead workers and fork their replacements; False when it is a crash loop."""
        while (dead := reap()) is not None:
            pid, status = dead
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            log.warning("worker %d (pid %d) died unexpectedly: %s", worker.index, pid, describe(status))
            if not self._within_budget():
                log.error("%d worker deaths within %.0fs: giving up", len(self.deaths), RESTART_WINDOW)
                return False
            if not self._wait_ready(self._fork(worker.index)):
                return False
        return True

    def _within_budget(self) -> bool:
        now = time.monotonic()
        self.deaths.append(now)
        while self.deaths and self.deaths[0] < now - RESTART_WINDOW:
            self.deaths.popleft()
        return len(self.deaths) <= RESTART_BUDGET

    def _send(self, signum: int) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):  # already gone; reaped later
                os.kill(pid, signum)

    def _drain(self, *, failed: bool = False) -> int:
        """SIGTERM every worker, wait for each to finish its own drain; kill what outlives it."""
        self._send(signal.SIGTERM)
        # A worker's shutdown takes at most pre-stop delay + grace + DRAIN_TIMEOUT (shutdown.py).
        bound = self.config.pre_stop_delay + self.config.grace_seconds + DRAIN_TIMEOUT + DRAIN_MARGIN
        deadline = time.monotonic() + bound
        clean = True
        while self.workers and (left := deadline - time.monotonic()) > 0:
            signals, _ = self.signals.wait(min(left, 0.5))
            if signal.SIGTERM in signals or signal.SIGINT in signals:
                self._send(signal.SIGTERM)  # a second signal: workers skip the rest of the pre-stop delay
            while (dead := reap()) is not None:
                pid, status = dead
                if self.workers.pop(pid, None) is not None and not drained(status):
                    log.error("worker (pid %d) ended badly while draining: %s", pid, describe(status))
                    clean = False
        for pid in self.workers:
            log.error("worker (pid %d) still running past its shutdown bounds: killed", pid)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        clean = clean and not self.workers
        self.workers.clear()
        log.info("all workers stopped" if clean and not failed else "workers stopped; exiting 1")
        return 0 if clean and not failed else 1
