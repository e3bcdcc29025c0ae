"""CLI: `issue-service` (or `python -m server`) serve | migrate | seed FILE | health."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from server import cli_events
from server.cli_env import flag, switch
from server.storage.db import DEFAULT_URL, database_url, make_database
from server.telemetry.logs import configure_logging

if TYPE_CHECKING:
    from server.transport.app import Config

DEFAULT_ADDRESS = "127.0.0.1:50051"

PROG = "issue-service"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="issue-service (also `python -m server`)", epilog="global flags go before the command"
    )
    flag(
        parser, "--database-url", env="DATABASE_URL", default=DEFAULT_URL, help="database (sqlite:// or postgresql://)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_flags(sub.add_parser("serve", help="serve IssueService over gRPC"))
    cli_events.relay_parser(sub)
    sub.add_parser("migrate", help="create or upgrade the schema")
    seed = sub.add_parser("seed", help="load a JSON fixture")
    seed.add_argument("file", help="fixture file (format: docs/seed-format.md)")
    switch(seed, "--replace", env="ISSUES_SEED_REPLACE", help="delete existing data first")
    health = sub.add_parser("health", help="ask a running server's health service; exit 0 when SERVING")
    flag(health, "--address", env="ISSUES_ADDRESS", default=DEFAULT_ADDRESS, help="server to ask")
    flag(health, "--service", env="ISSUES_HEALTH_SERVICE", default="", help='service name ("" = whole server)')
    return parser


def _serve_flags(serve: argparse.ArgumentParser) -> None:
    flag(serve, "--address", env="ISSUES_ADDRESS", default=DEFAULT_ADDRESS, help="gRPC listen address host:port")
    flag(
        serve,
        "--workers",
        env="ISSUES_WORKERS",
        default=8,
        type=int,
        help="calls on the database at once; threads and DB pool = workers + 4",
    )
    flag(serve, "--processes", env="ISSUES_PROCESSES", type=int,
         help="serving processes sharing the port (SO_REUSEPORT); 1: a single process (default: CPUs)")  # fmt: skip
    flag(serve, "--tokens", env="ISSUES_TOKENS", help="token file (JSON; required)")
    flag(serve, "--grace", env="ISSUES_GRACE", default=10.0, type=float, help="seconds to drain on SIGTERM")
    flag(serve, "--settings", env="ISSUES_SETTINGS", help="JSON file of server options and feature flags")
    flag(serve, "--metrics-port", env="ISSUES_METRICS_PORT", type=int, help="serve Prometheus /metrics on this port")
    flag(serve, "--metrics-address", env="ISSUES_METRICS_ADDRESS", default="127.0.0.1", help="address for /metrics")
    flag(serve, "--pre-stop-delay", env="ISSUES_PRE_STOP_DELAY", default=2.0, type=float,
         help="on SIGTERM, seconds health says NOT_SERVING while calls are still answered")  # fmt: skip
    flag(serve, "--health-interval", env="ISSUES_HEALTH_INTERVAL", default=0.5, type=float,
         help="seconds between database probes of the health service")  # fmt: skip
    flag(serve, "--health-timeout", env="ISSUES_HEALTH_TIMEOUT", default=1.0, type=float,
         help="seconds a database probe may take before it counts as failed")  # fmt: skip
    flag(serve, "--tls-cert", env="ISSUES_TLS_CERT", help="PEM server certificate (enables TLS)")
    flag(serve, "--tls-key", env="ISSUES_TLS_KEY", help="PEM private key of --tls-cert")
    flag(serve, "--tls-client-ca", env="ISSUES_TLS_CLIENT_CA", help="PEM CA; clients must present a cert it signed")
    switch(serve, "--tracing", env="ISSUES_TRACING", help="export OpenTelemetry traces (OTLP; see OTEL_*)")
    cli_events.serve_flags(serve)


def _serve_config(args: argparse.Namespace, url: str) -> Config:
    from server.core import settings
    from server.telemetry.sql import query_counting_requested
    from server.transport.app import Config  # grpc is imported only when serving

    return Config(
        database_url=url,
        tokens_path=args.tokens,
        workers=args.workers,
        grace_seconds=args.grace,
        pre_stop_delay=args.pre_stop_delay,
        health_interval=args.health_interval,
        health_timeout=args.health_timeout,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
        count_queries=query_counting_requested(),
        settings=settings.load(path=args.settings),
        # Made in the serving process itself (_serve): its OTLP exporter may open a gRPC channel,
        # and a supervisor must fork before any gRPC object exists.
        tracer_provider=None,
        **cli_events.serve_options(args),  # type: ignore[arg-type]
    )


def _tracer_provider(flag: bool) -> Any:
    from server.telemetry.tracing import provider_from_env, tracing_requested

    if not tracing_requested(flag=flag):
        return None
    from opentelemetry import trace

    provider = provider_from_env()
    trace.set_tracer_provider(provider)  # also the one libraries and log lines see
    return provider


def _serve(args: argparse.Namespace, config: Config) -> int:
    from server.processes.children import default_processes
    from server.processes.supervisor import supervise

    processes = default_processes() if args.processes is None else args.processes
    if processes < 1:
        print("--processes must be at least 1", file=sys.stderr)
        return 2
    if config.events_retention is not None and config.events_retention <= 0:
        print("--events-retention must be a positive number of seconds", file=sys.stderr)
        return 2
    if processes == 1:
        from server.transport.app import serve

        return serve(replace(config, tracer_provider=_tracer_provider(args.tracing)), args.address)
    from server.telemetry.tracing import tracing_requested

    tracer = partial(_tracer_provider, args.tracing) if tracing_requested(flag=args.tracing) else None
    return supervise(config, args.address, processes=processes, tracer=tracer)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging()
    if args.command == "health":
        from server.transport.health_probe import check

        return check(address=args.address, service=args.service)
    url = database_url(args.database_url)
    if args.command == "serve":
        if not args.tokens:
            print("serve needs --tokens FILE (or ISSUES_TOKENS)", file=sys.stderr)
            return 2
        from server.core.settings import SettingsError

        try:
            config = _serve_config(args, url)
        except SettingsError as exc:
            print(f"serve: bad settings: {exc}", file=sys.stderr)
            return 2
        return _serve(args, config)
    make_database(url)
    if args.command == "relay":
        return cli_events.relay(args, url)
    if args.command == "migrate":
        from server.storage.migrate import migrate

        start, end = migrate()
        print(f"schema at version {end} (was {start}) on {url.split('@')[-1]}")
        return 0
    from server.fixtures.seed import SeedError, seed_file

    try:
        counts = seed_file(args.file, replace=args.replace)
    except SeedError as exc:
        print(f"seed failed, nothing loaded: {exc}", file=sys.stderr)
        return 1
    print("loaded " + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
