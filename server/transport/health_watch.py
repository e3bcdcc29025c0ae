"""Health follows the database: a probe thread flips SERVING/NOT_SERVING, and so does any call
that found the database unreachable, so load balancers stop sending work a server cannot do."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

from grpc_health.v1 import health, health_pb2

from server.storage.models import db

log = logging.getLogger("issue_service.health")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def probe_database() -> bool:
    """SELECT 1 on a pooled connection; the pool discards connections that died meanwhile."""
    try:
        with db.connection_context():
            db.execute_sql("SELECT 1")
    except Exception as exc:  # any failure means "not serving"; the reason goes to the log
        log.warning("database probe failed: %s", exc)
        _drop_idle_connections()
        return False
    return True


def _drop_idle_connections() -> None:
    close_idle = getattr(db.obj, "close_idle", None)
    if close_idle is not None:
        try:
            close_idle()
        except Exception:  # best effort: the pool re-checks every connection on checkout
            log.debug("closing idle connections failed", exc_info=True)


class HealthWatch:
    """Background thread probing every `interval` seconds; `report_unavailable` re-probes now."""

    def __init__(
        self,
        *,
        servicer: health.HealthServicer,
        services: Iterable[str],
        interval: float = 5.0,
        probe: Callable[[], bool] = probe_database,
    ) -> None:
        self._servicer = servicer
        self._services = tuple(services)
        self._interval = interval
        self._probe = probe
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-watch", daemon=True)
        self.serving: bool | None = None

    def start(self) -> None:
        self.check_now()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def check_now(self) -> bool:
        ok = self._probe()
        self._set(serving=ok)
        return ok

    def report_unavailable(self) -> None:
        """A call could not reach the database: stop advertising SERVING until a probe passes."""
        self._set(serving=False)
        self._wake.set()

    def _set(self, *, serving: bool) -> None:
        if serving != self.serving:
            level = logging.INFO if serving else logging.WARNING
            log.log(level, "health: %s", "SERVING" if serving else "NOT_SERVING (no database)")
        self.serving = serving
        for name in self._services:
            self._servicer.set(name, SERVING if serving else NOT_SERVING)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if not self._stop.is_set():
                self.check_now()
