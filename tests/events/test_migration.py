"""The event-stream migration upgrades a database made before it, and is idempotent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.events import store
from server.storage import migrate_events
from server.storage.db import make_database
from server.storage.models import OutboxEvent, db
from tests.conftest import BACKEND, PG_ADMIN_URL, _pg_admin, bind

NEW_COLUMNS = ("organization_id", "project_id", "actor_id", "request_id", "seq")


@pytest.fixture()
def scratch(tmp_path: Path, migrated: str) -> Iterator[str]:
    """A database of its own (the shared one must not lose columns), rebound back afterwards."""
    if BACKEND == "postgres":
        name = f"issues_mig_{uuid.uuid4().hex[:10]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        url = f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    else:
        url = f"sqlite:///{tmp_path / 'old.db'}"
    scratch_db = make_database(url, workers=2)
    yield url
    # Back to the session's own pool (a new one would leave the session server's threads on a
    # pool no test cleans). The event feed of the session's test server may still be inside a
    # tick on the scratch pool: only its idle connections are closed, never one in use (closing
    # a SQLite connection under another thread's statement crashed the process once).
    bind(migrated)
    scratch_db.close_idle()
    if BACKEND == "postgres":
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_an_outbox_without_the_event_columns_is_upgraded_twice_safely(scratch: str) -> None:
    with db.connection_context():
        serial = "BIGSERIAL" if BACKEND == "postgres" else "INTEGER"
        db.execute_sql(
            f"CREATE TABLE outbox_event (id {serial} PRIMARY KEY, kind VARCHAR(64) NOT NULL, group_id BIGINT, "
            "payload TEXT, created_at TIMESTAMP NOT NULL, delivered_at TIMESTAMP)"
        )
        migrate_events.upgrade()
        migrate_events.upgrade()
        columns = {c.name for c in db.get_columns("outbox_event")}
        OutboxEvent.insert(kind="issue.resolved", group_id=1, organization_id=1, project_id=1).execute()
    assert set(NEW_COLUMNS) <= columns
    assert store.stamp() == 1 and store.head() == 1
