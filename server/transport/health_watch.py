"""Health follows the database: ONE prober thread decides SERVING / NOT_SERVING.

Healthy, it probes every `interval` seconds, each probe bounded by its own timeout; a failure is
confirmed by a second probe at once (a single slow answer is not an outage), so a database that
goes silent is NOT_SERVING within interval + 2 x timeout + 0.1 s (2.6 s with the defaults: the
confirming probe runs on the probe's spare connection, server/storage/probe.py). Down, it probes again after
a short backoff (doubling up to `max_backoff`), so an outage costs a couple of connection
attempts a second whatever the traffic, and health is SERVING again on the first good probe.
A call that found the database unreachable flips health at once and wakes the prober, but
only while health still says SERVING: during an outage calls never re-probe.
The verdict also drives the breaker (server/storage/liveness.py) that refuses calls at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from grpc_health.v1 import health, health_pb2

from server.storage.probe import Probe

log = logging.getLogger("issue_service.health")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
FIRST_BACKOFF = 0.1


class HealthWatch:
    """The prober thread; `report_unavailable` is how a failing call tells it."""

    def __init__(  # noqa: PLR0913 - keyword-only settings of one thread
        self, *, servicer: health.HealthServicer, services: Iterable[str], interval: float = 0.5,
        probe: Callable[[], bool] | None = None, timeout: float = 1.0, max_backoff: float = 0.5,
        breaker: Callable[[bool], None] | None = None,
    ) -> None:  # fmt: skip
        self._servicer = servicer
        self._services = tuple(services)
        self._interval = interval
        self._max_backoff = max_backoff
        self._own_probe = Probe(timeout=timeout) if probe is None else None
        self._probe = probe or self._own_probe.check  # type: ignore[union-attr]
        self._breaker = breaker
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-watch", daemon=True)
        self.serving: bool | None = None
        self._verdict: bool | None = None  # the last probe's result
        self._reported = False  # a call found the database unreachable since the last probe
        self.probes = 0  # probes run so far (tests and logs read it)

    def start(self) -> None:
        self.check_now()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._own_probe is not None:
            self._own_probe.close()
        if self._breaker is not None:
            self._breaker(True)  # no prober, no breaker: calls decide for themselves again

    def check_now(self) -> bool:
        self.probes += 1
        ok = self._probe()
        self._set(serving=ok)
        return ok

    def _check_confirmed(self) -> bool:
        """As check_now, but a failure after good probes is confirmed by a second probe at once
        (or by a call's report): one slow answer on a loaded machine must not refuse every call."""
        self.probes += 1
        ok = self._probe()
        if not ok and self._verdict and not self._reported:  # a call's report is the confirmation
            time.sleep(FIRST_BACKOFF)
            self.probes += 1
            ok = self._probe()
        self._reported = False
        self._set(serving=ok)
        return ok

    def report_unavailable(self) -> None:
        """A call could not reach the database: NOT_SERVING now, and the prober checks at once."""
        if self.serving:
            self._reported = True
            self._set(serving=False, source="a call")
            self._wake.set()

    def _set(self, *, serving: bool, source: str = "probe") -> None:
        if serving != self.serving:
            self._log_change(serving, source)
        if source == "probe" and (serving != self._verdict or not serving):
            # Only a probe opens or closes the breaker, never one call; told after every failed
            # probe too, so that what waits on the silent database can be cut (liveness.py).
            self._verdict = serving
            if self._breaker is not None:
                self._breaker(serving)
        self.serving = serving
        for name in self._services:
            self._servicer.set(name, SERVING if serving else NOT_SERVING)

    def _log_change(self, serving: bool, source: str) -> None:
        if serving:
            log.info("health: SERVING")
            return
        reason = self._own_probe.last_error if self._own_probe is not None and source == "probe" else ""
        log.warning("health: NOT_SERVING (database unreachable, found by %s%s)", source, f": {reason}" * bool(reason))

    def _run(self) -> None:
        backoff = FIRST_BACKOFF
        while not self._stop.is_set():
            healthy = bool(self.serving)
            self._wake.wait(self._interval if healthy else backoff)
            self._wake.clear()
            if self._stop.is_set():
                return
            ok = self._check_confirmed()
            backoff = FIRST_BACKOFF if ok else min(backoff * 2, self._max_backoff)
