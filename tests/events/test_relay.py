"""The relay against the real NATS JetStream: order, exactly once, crashes, standbys, outages."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from server.events import store
from server.storage.models import EventSequence, OutboxEvent
from tests import factories as f
from tests.conftest import BACKEND
from tests.core.helpers import bulk
from tests.events.nats_support import (
    HOST,
    PORT,
    delete_stream,
    relay_health,
    require_nats,
    start_relay,
    stop,
    stream_messages,
    unique,
    wait_for,
)
from tests.forwarder import Forwarder, forwarded_database

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
    """The event ids, from the message ids (`<event id>@<written at>`)."""
    return [int(headers["Nats-Msg-Id"].partition("@")[0]) for _, headers, _ in messages]


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
    written = OutboxEvent.get(OutboxEvent.seq == int(event["eventId"])).created_at
    assert headers["Nats-Msg-Id"] == f"{event['eventId']}@{written.isoformat()}"
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


def _relay_until_delivered(database: str, *, prefix: str, stream: str) -> None:
    relay = start_relay(database, prefix=prefix, stream=stream)
    try:
        assert wait_for(_all_delivered)
    finally:
        assert stop(relay) == 0


def test_events_that_reuse_ids_after_a_restore_from_backup_still_reach_the_stream(
    database: str, nats_stream: tuple[str, str]
) -> None:
    prefix, stream = nats_stream
    _resolve_groups(5)
    _relay_until_delivered(database, prefix=prefix, stream=stream)
    # The database as a backup taken before its last three events left it: those rows are gone
    # and the sequence hands their ids out again, to three new events.
    restore_point = sorted(e.seq for e in OutboxEvent.select())[2]
    OutboxEvent.delete().where(OutboxEvent.seq >= restore_point).execute()
    EventSequence.update(next_seq=restore_point).execute()
    _resolve_groups(3)
    _relay_until_delivered(database, prefix=prefix, stream=stream)
    ids = _ids(stream_messages(stream))
    assert len(ids) == 8  # the five first events, then the three new ones under reused ids
    assert ids[5:] == ids[2:5] == [restore_point, restore_point + 1, restore_point + 2]


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


def _readiness_is(relay: Any, expected: tuple[int, str]) -> bool:
    return wait_for(lambda: relay_health(relay, "/readyz") == expected, timeout=30)


def _not_ready_because(relay: Any, prefix: str) -> bool:
    def failing() -> bool:
        status, why = relay_health(relay, "/readyz")
        return status == 503 and why.startswith(prefix)

    return wait_for(failing, timeout=30)


def _outage_shows_on_readyz(relay: Any, forwarder: Forwarder, *, reason: str) -> None:
    """Ready; the forwarder stops (the outage): 503 with `reason`, alive all the while; it starts
    again: ready again."""
    assert _readiness_is(relay, (200, "publishing\n"))
    forwarder.stop()
    assert _not_ready_because(relay, reason)
    assert relay_health(relay, "/healthz") == (200, "ok\n")
    forwarder.start()
    assert _readiness_is(relay, (200, "publishing\n"))


def test_readyz_tells_while_nats_is_down_with_nothing_to_publish(database: str, nats_stream: tuple[str, str]) -> None:
    """The relay looks for NATS even with no event waiting: a dead NATS is reported when it dies,
    not when the next event is due. /healthz stays 200 meanwhile: the loop turns, and a restart
    would not bring NATS back."""
    prefix, stream = nats_stream
    forwarder = Forwarder((HOST, PORT))
    forwarder.start()
    relay = start_relay(database, prefix=prefix, stream=stream, to=f"nats://127.0.0.1:{forwarder.port}")
    try:
        _outage_shows_on_readyz(relay, forwarder, reason="publishing: ")
    finally:
        forwarder.stop()
        assert stop(relay) == 0


def test_a_standby_relay_is_ready_as_a_standby(database: str, nats_stream: tuple[str, str]) -> None:
    prefix, stream = nats_stream
    first = start_relay(database, prefix=prefix, stream=stream)
    second = None
    try:
        assert _readiness_is(first, (200, "publishing\n"))
        second = start_relay(database, prefix=prefix, stream=stream)
        assert _readiness_is(second, (200, "standby\n"))
    finally:
        assert stop(first) == 0
        if second is not None:
            assert stop(second) == 0


@pytest.mark.skipif(BACKEND != "postgres", reason="the database outage is a forwarder to PostgreSQL")
def test_readyz_tells_while_the_database_is_down(database: str, nats_stream: tuple[str, str]) -> None:
    """A relay that cannot ask for the lease would not take over from a dead publisher: not ready."""
    prefix, stream = nats_stream
    forwarder, url = forwarded_database(database)
    relay = start_relay(url, prefix=prefix, stream=stream)
    try:
        _outage_shows_on_readyz(relay, forwarder, reason="database: ")
    finally:
        forwarder.stop()
        assert stop(relay) == 0


def test_sigterm_while_nats_is_down_stops_the_relay_at_once(database: str, nats_stream: tuple[str, str]) -> None:
    """A connect to a NATS that is down gives up: the relay was stuck retrying inside nats-py's
    connect for as long as NATS stayed down, and SIGTERM waited with it."""
    prefix, stream = nats_stream
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    relay = start_relay(database, prefix=prefix, stream=stream, to=f"nats://127.0.0.1:{port}")
    try:
        assert _not_ready_because(relay, "publishing: ")
    finally:
        relay.send_signal(signal.SIGTERM)
        code = relay.wait(10)
    assert code == 0


@pytest.mark.skipif(BACKEND != "postgres", reason="the database outage is a forwarder to PostgreSQL")
def test_a_silent_database_makes_the_relay_not_ready_and_sigterm_still_stops_it(
    database: str, nats_stream: tuple[str, str]
) -> None:
    """The database keeps the connections open and never answers (fault injection, 2026-12-02:
    the relay hung on it, said "publishing" and ignored SIGTERM until the database came back)."""
    prefix, stream = nats_stream
    forwarder, url = forwarded_database(database)
    relay = start_relay(url, prefix=prefix, stream=stream)
    try:
        assert _readiness_is(relay, (200, "publishing\n"))
        forwarder.blackhole()
        assert _not_ready_because(relay, "database: ")  # the lease check gave up (lease.CHECK_SECONDS)
        assert relay_health(relay, "/healthz") == (200, "ok\n")
        forwarder.heal()
        assert _readiness_is(relay, (200, "publishing\n"))
        forwarder.blackhole()
        time.sleep(1.0)
    finally:
        started = time.monotonic()
        assert stop(relay) == 0  # while still silent
        assert time.monotonic() - started < 20
        forwarder.stop()
