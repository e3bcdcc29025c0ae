"""The relay's own HTTP endpoint: /healthz (the loop is alive), /readyz (it can do its job), /metrics.

Two questions, two answers: a relay whose NATS or database is down still turns its loop and
retries, so restarting it helps nothing (/healthz stays 200), but it is not delivering, and
/readyz says so with the reason, as does `issues_relay_ready`.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
PUBLISHED = Counter("issues_relay_published", "Events published to JetStream and acked", registry=REGISTRY)
DUPLICATES = Counter(
    "issues_relay_duplicates", "Publishes JetStream acked as duplicates of a message it held (re-publishes)",
    registry=REGISTRY,
)  # fmt: skip
FAILED = Counter("issues_relay_publish_failures", "Publish attempts that failed (retried)", registry=REGISTRY)
LAG = Gauge("issues_relay_lag_seconds", "Age of the oldest undelivered event", registry=REGISTRY)
LEADER = Gauge("issues_relay_leader", "1 while this relay is the publisher, 0 on standby", registry=REGISTRY)
PRUNED = Counter("issues_relay_pruned", "Delivered events deleted after the retention", registry=REGISTRY)
READY = Gauge(
    "issues_relay_ready", "1 while the relay can do its job (publishing, or a standby), 0 while failing",
    registry=REGISTRY,
)  # fmt: skip
STALE_AFTER = 60.0  # seconds without a loop turn before /healthz says 503


class Heartbeat:
    """The loop's last turn, and what its last attempt found: its role, or what failed."""

    def __init__(self) -> None:
        self.last = time.monotonic()
        self.role = ""
        self.problem: str | None = "starting"

    def beat(self) -> None:
        self.last = time.monotonic()

    def healthy(self) -> bool:
        return time.monotonic() - self.last < STALE_AFTER

    def ready(self, *, role: str) -> None:
        """The last attempt worked: `role` is "publishing" (the leader) or "standby"."""
        self.role, self.problem = role, None
        READY.set(1)

    def failing(self, problem: str) -> None:
        self.problem = problem
        READY.set(0)

    def readiness(self) -> tuple[bool, str]:
        if not self.healthy():
            return False, "stalled"
        if self.problem is not None:
            return False, self.problem
        return True, self.role


def serve_health(address: str, heartbeat: Heartbeat) -> ThreadingHTTPServer:
    host, _, port = address.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok = heartbeat.healthy()
                self._send(200 if ok else 503, b"ok\n" if ok else b"stalled\n", "text/plain")
            elif self.path == "/readyz":
                ok, why = heartbeat.readiness()
                self._send(200 if ok else 503, f"{why}\n".encode(), "text/plain")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, code: int, payload: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:  # probes would drown the log
            return

    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    threading.Thread(target=server.serve_forever, name="relay-health", daemon=True).start()
    return server
