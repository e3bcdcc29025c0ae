"""Fixture chain: database -> server -> channel -> stub. Backend from TEST_BACKEND (sqlite|postgres)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from issues.v1 import issue_service_pb2_grpc
from peewee import Database

from server.storage.db import make_database
from server.storage.migrate import migrate
from server.storage.models import ALL_MODELS, EventSequence, SchemaVersion, db
from server.transport.app import Config, Running, create_server
from server.transport.auth import Token, TokenStore, hash_token

BACKEND = os.environ.get("TEST_BACKEND", "sqlite")
PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")

TOKENS = {
    "writer": ("writer-secret", {"event:read", "event:write"}, None),
    "reader": ("reader-secret", {"event:read"}, None),
    "admin": ("admin-secret", {"event:read", "event:write", "event:admin"}, None),
}


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if BACKEND == "postgres":
        name = f"issues_test_{uuid.uuid4().hex[:10]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        yield f"{base}/{name}"
        db.obj.close_all()
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path: Path = tmp_path_factory.mktemp("db") / "test.db"
        yield f"sqlite:///{path}"


_POOLS: dict[str, Database] = {}


def bind(url: str) -> None:
    """Bind the models to the one pool of `url`, made once per session.

    Building a new pool per test would swap the database under the session server's background
    threads (the event feed, the prober) while they run a statement on the old one."""
    real = _POOLS.get(url)
    if real is None:
        _POOLS[url] = make_database(url, workers=8)
    elif db.obj is not real:  # a test bound the models elsewhere (e.g. through a fault forwarder)
        db.initialize(real)


@pytest.fixture(scope="session")
def migrated(database_url: str) -> str:
    bind(database_url)
    migrate()
    return database_url


@pytest.fixture()
def database(migrated: str) -> Iterator[str]:
    """An empty schema for each test; a connection is open for the test body's own queries."""
    bind(migrated)
    empty_schema()
    with db.connection_context():
        yield migrated


def empty_schema() -> None:
    """Delete every row but the schema version, in the database bound now."""
    with db.connection_context(), db.atomic():
        if BACKEND == "postgres":
            # Take the event sequence row first, as the feeds' stamping does: a feed stamping the
            # previous test's events then waits for this cleanup instead of deadlocking with it.
            db.execute_sql("SELECT id FROM event_sequence FOR UPDATE")
        for model in reversed(ALL_MODELS):
            # The event sequence never goes back (as in production): running servers' feeds
            # hold a position in it across tests.
            if model not in (SchemaVersion, EventSequence):
                model.delete().execute()


def token_store() -> TokenStore:
    return TokenStore(
        tokens=[
            Token(name, hash_token(secret), frozenset(scopes), orgs) for name, (secret, scopes, orgs) in TOKENS.items()
        ]
    )


@pytest.fixture(scope="session")
def running(migrated: str) -> Iterator[Running]:
    # The session server's prober opens the process-wide breaker when the database stops
    # answering; on a machine shared by many test runs, a generous probe timeout keeps a slow
    # answer from refusing every test's calls (outage tests run their own servers).
    config = Config(database_url=migrated, workers=8, health_timeout=5.0)
    server = create_server(config, tokens=token_store())
    _POOLS[migrated] = db.obj  # the server's own pool: tests then share it instead of swapping it
    yield server
    server.stop(0)


@pytest.fixture(scope="session")
def channel(running: Running) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        yield ch


@pytest.fixture()
def stub(channel: grpc.Channel, database: str) -> issue_service_pb2_grpc.IssueServiceStub:
    return issue_service_pb2_grpc.IssueServiceStub(channel)


def metadata(token: str = "writer", user_id: int | None = None, **extra: str) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = [("authorization", f"Bearer {TOKENS[token][0]}")]
    if user_id is not None:
        pairs.append(("x-acting-user-id", str(user_id)))
    pairs.extend(extra.items())
    return tuple(pairs)


def pytest_collection_modifyitems(items: list[Any]) -> None:
    for item in items:
        if {"database", "stub", "running", "migrated"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


def pytest_report_header() -> str:
    return f"issue-service database backend: {BACKEND}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say which legs ran: the database, and the servers some tests need beside it."""
    skipped = terminalreporter.stats.get("skipped", [])

    def skipped_under(folder: str) -> int:
        return sum(1 for report in skipped if f"tests/{folder}/" in str(report.location[0]))

    terminalreporter.write_line(
        f"legs: database {BACKEND}; skipped in tests/events {skipped_under('events')} (need NATS or the other "
        f"backend), in tests/processes {skipped_under('processes')} (need PgBouncer, node or PostgreSQL); "
        "-rs lists why; with CI=true a missing server fails instead"
    )
