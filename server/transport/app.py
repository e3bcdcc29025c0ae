"""create_server: the IssueService with health, reflection and auth on one grpc.server."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import signal
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from issues.v1 import issue_service_pb2, issue_service_pb2_grpc

from server.core import settings
from server.events.feed import EventFeed
from server.events.listener import wakeups_for
from server.storage import liveness
from server.storage.db import database_url, make_database
from server.telemetry.logs import configure_logging
from server.telemetry.metrics import observe_watchers, start_metrics_server
from server.telemetry.sql import enable_query_counting, enable_statement_spans
from server.transport import errors
from server.transport.auth import AuthInterceptor, TokenStore
from server.transport.health_watch import HealthWatch
from server.transport.listen import LISTEN_FAILED, ListenError
from server.transport.observability import ObservabilityInterceptor
from server.transport.public import HealthServicer
from server.transport.servicer import IssueServicer
from server.transport.shutdown import DRAIN_TIMEOUT, drain, shutdown_in_order, signal_events, wait_in_main

log = logging.getLogger("issue_service")
SERVICE_NAME = issue_service_pb2.DESCRIPTOR.services_by_name["IssueService"].full_name
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
RESERVE_THREADS = 4


@dataclass(frozen=True)
class Config:
    database_url: str | None = None
    tokens_path: str | None = None
    workers: int = 8
    max_concurrent_rpcs: int | None = None  # default: 4 x workers + max_watchers; past it RESOURCE_EXHAUSTED
    grace_seconds: float = 10.0
    # SIGTERM: health says NOT_SERVING but calls are still answered this long, so load balancer
    # probes notice before the listener closes (set it to their probe period).
    pre_stop_delay: float = 0.0
    metrics_port: int | None = None  # Prometheus /metrics on this port (0: a free one); None: off
    metrics_address: str = "127.0.0.1"
    count_queries: bool = False  # log SQL statements per RPC (ISSUES_COUNT_QUERIES=1)
    health_interval: float = 0.5  # seconds between database probes while healthy
    health_timeout: float = 1.0  # a probe not answered by then counts as a failure
    tls_cert: str | None = None  # PEM files; with tls_client_ca, clients must present a cert
    tls_key: str | None = None
    tls_client_ca: str | None = None
    tracer_provider: Any = None  # an OpenTelemetry TracerProvider: a span per RPC and per statement
    # Server options and feature flags (--settings / ISSUES_SETTINGS); None keeps the current ones.
    settings: settings.Settings | None = None
    # SO_REUSEPORT: only workers of one supervisor share a port; a lone server binds exclusively,
    # so a second server on a busy port fails instead of silently splitting the traffic.
    reuse_port: bool = False
    events_database_url: str | None = None  # LISTEN connection; default: database_url
    events_poll_interval: float = 0.25  # seconds between outbox polls (PostgreSQL: safety net)
    events_heartbeat: float = 15.0  # seconds of silence before a WatchIssueEvents heartbeat
    events_access_recheck: float = 30.0  # seconds between a stream's reads of the caller's access
    events_queue_size: int = 1000  # events buffered per live watcher before it reads the database
    events_retention: float | None = None  # seconds; prune events older than this (no relay); None: keep
    max_watchers: int = 16  # concurrent WatchIssueEvents streams; they get their own threads
    # A supervised worker: its supervisor's pid. A worker whose supervisor is gone skips the
    # pre-stop delay when it is told to stop (server/processes/worker.py).
    supervisor_pid: int | None = None


@dataclass
class Running:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    tokens: TokenStore
    metrics: Any = None  # the /metrics HTTP server, when enabled
    metrics_port: int | None = None
    watch: HealthWatch | None = None
    feed: EventFeed | None = None
    executor: futures.ThreadPoolExecutor = field(default_factory=futures.ThreadPoolExecutor)
    previous_gate: int | None = None  # restored on stop: in tests, other servers share the process

    def stop(self, grace: float | None = None) -> None:
        """Stop in order (see server/transport/shutdown.py), without the pre-stop delay."""
        self.enter_not_serving()
        self.stop_accepting(grace)
        drain(self.executor, timeout=DRAIN_TIMEOUT)
        self.stop_background()

    def enter_not_serving(self) -> None:
        self.health.enter_graceful_shutdown()  # every service NOT_SERVING, and it stays so

    def stop_accepting(self, grace: float | None) -> None:
        """New calls are refused; in-flight ones get `grace` seconds, then are cancelled."""
        if self.feed is not None:
            self.feed.stop()  # ends the watch streams first, so the drain does not wait on them
        self.server.stop(grace).wait()

    @property
    def feed_stopped(self) -> bool:
        """No event feed thread left that could hold a database connection."""
        return self.feed is None or not self.feed.running

    def stop_background(self) -> None:
        if self.watch is not None:
            self.watch.stop()
            errors.forget_unavailable_listener(self.watch.report_unavailable)
        if self.metrics is not None:
            self.metrics.shutdown()
            self.metrics.server_close()
        if self.previous_gate is not None:
            liveness.configure(max_calls=self.previous_gate)


def create_server(config: Config, address: str = "127.0.0.1:0", *, tokens: TokenStore | None = None) -> Running:
    """Build and start the server on `address` (port 0 picks a free port)."""
    make_database(config.database_url, workers=config.workers)
    if config.settings is not None:
        settings.configure(config.settings)
    if config.count_queries:
        enable_query_counting()
    store = tokens or TokenStore(config.tokens_path)
    # `workers` calls may be on the database at once (the gate); the extra threads keep health
    # checks and refusals answered while those are stuck on a database that went silent.
    previous_gate = liveness.configure(max_calls=config.workers)
    feed = _event_feed(config)
    # A watch stream holds its thread for its whole life: watchers get threads of their own so
    # they never starve the update RPCs.
    threads = config.workers + RESERVE_THREADS + config.max_watchers
    executor = futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rpc")
    server = grpc.server(
        executor,
        interceptors=_interceptors(config, store),
        maximum_concurrent_rpcs=config.max_concurrent_rpcs or 4 * config.workers + config.max_watchers,
        options=_options(reuse_port=config.reuse_port),
    )
    servicer = IssueServicer(feed=feed, heartbeat=config.events_heartbeat, access_recheck=config.events_access_recheck)
    issue_service_pb2_grpc.add_IssueServiceServicer_to_server(servicer, server)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    port = _add_port(server, address, config)
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    watch = HealthWatch(
        servicer=health_servicer, services=("", SERVICE_NAME), interval=config.health_interval,
        timeout=config.health_timeout, breaker=liveness.set_reachable,
    )  # fmt: skip
    errors.on_unavailable(watch.report_unavailable)
    watch.start()
    running = Running(server, port, health_servicer, store, watch=watch, executor=executor,
                      previous_gate=previous_gate, feed=feed)  # fmt: skip
    feed.start()
    observe_watchers(lambda: feed.watcher_count)
    if config.metrics_port is not None:
        running.metrics = start_metrics_server(config.metrics_port, config.metrics_address)
        running.metrics_port = running.metrics.server_port
    return running


def _interceptors(config: Config, store: TokenStore) -> list[grpc.ServerInterceptor]:
    # Observability before auth: the outer wrapper, so it also times and logs auth denials. The
    # trace span outside both, so the access line and the SQL spans fall inside it.
    chain: list[grpc.ServerInterceptor] = [ObservabilityInterceptor(), AuthInterceptor(store)]
    if config.tracer_provider is not None:
        from opentelemetry.instrumentation.grpc import filters, server_interceptor

        enable_statement_spans(config.tracer_provider)
        untraced = filters.service_prefix("grpc.")  # health probes and reflection
        traced = filters.negate(untraced)
        chain.insert(0, server_interceptor(tracer_provider=config.tracer_provider, filter_=traced))  # type: ignore[no-untyped-call]
    return chain


def _event_feed(config: Config) -> EventFeed:
    url = config.events_database_url or database_url(config.database_url)
    wakeups = wakeups_for(url, interval=config.events_poll_interval)
    retention = None if config.events_retention is None else dt.timedelta(seconds=config.events_retention)
    return EventFeed(wakeups=wakeups, queue_size=config.events_queue_size, max_watchers=config.max_watchers,
                     retention=retention)  # fmt: skip


def _add_port(server: grpc.Server, address: str, config: Config) -> int:
    """Bind `address`; grpc says only "Failed to bind", so a refusal is explained by ListenError."""
    try:
        return _bind(server, address, config)
    except RuntimeError as exc:
        raise ListenError(address, reuse_port=config.reuse_port) from exc


def _bind(server: grpc.Server, address: str, config: Config) -> int:
    """Plaintext by default; TLS with a cert and key; mutual TLS when a client CA is given."""
    if config.tls_cert is None and config.tls_key is None:
        if config.tls_client_ca is not None:
            raise ValueError("--tls-client-ca needs --tls-cert and --tls-key")
        return server.add_insecure_port(address)
    if config.tls_cert is None or config.tls_key is None:
        raise ValueError("TLS needs both --tls-cert and --tls-key")
    ca = Path(config.tls_client_ca).read_bytes() if config.tls_client_ca else None
    credentials = grpc.ssl_server_credentials(
        [(Path(config.tls_key).read_bytes(), Path(config.tls_cert).read_bytes())],
        root_certificates=ca,
        require_client_auth=ca is not None,
    )
    return server.add_secure_port(address, credentials)


def _options(*, reuse_port: bool) -> list[tuple[str, Any]]:
    return [
        ("grpc.so_reuseport", int(reuse_port)),  # grpc's default on Linux is 1: say it explicitly
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 30_000),
        ("grpc.max_connection_age_ms", 30 * 60_000),
        ("grpc.max_connection_age_grace_ms", 30_000),
    ]


def announce(*, address: str, port: int, metrics_address: str, metrics_port: int | None, tracing: bool) -> None:
    """The start-up lines users and tests read (the port matters when the address asked for 0)."""
    if metrics_port is not None:
        log.info("metrics on http://%s:%d/metrics", metrics_address, metrics_port)
    log.info("issue-service listening on %s (port %d)", address, port,
             extra={"address": address, "port": port, "tracing": tracing})  # fmt: skip


def _freeze_startup_objects() -> None:
    """Move what start-up made (modules, descriptors, the pool) out of the collector's reach.

    They live as long as the process, yet every full collection walked them all again: ~55,000
    objects, ~10 ms with the GIL held (a stall of every thread of the worker), about once per
    thousand updates; after the freeze a full collection takes well under 1 ms. Measured on
    2026-12-01 in a started server; under load the CPU per call did not move beyond the noise."""
    gc.collect()
    gc.freeze()


def _orphaned(config: Config) -> bool:
    """A worker whose supervisor died (a SIGKILL: PR_SET_PDEATHSIG sent this stop). No load
    balancer waits on the pre-stop delay then, but a restarted supervisor waits for the port:
    while it sat the delay out the worker kept listening, and a restart within it failed with
    "address already in use" (fault injection, 2026-12-02). It closes the listener at once and
    still lets its calls finish within the grace period."""
    if config.supervisor_pid is None or os.getppid() == config.supervisor_pid:
        return False
    log.warning("the supervisor (pid %d) is gone: closing the listener now", config.supervisor_pid)
    return True


def serve(config: Config, address: str, *, on_ready: Callable[[Running], None] | None = None) -> int:
    """Run until SIGTERM/SIGINT; then stop accepting, let in-flight calls finish, exit 0.

    on_ready replaces the start-up announcement: a supervised worker reports to its supervisor,
    which announces once for all of them.
    """
    configure_logging()
    try:
        running = create_server(config, address)
    except ListenError as exc:
        log.error("%s", exc, extra={"address": address})
        return LISTEN_FAILED
    stop, hurry = signal_events()  # before the banner: whoever waits for it may signal at once

    def on_hup(_signum: int, _frame: Any) -> None:
        running.tokens.reload()
        log.info("token file reloaded")

    signal.signal(signal.SIGHUP, on_hup)
    _freeze_startup_objects()
    # The banner last: whoever waits for it may signal the process at once.
    if on_ready is not None:
        on_ready(running)
    else:
        announce(address=address, port=running.port, metrics_address=config.metrics_address,
                 metrics_port=running.metrics_port, tracing=config.tracer_provider is not None)  # fmt: skip
    wait_in_main(stop)
    if _orphaned(config):
        hurry.set()
    code = shutdown_in_order(running, pre_stop_delay=config.pre_stop_delay, grace=config.grace_seconds, hurry=hurry)
    if config.tracer_provider is not None:
        config.tracer_provider.shutdown()  # exports the spans still batched
    return code
