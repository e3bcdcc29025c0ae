"""Pruning the outbox: the relay's (delivered events only) and a server's own retention (every
stamped event, for deployments without a relay); readers before what went get OUT_OF_RANGE."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.__main__ import _parser
from server.cli_events import serve_options
from server.core.errors import OutOfRange
from server.events import store
from server.events.feed import EventFeed
from server.events.listener import Wakeups
from server.events.records import EventFilter
from server.events.watch import watch
from server.relay import outbox
from server.storage.models import EventSequence, OutboxEvent, utcnow
from server.transport.app import Config, create_server
from tests.conftest import token_store

DAY = dt.timedelta(days=1)


def _event(group_id: int, *, age: dt.timedelta, delivered: bool) -> None:
    written = utcnow() - age
    OutboxEvent.insert(kind="issue.resolved", group_id=group_id, organization_id=1, created_at=written,
                       delivered_at=written if delivered else None).execute()  # fmt: skip


def _kept() -> list[int]:
    return sorted(row.group_id for row in OutboxEvent.select(OutboxEvent.group_id))


def _old_and_new() -> None:
    _event(1, age=3 * DAY, delivered=True)
    _event(2, age=3 * DAY, delivered=False)  # NATS was down, or no relay runs
    _event(3, age=dt.timedelta(minutes=1), delivered=True)
    store.stamp()
    _event(4, age=3 * DAY, delivered=False)  # not stamped yet: never pruned


def test_the_relay_prunes_only_what_it_delivered(database: str) -> None:
    _old_and_new()
    assert outbox.prune(retention=DAY) == 1
    assert _kept() == [2, 3, 4]


def test_a_retention_prunes_every_old_stamped_event_and_tells_resuming_readers(database: str) -> None:
    _old_and_new()
    feed = EventFeed(wakeups=Wakeups(interval=60.0), retention=DAY)
    assert feed.prune_if_due() == 2
    assert _kept() == [3, 4]
    seqs = {row.group_id: row.seq for row in OutboxEvent.select()}
    assert EventSequence.get().pruned_through == seqs[3] - 1  # cursors before it are OUT_OF_RANGE
    assert feed.prune_if_due() == 0  # not due again for a minute


def test_without_a_retention_the_feed_prunes_nothing(database: str) -> None:
    _old_and_new()
    assert EventFeed(wakeups=Wakeups(interval=60.0)).prune_if_due() == 0
    assert _kept() == [1, 2, 3, 4]


def test_serve_refuses_a_retention_that_is_not_positive(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"tokens": []}))
    command = [sys.executable, "-m", "server", "--database-url", f"sqlite:///{tmp_path / 'x.db'}", "serve",
               "--tokens", str(tokens), "--events-retention", "0"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})  # fmt: skip
    assert result.returncode == 2
    assert "--events-retention must be a positive number of seconds" in result.stderr


def test_the_flag_reaches_the_feed(database: str) -> None:
    args = _parser().parse_args(["serve", "--events-retention", "3600"])
    running = create_server(Config(database_url=database, **serve_options(args)), tokens=token_store())  # type: ignore[arg-type]
    try:
        assert running.feed is not None and running.feed.retention == dt.timedelta(hours=1)
    finally:
        running.stop(grace=0)


def test_a_stream_left_behind_by_pruning_ends_out_of_range_instead_of_skipping(database: str) -> None:
    for group_id in range(1, 6):
        _event(group_id, age=3 * DAY, delivered=True)
    store.stamp()
    first = min(row.seq for row in OutboxEvent.select())
    feed = EventFeed(wakeups=Wakeups(interval=60.0))
    stream = watch(feed=feed, where=EventFilter(organization_id=1), after=first, heartbeat=0.1,
                   should_continue=lambda: True)  # fmt: skip
    # The stream reads from the database (it is behind); the events after its cursor go meanwhile.
    assert outbox.prune(retention=DAY) == 5
    with pytest.raises(OutOfRange) as exc:
        next(stream)
    assert exc.value.reason == "CURSOR_PRUNED"
