"""The feed's limits: bounded queues for slow consumers, a watcher cap, resume across restarts."""

from __future__ import annotations

from typing import Any

import grpc

from server.storage.models import Group
from tests import factories as f
from tests.conftest import metadata
from tests.events.support import Stream, drain, ev, events_server, pb, stub_for


def _resolve_each(stub: Any, w: dict[str, Any], groups: list[Group]) -> None:
    for g in groups:
        request = pb.BulkUpdateGroupsRequest(
            organization_id=w["org"].id, group_ids=[g.id], patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED)
        )
        stub.BulkUpdateGroups(request, metadata=metadata(user_id=w["user"].id))


def _resolved_only(w: dict[str, Any], after: int = 0) -> ev.WatchIssueEventsRequest:
    return ev.WatchIssueEventsRequest(
        organization_id=w["org"].id, kinds=[ev.EVENT_KIND_ISSUE_RESOLVED], after_event_id=after
    )


def test_a_consumer_slower_than_its_queue_catches_up_from_the_database(migrated: str) -> None:
    running = events_server(migrated, events_queue_size=2)
    channel, stub = stub_for(running)
    try:
        w = f.world()
        groups = [f.group(w["project"]) for _ in range(6)]
        stream = Stream(stub, _resolved_only(w), token="reader", user_id=w["user"].id)
        drain(stream)  # live now
        bulk = pb.BulkUpdateGroupsRequest(
            organization_id=w["org"].id, group_ids=[g.id for g in groups],
            patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED),
        )  # fmt: skip
        stub.BulkUpdateGroups(bulk, metadata=metadata(user_id=w["user"].id))  # 6 events > queue of 2
        events = stream.wait_events(6)
        stream.close()
        overflows = running.feed.overflows if running.feed else 0
    finally:
        channel.close()
        running.stop(0)
    assert [e.group_id for e in events] == [g.id for g in groups]
    assert overflows >= 1


def test_watchers_past_the_cap_are_resource_exhausted(migrated: str) -> None:
    running = events_server(migrated, max_watchers=1)
    channel, stub = stub_for(running)
    try:
        w = f.world()
        first = Stream(stub, _resolved_only(w), token="reader", user_id=w["user"].id)
        drain(first)
        second = Stream(stub, _resolved_only(w), token="reader", user_id=w["user"].id)
        error = second.wait_error()
        first.close()
    finally:
        channel.close()
        running.stop(0)
    assert error is not None and error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]


def test_resume_across_a_server_restart_loses_and_repeats_nothing(migrated: str) -> None:
    first_server = events_server(migrated)
    channel, stub = stub_for(first_server)
    w = f.world()
    groups = [f.group(w["project"]) for _ in range(4)]
    _resolve_each(stub, w, groups[:2])
    stream = Stream(stub, _resolved_only(w), token="reader", user_id=w["user"].id)
    before = stream.wait_events(2)
    stream.close()
    _resolve_each(stub, w, groups[2:3])  # committed while nobody watched
    channel.close()
    first_server.stop(0)
    second_server = events_server(migrated)
    channel, stub = stub_for(second_server)
    try:
        _resolve_each(stub, w, groups[3:])
        resumed = Stream(stub, _resolved_only(w, after=before[-1].event_id), token="reader", user_id=w["user"].id)
        after = drain(resumed)
        resumed.close()
    finally:
        channel.close()
        second_server.stop(0)
    assert [e.group_id for e in before + after] == [g.id for g in groups]
