"""A WatchIssueEvents stream reads its caller's access again while it lasts (--events-access-recheck):
access lost after the stream opened stops the events it covered, or ends the stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from server.storage.models import OrganizationMember, OrganizationMemberTeam
from server.transport.app import Running
from tests import factories as f
from tests.conftest import metadata
from tests.events.support import Stream, drain, ev, events_server, pb

RECHECK = 0.2  # seconds; the server's heartbeat is 0.3 s (support.events_server)


@pytest.fixture(scope="module")
def server(migrated: str) -> Iterator[Running]:
    running = events_server(migrated, events_access_recheck=RECHECK)
    yield running
    running.stop(0)


def _watch(stub: Any, w: dict[str, Any], **fields: Any) -> Stream:
    request = ev.WatchIssueEventsRequest(organization_id=w["org"].id, **fields)
    return Stream(stub, request, token="reader", user_id=w["user"].id)


def _resolve_as_system(stub: Any, w: dict[str, Any], group_id: int) -> None:
    request = pb.BulkUpdateGroupsRequest(
        organization_id=w["org"].id, group_ids=[group_id], patch=pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED)
    )
    stub.BulkUpdateGroups(request, metadata=metadata("writer"))  # no acting user: every project


def _leave_team(w: dict[str, Any]) -> None:
    member = OrganizationMember.get(organization=w["org"], user=w["user"])
    OrganizationMemberTeam.delete().where(OrganizationMemberTeam.member == member).execute()


def _after_a_recheck(stream: Stream) -> None:
    """Three more heartbeats (0.9 s) span several rechecks (every 0.2 s)."""
    seen = len(stream.heartbeats)
    stream.wait_heartbeats(seen + 3)
    assert len(stream.heartbeats) >= seen + 3, stream.error


def test_a_member_who_leaves_the_team_stops_receiving_its_projects_events(stub: Any) -> None:
    w = f.world()
    before, after = f.group(w["project"]), f.group(w["project"])
    stream = _watch(stub, w)
    try:
        _resolve_as_system(stub, w, before.id)
        assert before.id in {e.group_id for e in stream.wait_events(1)}
        _leave_team(w)
        _after_a_recheck(stream)
        _resolve_as_system(stub, w, after.id)
        assert after.id not in {e.group_id for e in drain(stream)}
    finally:
        stream.close()


def test_a_stream_of_a_named_project_ends_permission_denied_when_access_goes(stub: Any) -> None:
    w = f.world()
    stream = _watch(stub, w, project_ids=[w["project"].id])
    stream.wait_heartbeats(1)
    assert stream.error is None
    _leave_team(w)
    error = stream.wait_error(timeout=10)
    assert error is not None and error.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert "project" in error.details()  # type: ignore[attr-defined]
