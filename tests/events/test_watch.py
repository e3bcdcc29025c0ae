"""WatchIssueEvents through gRPC: backlog, live events, resume, heartbeats, filters, access."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from server.core import update
from server.core.commands import Caller, Selection, UpdateCommand
from server.core.errors import Cancelled
from server.events import store
from server.storage.models import EventSequence, Group
from server.transport.app import Running
from tests import factories as f
from tests.conftest import metadata
from tests.events.support import Stream, drain, ev, events_server, pb
from tests.security.test_edge_limits import field_violations


@pytest.fixture(scope="module")
def server(migrated: str) -> Iterator[Running]:
    running = events_server(migrated)
    yield running
    running.stop(0)


@pytest.fixture()
def w(stub: Any) -> dict[str, Any]:
    return f.world()


def _watch(stub: Any, w: dict[str, Any], *, token: str = "reader", user: bool = True, **fields: Any) -> Stream:
    request = ev.WatchIssueEventsRequest(organization_id=w["org"].id, **fields)
    return Stream(stub, request, token=token, user_id=w["user"].id if user else None)


def _resolve(stub: Any, w: dict[str, Any], ids: list[int], **extra: Any) -> Any:
    request = pb.BulkUpdateGroupsRequest(
        organization_id=w["org"].id, group_ids=ids, patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED), **extra
    )
    return stub.BulkUpdateGroups(request, metadata=metadata(user_id=w["user"].id, **{"x-request-id": "req-resolve"}))


def _kinds(events: list[ev.IssueEvent]) -> list[tuple[int, int]]:
    return [(e.group_id, e.kind) for e in events]


def test_backlog_then_live_events_in_commit_order_with_context(stub: Any, w: dict[str, Any]) -> None:
    g1, g2, g3 = (f.group(w["project"]) for _ in range(3))
    _resolve(stub, w, [g1.id])
    stream = _watch(stub, w, kinds=[ev.EVENT_KIND_ISSUE_RESOLVED])
    try:
        backlog = stream.wait_events(1)
        _resolve(stub, w, [g2.id, g3.id])
        events = stream.wait_events(3)
    finally:
        stream.close()
    assert _kinds(events) == [(g.id, ev.EVENT_KIND_ISSUE_RESOLVED) for g in (g1, g2, g3)]
    assert backlog[0].event_id == events[0].event_id
    assert [e.event_id for e in events] == sorted({e.event_id for e in events})
    first = events[0]
    assert (first.organization_id, first.project_id) == (w["org"].id, w["project"].id)
    assert (first.actor.user_id, first.actor.system) == (w["user"].id, False)
    assert first.request_id == "req-resolve"
    assert first.resolved.resolution_type == "now"
    assert first.occurred_at.seconds > 0


def test_resume_after_a_cursor_sends_only_later_events(stub: Any, w: dict[str, Any]) -> None:
    g1, g2 = f.group(w["project"]), f.group(w["project"])
    _resolve(stub, w, [g1.id])
    _resolve(stub, w, [g2.id])
    stream = _watch(stub, w, kinds=[ev.EVENT_KIND_ISSUE_RESOLVED])
    try:
        cursor = stream.wait_events(2)[0].event_id
    finally:
        stream.close()
    resumed = _watch(stub, w, after_event_id=cursor, kinds=[ev.EVENT_KIND_ISSUE_RESOLVED])
    try:
        events = drain(resumed)
    finally:
        resumed.close()
    assert _kinds(events) == [(g2.id, ev.EVENT_KIND_ISSUE_RESOLVED)]


def test_an_idle_stream_gets_heartbeats_carrying_a_safe_resume_cursor(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    _resolve(stub, w, [g.id])
    stream = _watch(stub, w)
    try:
        events = drain(stream)
        beat = stream.heartbeats[-1]
    finally:
        stream.close()
    assert beat.head_event_id >= events[-1].event_id
    assert beat.sent_at.seconds > 0


def test_filters_by_group_and_kind(stub: Any, w: dict[str, Any]) -> None:
    g1, g2, g3 = (f.group(w["project"]) for _ in range(3))
    single = pb.UpdateGroupRequest(
        organization_id=w["org"].id, group_id=g1.id, patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED)
    )
    stub.UpdateGroup(single, metadata=metadata(user_id=w["user"].id))
    _resolve(stub, w, [g2.id, g3.id])  # a bulk change sends no activity notification
    by_group = _watch(stub, w, group_ids=[g1.id])
    by_kind = _watch(stub, w, kinds=[ev.EVENT_KIND_ACTIVITY_NOTIFICATION])
    try:
        assert {e.group_id for e in drain(by_group)} == {g1.id}
        notified = drain(by_kind)
    finally:
        by_group.close()
        by_kind.close()
    assert _kinds(notified) == [(g1.id, ev.EVENT_KIND_ACTIVITY_NOTIFICATION)]
    assert notified[0].activity_notification.activity_type == 1


def test_refused_rolled_back_validate_only_and_cancelled_calls_emit_nothing(stub: Any, w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    _resolve(stub, w, [g.id], validate_only=True)
    bad = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED, status_details=pb.StatusDetailsUpdate(in_release="nope"))
    refused = pb.BulkUpdateGroupsRequest(organization_id=w["org"].id, group_ids=[g.id], patch=bad)
    with pytest.raises(grpc.RpcError) as invalid:
        stub.BulkUpdateGroups(refused, metadata=metadata(user_id=w["user"].id))
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as denied:  # a reader may not write
        _resolve_as(stub, w, [g.id], token="reader")
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The deadline passes after the writes, just before commit (the servicer passes
    # context.is_active as should_continue): the transaction, outbox rows included, rolls back.
    answers = iter([True, False])
    with pytest.raises(Cancelled):
        update.bulk_update(
            caller=Caller("writer", frozenset({"event:write"}), w["user"].id),
            selection_spec=Selection(organization_id=w["org"].id, group_ids=(g.id,)),
            command=UpdateCommand(status="resolved"),
            should_continue=lambda: next(answers),
        )
    assert Group.get_by_id(g.id).status == 0
    stream = _watch(stub, w)
    try:
        assert drain(stream) == []
    finally:
        stream.close()


def _resolve_as(stub: Any, w: dict[str, Any], ids: list[int], *, token: str) -> Any:
    request = pb.BulkUpdateGroupsRequest(
        organization_id=w["org"].id, group_ids=ids, patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED)
    )
    return stub.BulkUpdateGroups(request, metadata=metadata(token, user_id=w["user"].id))


def test_a_member_sees_only_projects_they_can_access(stub: Any, w: dict[str, Any]) -> None:
    hidden = f.project(w["org"])  # no team of the member
    g_seen, g_hidden = f.group(w["project"]), f.group(hidden)
    _resolve_as(stub, w, [g_seen.id], token="writer")
    system = pb.BulkUpdateGroupsRequest(
        organization_id=w["org"].id, group_ids=[g_hidden.id], patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED)
    )
    stub.BulkUpdateGroups(system, metadata=metadata("writer"))  # a system caller sees every project
    member = _watch(stub, w)
    system_watch = _watch(stub, w, user=False)
    try:
        assert {e.group_id for e in drain(member)} == {g_seen.id}
        assert {e.group_id for e in drain(system_watch)} == {g_seen.id, g_hidden.id}
    finally:
        member.close()
        system_watch.close()
    assert drain_error(_watch(stub, w, project_ids=[hidden.id])) == grpc.StatusCode.PERMISSION_DENIED


def drain_error(stream: Stream) -> grpc.StatusCode | None:
    error = stream.wait_error()
    return error.code() if error is not None else None  # type: ignore[attr-defined]


def test_other_organizations_are_isolated(stub: Any, w: dict[str, Any]) -> None:
    other = f.world()
    g = f.group(other["project"])
    _resolve(stub, other, [g.id])
    stream = _watch(stub, w)
    try:
        assert drain(stream) == []
    finally:
        stream.close()
    assert drain_error(_watch(stub, {"org": other["org"], "user": w["user"]})) == grpc.StatusCode.PERMISSION_DENIED
    missing = Stream(stub, ev.WatchIssueEventsRequest(organization_id=999_999_999), token="reader")
    assert drain_error(missing) == grpc.StatusCode.NOT_FOUND


def test_bad_requests_are_invalid_argument(stub: Any, w: dict[str, Any]) -> None:
    assert drain_error(_watch(stub, w, kinds=[99])) == grpc.StatusCode.INVALID_ARGUMENT
    assert drain_error(_watch(stub, w, after_event_id=-1)) == grpc.StatusCode.INVALID_ARGUMENT
    no_token = stub.WatchIssueEvents(ev.WatchIssueEventsRequest(organization_id=w["org"].id), timeout=10)
    with pytest.raises(grpc.RpcError) as unauthenticated:
        next(iter(no_token))
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_cursor_past_the_newest_event_is_out_of_range(stub: Any, w: dict[str, Any]) -> None:
    # Accepted, such a stream would stay silent for ever: every new event's id is below it.
    _resolve(stub, w, [f.group(w["project"]).id])
    store.stamp()
    head = store.head()
    at_head = _watch(stub, w, after_event_id=head)
    try:
        at_head.wait_heartbeats(1)
        assert at_head.error is None
    finally:
        at_head.close()
    for cursor in (head + 1, 2**63 - 1):
        stream = _watch(stub, w, after_event_id=cursor)
        error = stream.wait_error()
        assert error is not None
        assert error.code() == grpc.StatusCode.OUT_OF_RANGE  # type: ignore[attr-defined]
        assert f"past the newest event ({head})" in error.details()  # type: ignore[attr-defined]


def test_a_project_outside_the_organization_is_permission_denied(stub: Any, w: dict[str, Any]) -> None:
    elsewhere = f.world()["project"].id
    for user in (True, False):  # a member, and a system caller who sees the whole organization
        for project_id in (elsewhere, 987_654_321):
            stream = _watch(stub, w, user=user, project_ids=[w["project"].id, project_id])
            assert drain_error(stream) == grpc.StatusCode.PERMISSION_DENIED


def test_a_cursor_older_than_the_pruned_events_is_out_of_range(stub: Any, w: dict[str, Any]) -> None:
    _resolve(stub, w, [f.group(w["project"]).id])
    store.stamp()  # the sequence row exists once something was stamped
    EventSequence.update(pruned_through=EventSequence.next_seq + 5).execute()  # as if the relay pruned
    through = EventSequence.get().pruned_through
    try:
        assert drain_error(_watch(stub, w, after_event_id=through - 1)) == grpc.StatusCode.OUT_OF_RANGE
        from_oldest = _watch(stub, w)  # 0 means "from the oldest event kept"
        assert len(drain(from_oldest)) == 2  # what is still kept: resolved + notification
        from_oldest.close()
    finally:
        EventSequence.update(pruned_through=0).execute()


def test_opted_in_batches_carry_every_event_once_in_order(stub: Any, w: dict[str, Any]) -> None:
    groups = [f.group(w["project"]) for _ in range(50)]
    _resolve(stub, w, [g.id for g in groups[:30]])  # a backlog of 30: more than one batch
    stream = _watch(stub, w, kinds=[ev.EVENT_KIND_ISSUE_RESOLVED], max_events_per_message=25)
    try:
        stream.wait_events(30)
        _resolve(stub, w, [g.id for g in groups[30:]])  # 20 live ones, ready together
        events = stream.wait_events(50)
    finally:
        stream.close()
    assert [e.group_id for e in events] == [g.id for g in groups]
    assert [e.event_id for e in events] == sorted({e.event_id for e in events})
    assert sum(stream.batch_sizes) == 50  # every event came in an `events` message
    assert all(1 <= size <= 25 for size in stream.batch_sizes)
    assert max(stream.batch_sizes) > 1  # and they were batched, not one per message


def test_without_the_opt_in_every_message_holds_one_event(stub: Any, w: dict[str, Any]) -> None:
    groups = [f.group(w["project"]) for _ in range(5)]
    _resolve(stub, w, [g.id for g in groups])
    stream = _watch(stub, w, kinds=[ev.EVENT_KIND_ISSUE_RESOLVED], max_events_per_message=1)
    try:
        events = stream.wait_events(5)
    finally:
        stream.close()
    assert [e.group_id for e in events] == [g.id for g in groups]
    assert stream.batch_sizes == []


@pytest.mark.parametrize("size", [-1, 501])
def test_a_batch_size_out_of_range_is_invalid_argument_on_that_field(stub: Any, w: dict[str, Any], size: int) -> None:
    call = stub.WatchIssueEvents(
        ev.WatchIssueEventsRequest(organization_id=w["org"].id, max_events_per_message=size),
        metadata=metadata("reader", user_id=w["user"].id),
        timeout=10,
    )
    with pytest.raises(grpc.RpcError) as err:
        next(iter(call))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v[0] for v in field_violations(err.value)] == ["max_events_per_message"]


def test_an_unspecified_kind_is_refused_on_its_index_as_any_unknown_kind(stub: Any, w: dict[str, Any]) -> None:
    request = ev.WatchIssueEventsRequest(organization_id=w["org"].id, kinds=[ev.EVENT_KIND_ISSUE_RESOLVED, 0])
    with pytest.raises(grpc.RpcError) as err:
        next(iter(stub.WatchIssueEvents(request, metadata=metadata(), timeout=10)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == 'kinds[1]: "0" is not a valid choice.'
