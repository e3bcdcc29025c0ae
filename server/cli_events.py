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
    flag(serve, "--events-access-recheck", env="ISSUES_EVENTS_ACCESS_RECHECK", default=30.0, type=float,
         help="seconds between a WatchIssueEvents stream's reads of its caller's access")  # fmt: skip
    flag(serve, "--events-queue-size", env="ISSUES_EVENTS_QUEUE_SIZE", default=1000, type=int,
         help="events buffered per watcher; a slower watcher re-reads from the database")  # fmt: skip
    flag(serve, "--events-retention", env="ISSUES_EVENTS_RETENTION", type=float,
         help="seconds an event is kept, delivered to NATS or not, before this server prunes it; for "
              "deployments without a relay (default: kept until a relay prunes it)")  # fmt: skip
    flag(serve, "--max-watchers", env="ISSUES_MAX_WATCHERS", default=16, type=int,
         help="concurrent WatchIssueEvents streams (own threads); past it RESOURCE_EXHAUSTED")  # fmt: skip


def serve_options(args: argparse.Namespace) -> dict[str, object]:
    """The Config fields of serve_flags."""
    return {
        "events_database_url": args.events_database_url,
        "events_poll_interval": args.events_poll_interval,
        "events_heartbeat": args.events_heartbeat,
        "events_access_recheck": args.events_access_recheck,
        "events_queue_size": args.events_queue_size,
        "events_retention": args.events_retention,
        "max_watchers": args.max_watchers,
    }


def relay_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    relay = sub.add_parser("relay", help="publish committed outbox events to NATS JetStream")
    flag(relay, "--to", env="ISSUES_RELAY_NATS_URL", default="nats://127.0.0.1:4222", help="NATS server URL")
    flag(relay, "--subject-prefix", env="ISSUES_RELAY_SUBJECT_PREFIX", default="issues.v1.events",
         help="subjects are PREFIX.<organization>.<project>.<kind>")  # fmt: skip
    flag(relay, "--stream", env="ISSUES_RELAY_STREAM", default="ISSUES_EVENTS",
         help="JetStream stream (created with subjects PREFIX.> when missing)")  # fmt: skip
    flag(relay, "--duplicate-window", env="ISSUES_RELAY_DUPLICATE_WINDOW", default=600.0, type=float,
         help="seconds of Nats-Msg-Id dedupe of a created stream; must exceed a crash plus restart")  # fmt: skip
    flag(relay, "--batch-size", env="ISSUES_RELAY_BATCH_SIZE", default=500, type=int,
         help="events per batch (published in order, then marked delivered)")  # fmt: skip
    flag(relay, "--poll-interval", env="ISSUES_RELAY_POLL_INTERVAL", default=0.2, type=float,
         help="seconds between looks at the outbox when idle, and between standby lease attempts")  # fmt: skip
    flag(relay, "--retention", env="ISSUES_RELAY_RETENTION", default=604800.0, type=float,
         help="seconds a delivered event is kept (for WatchIssueEvents resumes) before pruning")  # fmt: skip
    flag(relay, "--max-backoff", env="ISSUES_RELAY_MAX_BACKOFF", default=30.0, type=float,
         help="longest wait between retries while NATS or the database is down")  # fmt: skip
    flag(relay, "--lease-ttl", env="ISSUES_RELAY_LEASE_TTL", default=15.0, type=float,
         help="SQLite: seconds a relay's lease lasts unless renewed (PostgreSQL uses an advisory lock)")  # fmt: skip
    flag(relay, "--lock-database-url", env="ISSUES_RELAY_LOCK_DATABASE_URL",
         help="PostgreSQL session for the advisory lock (default: the database URL; not via a pooler)")  # fmt: skip
    flag(relay, "--health-address", env="ISSUES_RELAY_HEALTH_ADDRESS", default="127.0.0.1:9465",
         help="HTTP /healthz and /metrics of the relay (port 0: a free one)")  # fmt: skip


def relay(args: argparse.Namespace, url: str) -> int:
    import datetime as dt

    from server.relay.lease import lease_for
    from server.relay.nats_out import Target
    from server.relay.run import RelayConfig, run_relay

    target = Target(url=args.to, subject_prefix=args.subject_prefix, stream=args.stream,
                    duplicate_window=args.duplicate_window)  # fmt: skip
    config = RelayConfig(
        target=target, batch_size=args.batch_size, poll_interval=args.poll_interval,
        retention=dt.timedelta(seconds=args.retention), max_backoff=args.max_backoff,
    )  # fmt: skip
    lease = lease_for(args.lock_database_url or url, ttl=args.lease_ttl)
    return run_relay(config, lease=lease, health_address=args.health_address)
