"""The relay against the real NATS JetStream: order, exactly once, crashes, standbys, outages."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from server.events import store
from server.storage.models import OutboxEvent
from tests import factories as f
from tests.core.helpers import bulk
from tests.events.nats_support import (
    HOST,
    PORT,
    delete_stream,
    require_nats,
    start_relay,
    stop,
    stream_messages,
    unique,
    wait_for,
)
from tests.forwarder import Forwarder

N_GROUPS = 30


@pytest.fixture()
def nats_stream(database: str) -> Iterator[tuple[str, str]]:
    require_nats()
    prefix, stream = unique()
    yield prefix, stream
    delete_stream(stream)


def _resolve_groups(count: int = N_GROUPS) -> tuple[dict[str, Any], list[int]]:
    """`count` issue.resolved events (a bulk of many groups sends no activity notification)."""
    w = f.world()
    ids = [f.group(w["project"]).id for _ in range(count)]
    bulk(w["org"].id, ids, user_id=w["user"].id, status="resolved")
    return w, ids


def _all_delivered() -> bool:
    return not OutboxEvent.select().where(OutboxEvent.delivered_at.is_null()).exists()


def _ids(messages: list[tuple[str, dict[str, str], bytes]]) -> list[int]:
    return [int(headers["Nats-Msg-Id"]) for _, headers, _ in messages]


def test_every_event_reaches_the_stream_once_in_order_with_subject_and_id(
    database: str, nats_stream: tuple[str, str]
) -> None:
    prefix, stream = nats_stream
    w, ids = _resolve_groups()
    relay = start_relay(database, prefix=prefix, stream=stream)
    try:
        assert wait_for(lambda: len(stream_messages(stream)) >= N_GROUPS)
    finally:
        assert stop(relay) == 0  # SIGTERM: finish the batch, exit 0
    messages = stream_messages(stream)
    assert _ids(messages) == sorted(_ids(messages)) and len(set(_ids(messages))) == N_GROUPS
    subject, headers, body = messages[0]
    assert subject == f"{prefix}.{w['org'].id}.{w['project'].id}.issue_resolved"
    event = json.loads(body)
    assert event["eventId"] == headers["Nats-Msg-Id"]
    assert (event["kind"], int(event["groupId"])) == ("EVENT_KIND_ISSUE_RESOLVED", ids[0])
    assert [json.loads(b)["groupId"] for _, _, b in messages] == [str(i) for i in ids]
    assert _all_delivered()


def test_kill_9_between_publish_and_mark_then_restart_keeps_each_event_once(
    database: str, nats_stream: tuple[str, str]
) -> None:
    prefix, stream = nats_stream
    _resolve_groups()
    pause = {"ISSUES_RELAY_TEST_PAUSE_BEFORE_MARK": "30"}  # published, never marked: then killed
    crashed = start_relay(database, prefix=prefix, stream=stream, env=pause)
    assert wait_for(lambda: len(stream_messages(stream)) >= 1)
    os.kill(crashed.pid, signal.SIGKILL)
    crashed.wait(10)
    assert OutboxEvent.select().where(OutboxEvent.delivered_at.is_null()).count() == N_GROUPS
    relay = start_relay(database, prefix=prefix, stream=stream)
    try:
        assert wait_for(_all_delivered)
    finally:
        assert stop(relay) == 0
    ids = _ids(stream_messages(stream))
    assert ids == sorted(set(ids)) and len(ids) == N_GROUPS


def test_two_relays_publish_without_duplicates(database: str, nats_stream: tuple[str, str]) -> None:
    prefix, stream = nats_stream
    _resolve_groups()
    relays = [start_relay(database, prefix=prefix, stream=stream) for _ in range(2)]
    try:
        assert wait_for(_all_delivered)
        more = _resolve_groups(5)[1]
        assert wait_for(_all_delivered)
    finally:
        codes = [stop(r) for r in relays]
    assert codes == [0, 0]
    ids = _ids(stream_messages(stream))
    assert ids == sorted(set(ids)) and len(ids) == N_GROUPS + len(more)


def test_while_nats_is_down_nothing_is_lost_and_order_holds(database: str, nats_stream: tuple[str, str]) -> None:
    prefix, stream = nats_stream
    forwarder = Forwarder((HOST, PORT))  # 127.0.0.1:<port> -> NATS; stop() is NATS going away
    forwarder.start()
    relay = start_relay(database, prefix=prefix, stream=stream, to=f"nats://127.0.0.1:{forwarder.port}")
    try:
        _resolve_groups(5)
        assert wait_for(_all_delivered)
        forwarder.stop()  # NATS unreachable: publishes fail, the relay backs off
        _w, later = _resolve_groups()
        store.stamp()
        assert not wait_for(_all_delivered, timeout=2)
        forwarder.start()
        assert wait_for(_all_delivered)
    finally:
        forwarder.stop()
        assert stop(relay) == 0
    messages = stream_messages(stream)
    ids = _ids(messages)
    assert ids == sorted(set(ids)) and len(ids) == 5 + N_GROUPS
    assert [int(json.loads(b)["groupId"]) for _, _, b in messages[5:]] == later
