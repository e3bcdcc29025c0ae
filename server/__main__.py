"""CLI: `python -m server serve | migrate | seed FILE`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

from server.storage.db import database_url, make_database

if TYPE_CHECKING:
    from server.transport.app import Config


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server", description="issue-service")
    parser.add_argument("--database-url", default=None, help="default: $DATABASE_URL or sqlite:///issues.db")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve IssueService over gRPC")
    serve.add_argument("--address", default=os.environ.get("ISSUES_ADDRESS", "127.0.0.1:50051"))
    serve.add_argument("--workers", type=int, default=int(os.environ.get("ISSUES_WORKERS", "8")))
    serve.add_argument("--tokens", default=os.environ.get("ISSUES_TOKENS"), help="token file (JSON)")
    serve.add_argument("--grace", type=float, default=10.0, help="seconds to drain on SIGTERM")
    metrics_help = "serve Prometheus /metrics on this HTTP port (default: off)"
    metrics_port = _env_int("ISSUES_METRICS_PORT")
    serve.add_argument("--metrics-port", type=int, default=metrics_port, help=metrics_help)
    serve.add_argument("--metrics-address", default="127.0.0.1", help="address for --metrics-port")
    serve.add_argument("--health-interval", type=float, default=5.0, help="DB probe period (s)")
    serve.add_argument("--tls-cert", default=None, help="PEM server certificate (enables TLS)")
    serve.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    serve.add_argument("--tls-client-ca", default=None, help="PEM CA; requires client certs")
    _events_flags(serve)
    sub.add_parser("migrate", help="create or upgrade the schema")
    seed = sub.add_parser("seed", help="load a JSON fixture")
    seed.add_argument("file")
    seed.add_argument("--replace", action="store_true", help="delete existing data first")
    return parser


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _events_flags(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--events-database-url", default=os.environ.get("ISSUES_EVENTS_DATABASE_URL"),
        help="connection for LISTEN/NOTIFY wake-ups of WatchIssueEvents (default: the database URL); "
        "point this at PostgreSQL directly when the request pool goes through a transaction pooler",
    )  # fmt: skip
    serve.add_argument(
        "--events-poll-interval", type=float, default=_env_float("ISSUES_EVENTS_POLL_INTERVAL", 0.25),
        help="seconds between outbox polls (SQLite; a safety net next to NOTIFY on PostgreSQL)",
    )  # fmt: skip
    serve.add_argument(
        "--events-heartbeat", type=float, default=_env_float("ISSUES_EVENTS_HEARTBEAT", 15.0),
        help="seconds of silence before a WatchIssueEvents stream gets a heartbeat",
    )  # fmt: skip
    serve.add_argument(
        "--events-queue-size", type=int, default=_env_int("ISSUES_EVENTS_QUEUE_SIZE") or 1000,
        help="events buffered per watcher; a slower watcher re-reads from the database",
    )  # fmt: skip
    serve.add_argument(
        "--max-watchers", type=int, default=_env_int("ISSUES_MAX_WATCHERS") or 16,
        help="concurrent WatchIssueEvents streams (each has its own thread); past it RESOURCE_EXHAUSTED",
    )  # fmt: skip


def _serve_config(args: argparse.Namespace, url: str) -> Config:
    from server.transport.app import Config  # grpc is imported only when serving
    from server.transport.observability import query_counting_requested

    return Config(
        database_url=url,
        tokens_path=args.tokens,
        workers=args.workers,
        grace_seconds=args.grace,
        health_interval=args.health_interval,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_client_ca=args.tls_client_ca,
        metrics_port=args.metrics_port,
        metrics_address=args.metrics_address,
        count_queries=query_counting_requested(),
        events_database_url=args.events_database_url,
        events_poll_interval=args.events_poll_interval,
        events_heartbeat=args.events_heartbeat,
        events_queue_size=args.events_queue_size,
        max_watchers=args.max_watchers,
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    url = database_url(args.database_url)
    if args.command == "serve":
        from server.transport.app import serve

        if not args.tokens:
            print("serve needs --tokens FILE (or ISSUES_TOKENS)", file=sys.stderr)
            return 2
        return serve(_serve_config(args, url), args.address)
    make_database(url)
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
