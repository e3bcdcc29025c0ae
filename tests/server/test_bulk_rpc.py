"""BulkUpdateGroups and StreamBulkUpdateGroups over gRPC: search, paging, request ids, streaming."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from issues.v1 import issue_service_pb2 as pb

from server.core import selection, update
from server.core.commands import Caller
from server.storage.models import Activity, Environment, Group, IdempotencyRecord, utcnow
from server.transport import auth
from server.transport.servicer import IssueServicer
from tests import factories as f
from tests.conftest import metadata
from tests.core.test_paging import many_groups

RESOLVE = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED)


@pytest.fixture()
def w(database: str) -> dict:
    return f.world()


def violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    out = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out += [(v.field, v.description) for v in bad.field_violations]
    return out


def refused(call: Any, request: Any, **md: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, metadata=metadata(**md))
    return caught.value


def bulk_request(w: dict, **kw: Any) -> pb.BulkUpdateGroupsRequest:
    return pb.BulkUpdateGroupsRequest(organization_id=w["org"].id, patch=RESOLVE, **kw)


def test_a_query_selects_and_reports_per_group_outcomes(stub: Any, w: dict) -> None:
    high = f.group(w["project"], priority=75)
    done = f.group(w["project"], priority=75, status=1, substatus=None)
    f.group(w["project"], priority=25)
    reply = stub.BulkUpdateGroups(bulk_request(w, query="priority:high"), metadata=metadata())
    assert list(reply.matched_group_ids) == [high.id, done.id]
    assert [(o.group_id, o.outcome) for o in reply.outcomes] == [
        (high.id, pb.OUTCOME_CHANGED),
        (done.id, pb.OUTCOME_UNCHANGED),
    ]
    assert (reply.matched_count, reply.truncated, reply.next_page_token) == (2, False, "")
    assert reply.applied.status == pb.STATUS_UPDATE_RESOLVED


def test_an_invalid_query_names_the_token_and_position(stub: Any, w: dict) -> None:
    f.group(w["project"])
    err = refused(stub.BulkUpdateGroups, bulk_request(w, query="assigned:me foo:bar"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Invalid query. Error getting group ids and group list" in err.details()
    [(field, description)] = violations(err)
    assert field == "query"
    assert 'unknown key "foo" at position 12' in description
    assert Group.select().where(Group.status == 1).count() == 0


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("(is:unresolved", 'parentheses are not supported in this search: "(" at position 0'),
        ("is:unresolved (", 'parentheses are not supported in this search: "(" at position 14'),
        ("is:unresolved OR is:ignored", 'not supported in this search: "OR" at position 14'),
    ],
)
def test_boolean_operators_and_parentheses_are_invalid_not_free_text(
    stub: Any, w: dict, query: str, problem: str
) -> None:
    f.group(w["project"], title="(is:unresolved OR is:ignored")
    err = refused(stub.BulkUpdateGroups, bulk_request(w, query=query))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = violations(err)
    assert field == "query"
    assert description.startswith("Invalid query. Error getting group ids and group list")
    assert problem in description
    assert Group.select().where(Group.status == 1).count() == 0


def test_a_bad_page_token_is_an_invalid_cursor(stub: Any, w: dict) -> None:
    f.group(w["project"])
    err = refused(stub.BulkUpdateGroups, bulk_request(w, query="", page_token="nope"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(err) == [("page_token", "Invalid cursor parameter.")]


def test_an_unknown_environment_is_not_found(stub: Any, w: dict) -> None:
    Environment.create(organization=w["org"], name="production")
    f.group(w["project"])
    err = refused(stub.BulkUpdateGroups, bulk_request(w, environments=["staging"]))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "Environment not found" in err.details()
    # A NUL can be in no name: the edge limits refuse it on the field (issue 12).
    err = refused(stub.BulkUpdateGroups, bulk_request(w, environments=["production", "nul\x00"]))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(err) == [("environments[1]", "Null characters are not allowed.")]


def test_a_truncated_search_continues_with_the_token_over_grpc(stub: Any, w: dict) -> None:
    ids = many_groups(w["project"], 1001)
    first = stub.BulkUpdateGroups(bulk_request(w), metadata=metadata())
    assert (first.matched_count, first.truncated, len(first.matched_group_ids)) == (
        1001,
        True,
        1000,
    )
    rest = stub.BulkUpdateGroups(bulk_request(w, page_token=first.next_page_token), metadata=metadata())
    assert (rest.truncated, rest.next_page_token, len(rest.matched_group_ids)) == (False, "", 1)
    assert Group.select().where(Group.status == 1).count() == len(ids)


def test_a_retry_with_the_same_request_id_replays_the_reply_and_applies_nothing(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    request = bulk_request(w, group_ids=[g.id], request_id="retry-1")
    first = stub.BulkUpdateGroups(request, metadata=metadata())
    Group.update(status=0, substatus=3).where(Group.id == g.id).execute()  # someone reopens it
    again = stub.BulkUpdateGroups(request, metadata=metadata())
    assert again == first
    assert Group.get_by_id(g.id).status == 0  # the retry did not resolve it again
    assert Activity.select().where(Activity.group == g.id).count() == 1
    assert IdempotencyRecord.select().count() == 1


def test_the_same_request_id_with_another_body_is_refused(stub: Any, w: dict) -> None:
    a, b = f.group(w["project"]), f.group(w["project"])
    stub.BulkUpdateGroups(bulk_request(w, group_ids=[a.id], request_id="k"), metadata=metadata())
    err = refused(stub.BulkUpdateGroups, bulk_request(w, group_ids=[b.id], request_id="k"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations(err)] == ["request_id"]
    assert Group.get_by_id(b.id).status == 0
    other_token = stub.BulkUpdateGroups(
        bulk_request(w, group_ids=[b.id], request_id="k"), metadata=metadata(token="admin")
    )
    assert list(other_token.matched_group_ids) == [b.id]  # request ids are per token


def test_an_expired_request_id_applies_again(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    request = bulk_request(w, group_ids=[g.id], request_id="old")
    stub.BulkUpdateGroups(request, metadata=metadata())
    IdempotencyRecord.update(created_at=utcnow() - dt.timedelta(hours=25)).execute()
    Group.update(status=0, substatus=3).where(Group.id == g.id).execute()
    reply = stub.BulkUpdateGroups(request, metadata=metadata())
    assert reply.outcomes[0].outcome == pb.OUTCOME_CHANGED
    assert Group.get_by_id(g.id).status == 1
    assert IdempotencyRecord.select().count() == 1


def test_a_dry_run_stores_no_request_id_and_writes_nothing(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    reply = stub.BulkUpdateGroups(
        bulk_request(w, group_ids=[g.id], request_id="dry", validate_only=True), metadata=metadata()
    )
    assert reply.validate_only and reply.outcomes[0].outcome == pb.OUTCOME_CHANGED
    assert IdempotencyRecord.select().count() == 0
    assert Group.get_by_id(g.id).status == 0


def test_a_failed_call_stores_no_request_id(stub: Any, w: dict) -> None:
    f.group(w["project"])
    refused(stub.BulkUpdateGroups, bulk_request(w, query="foo:bar", request_id="bad"))
    assert IdempotencyRecord.select().count() == 0


def test_update_group_replays_a_request_id(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    request = pb.UpdateGroupRequest(organization_id=w["org"].id, group_id=g.id, patch=RESOLVE, request_id="single")
    first = stub.UpdateGroup(request, metadata=metadata())
    again = stub.UpdateGroup(request, metadata=metadata())
    assert again == first
    assert Activity.select().where(Activity.group == g.id).count() == 1


def test_a_request_id_longer_than_128_characters_is_refused(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    err = refused(stub.BulkUpdateGroups, bulk_request(w, group_ids=[g.id], request_id="x" * 129))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in violations(err)] == ["request_id"]


def test_concurrent_calls_with_one_request_id_apply_once(stub: Any, w: dict) -> None:
    groups = [f.group(w["project"]) for _ in range(20)]
    request = bulk_request(w, group_ids=[g.id for g in groups], request_id="race")
    start = threading.Barrier(4)
    replies: list[Any] = []

    def send() -> None:
        start.wait()
        replies.append(stub.BulkUpdateGroups(request, metadata=metadata()))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(replies) == 4 and all(r == replies[0] for r in replies)
    assert Activity.select().count() == len(groups)  # one SET_RESOLVED per group, not four
    assert IdempotencyRecord.select().count() == 1


def test_the_stream_reports_each_committed_chunk(stub: Any, w: dict) -> None:
    ids = many_groups(w["project"], 1003)
    messages = list(stub.StreamBulkUpdateGroups(bulk_request(w), metadata=metadata()))
    assert [(m.chunk_index, m.processed_count, m.committed, m.done) for m in messages] == [
        (0, 1000, True, False),
        (1, 1003, True, True),
    ]
    assert messages[0].chunk.matched_count == 1003 and messages[0].chunk.truncated
    streamed = [i for m in messages for i in m.chunk.matched_group_ids]
    assert sorted(streamed) == sorted(ids)
    assert Group.select().where(Group.status == 1).count() == 1003


def test_a_dry_run_stream_reports_uncommitted_chunks_and_writes_nothing(stub: Any, w: dict) -> None:
    many_groups(w["project"], 1001)
    messages = list(stub.StreamBulkUpdateGroups(bulk_request(w, validate_only=True), metadata=metadata()))
    assert [(m.processed_count, m.committed, m.done) for m in messages] == [
        (1000, False, False),
        (1001, False, True),
    ]
    assert Group.select().where(Group.status == 1).count() == 0


def test_the_stream_refuses_bad_input_and_unauthenticated_callers(stub: Any, w: dict) -> None:
    f.group(w["project"])
    err = refused(lambda r, **kw: list(stub.StreamBulkUpdateGroups(r, **kw)), bulk_request(w, query="x:y"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(err)[0][0] == "query"
    err = refused(lambda r, **kw: list(stub.StreamBulkUpdateGroups(r, **kw)), bulk_request(w, request_id="r"))
    assert violations(err)[0][0] == "request_id"
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.StreamBulkUpdateGroups(bulk_request(w)))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert Group.select().where(Group.status == 1).count() == 0


def test_cancelling_the_stream_keeps_whole_committed_chunks_only(
    stub: Any, w: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    many_groups(w["project"], 3000)
    finished = threading.Event()
    chunks = update.bulk_update_chunks

    def watched(**kw: Any) -> Any:
        try:
            yield from chunks(**kw)
        finally:
            finished.set()  # the server let go of the selection: no chunk is still running

    monkeypatch.setattr(update, "bulk_update_chunks", watched)
    call = stub.StreamBulkUpdateGroups(bulk_request(w), metadata=metadata())
    first = next(call)
    call.cancel()
    assert first.committed and first.processed_count == 1000
    assert finished.wait(timeout=300)
    resolved = Group.select().where(Group.status == 1).count()
    assert resolved >= 1000 and resolved % 1000 == 0  # every chunk applies fully or not at all


class StoppedAfterFirstMessage:
    """A servicer context whose client goes away as soon as one message was sent."""

    def __init__(self) -> None:
        self.sent = 0

    def is_active(self) -> bool:
        return self.sent == 0

    def time_remaining(self) -> float | None:
        return None  # no deadline


def test_the_stream_stops_before_the_next_chunk_once_the_client_is_gone(
    w: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selection, "MAX_IDS", 10)
    many_groups(w["project"], 35)
    context = StoppedAfterFirstMessage()
    monkeypatch.setattr(auth._local, "caller", Caller("writer", frozenset({"event:write"})), raising=False)
    sent = []
    for message in IssueServicer().StreamBulkUpdateGroups(bulk_request(w), context):  # type: ignore[arg-type]
        sent.append(message)
        context.sent += 1
    assert [(m.chunk_index, m.processed_count, m.done) for m in sent] == [(0, 10, False)]
    assert Group.select().where(Group.status == 1).count() == 10


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    query=st.none() | st.text(max_size=30),
    environments=st.lists(st.text(max_size=8), max_size=2),
    page_token=st.text(max_size=20),
    sort=st.integers(min_value=-1, max_value=6),
    project_ids=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=2),
)
def test_any_selection_gets_a_precise_answer_never_internal(
    stub: Any, w: dict, query: str | None, environments: list[str], page_token: str, sort: int,
    project_ids: list[int],
) -> None:  # fmt: skip
    request = bulk_request(w, environments=environments, page_token=page_token, sort=sort,  # type: ignore[arg-type]
                           project_ids=project_ids, validate_only=True)  # fmt: skip
    if query is not None:
        request.query = query
    try:
        stub.BulkUpdateGroups(request, metadata=metadata())
    except grpc.RpcError as err:
        # PERMISSION_DENIED only for a named project that is not one of the organization's
        assert err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND) or (
            err.code() == grpc.StatusCode.PERMISSION_DENIED and set(project_ids) - {w["project"].id}
        )
