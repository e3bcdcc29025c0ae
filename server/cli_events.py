"""Command-line flags of the event stream: `serve`'s watch options and the `relay` command."""

from __future__ import annotations

import argparse

from server.cli_env import flag

LISTEN_HELP = (
    "connection for the LISTEN/NOTIFY wake-ups of WatchIssueEvents (default: the database URL); point "
    "this at PostgreSQL directly when the request pool goes through a transaction pooler"
)


def serve_flags(serve: argparse.ArgumentParser) -> None:
    flag(serve, "--events-database-url", env="ISSUES_EVENTS_DATABASE_URL", help=LISTEN_HELP)
    flag(serve, "--events-poll-interval", env="ISSUES_EVENTS_POLL_INTERVAL", default=0.25, type=float,
         help="seconds between outbox polls (SQLite; a safety net next to NOTIFY on PostgreSQL)")  # fmt: skip
    flag(serve, "--events-heartbeat", env="ISSUES_EVENTS_HEARTBEAT", default=15.0, type=float,
         help="seconds of silence before a WatchIssueEvents stream gets a heartbeat")  # fmt: skip
    flag(serve, "--events-queue-size", env="ISSUES_EVENTS_QUEUE_SIZE", default=1000, type=int,
         help="events buffered per watcher; a slower watcher re-reads from the database")  # fmt: skip
    flag(serve, "--max-watchers", env="ISSUES_MAX_WATCHERS", default=16, type=int,
         help="concurrent WatchIssueEvents streams (own threads); past it RESOURCE_EXHAUSTED")  # fmt: skip


def serve_options(args: argparse.Namespace) -> dict[str, object]:
    """The Config fields of serve_flags."""
    return {
        "events_database_url": args.events_database_url,
        "events_poll_interval": args.events_poll_interval,
        "events_heartbeat": args.events_heartbeat,
        "events_queue_size": args.events_queue_size,
        "max_watchers": args.max_watchers,
    }
