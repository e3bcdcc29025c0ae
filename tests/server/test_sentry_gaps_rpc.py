"""Issue 14's gaps to Sentry, through gRPC: reply keys, codes, details and the rows left behind."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from issues.v1 import group_pb2
from issues.v1 import issue_service_pb2 as pb

from server.core import settings
from server.storage.models import (
    Activity,
    Group,
    GroupBookmark,
    GroupInbox,
    GroupRedirect,
    GroupResolution,
    OutboxEvent,
    utcnow,
)
from tests import factories as f
from tests.conftest import metadata
from tests.server.test_bulk_rpc import violations


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    return f.world()


def _bulk(stub: Any, w: dict, ids: list[int], **patch: Any) -> pb.BulkUpdateGroupsResponse:
    request = pb.BulkUpdateGroupsRequest(organization_id=w["org"].id, group_ids=ids, patch=pb.GroupPatch(**patch))
    return stub.BulkUpdateGroups(request, metadata=metadata(user_id=w["user"].id))


def _in_commit(key: str = "abc123", repo: str = "acme/app") -> pb.StatusDetailsUpdate:
    return pb.StatusDetailsUpdate(in_commit=pb.InCommit(commit=key, repository=repo))


def test_a_commit_in_a_release_is_stored_in_release_so_one_group_gets_its_activities(stub: Any, w: dict) -> None:
    release = f.release(w["project"], "1.0")
    f.commit(w["org"], releases=(release,))
    g = f.group(w["project"])
    reply = _bulk(stub, w, [g.id], status=pb.STATUS_UPDATE_RESOLVED, status_details=_in_commit())
    assert GroupResolution.get(GroupResolution.group == g.id).type == 0  # in_release
    kinds = [a.type for a in reply.applied.activities]
    assert kinds == [group_pb2.ACTIVITY_TYPE_SET_RESOLVED_IN_COMMIT, group_pb2.ACTIVITY_TYPE_FIRST_SEEN]
    assert reply.applied.activities[0].id == Activity.get(Activity.group == g.id).id


def test_an_undeployed_commit_stores_no_resolution_and_the_reply_has_no_activities(stub: Any, w: dict) -> None:
    f.commit(w["org"])
    g = f.group(w["project"])
    reply = _bulk(stub, w, [g.id], status=pb.STATUS_UPDATE_RESOLVED, status_details=_in_commit())
    assert not GroupResolution.select().exists()
    assert list(reply.applied.activities) == []


def test_resolving_only_resolved_groups_claims_no_inbox_change_and_keeps_inbox_rows(stub: Any, w: dict) -> None:
    done = [f.group(w["project"], status=1, substatus=None) for _ in range(2)]
    for g in done:
        GroupInbox.create(group=g, project=w["project"], organization=w["org"], reason=0, date_added=utcnow())
    reply = _bulk(stub, w, [g.id for g in done], status=pb.STATUS_UPDATE_RESOLVED)
    assert reply.applied.inbox == pb.INBOX_CHANGE_UNSPECIFIED
    assert reply.applied.status == pb.STATUS_UPDATE_RESOLVED
    assert GroupInbox.select().count() == 2
    assert [o.outcome for o in reply.outcomes] == [pb.OUTCOME_UNCHANGED] * 2


def test_resolving_a_mix_removes_only_the_resolved_groups_inbox_rows(stub: Any, w: dict) -> None:
    done, todo = f.group(w["project"], status=1, substatus=None), f.group(w["project"])
    for g in (done, todo):
        GroupInbox.create(group=g, project=w["project"], organization=w["org"], reason=0, date_added=utcnow())
    reply = _bulk(stub, w, [done.id, todo.id], status=pb.STATUS_UPDATE_RESOLVED)
    assert reply.applied.inbox == pb.INBOX_CHANGE_REMOVED
    assert [r.group_id for r in GroupInbox.select()] == [done.id]


def test_merge_with_one_group_changes_nothing_and_echoes_the_flag(stub: Any, w: dict) -> None:
    g = f.group(w["project"])
    before = Group.get_by_id(g.id)
    reply = _bulk(stub, w, [g.id], merge=True)
    assert reply.applied.HasField("merge_echo") and reply.applied.merge_echo is True
    assert not reply.applied.HasField("merge")
    after = Group.get_by_id(g.id)
    assert (after.status, after.version) == (before.status, before.version)
    assert [o.outcome for o in reply.outcomes] == [pb.OUTCOME_UNCHANGED]
    assert not Activity.select().exists()


def test_a_real_merge_does_not_echo_the_flag(stub: Any, w: dict) -> None:
    a, b = f.group(w["project"]), f.group(w["project"])
    reply = _bulk(stub, w, [a.id, b.id], merge=True)
    assert reply.applied.HasField("merge") and not reply.applied.HasField("merge_echo")


@pytest.fixture()
def configure() -> Iterator[Callable[..., None]]:
    """Install settings in the in-process server for one test, then restore the defaults."""

    def apply(**kw: Any) -> None:
        settings.configure(settings.load(environ={k: json.dumps(v) for k, v in kw.items()}))

    yield apply
    settings.configure(settings.Settings())


def _refused_bulk(stub: Any, w: dict, ids: list[int], **patch: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        _bulk(stub, w, ids, **patch)
    return caught.value


def test_merge_of_a_group_seen_more_than_the_option_is_refused_before_any_write(
    stub: Any, w: dict, configure: Callable[..., None]
) -> None:
    configure(ISSUES_OPTIONS={settings.MAX_GROUP_TIMES_SEEN: 100})
    a, b = f.group(w["project"], times_seen=101), f.group(w["project"], times_seen=3)
    err = _refused_bulk(stub, w, [a.id, b.id], merge=True, is_bookmarked=True)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "temporarily restricted" in err.details()
    assert [v[0] for v in violations(err)] == ["patch.merge"]
    assert [g.status for g in Group.select().order_by(Group.id)] == [0, 0]
    assert not GroupRedirect.select().exists() and not GroupBookmark.select().exists()
    assert not OutboxEvent.select().exists()


def test_merge_at_the_limit_or_with_the_option_at_zero_goes_ahead(
    stub: Any, w: dict, configure: Callable[..., None]
) -> None:
    configure(ISSUES_OPTIONS={settings.MAX_GROUP_TIMES_SEEN: 100})
    a, b = f.group(w["project"], times_seen=100), f.group(w["project"], times_seen=1)
    assert _bulk(stub, w, [a.id, b.id], merge=True).applied.HasField("merge")
    configure(ISSUES_OPTIONS={settings.MAX_GROUP_TIMES_SEEN: 0})
    c, d = f.group(w["project"], times_seen=10**9), f.group(w["project"])
    assert _bulk(stub, w, [c.id, d.id], merge=True).applied.HasField("merge")


def test_a_feature_flag_from_configuration_enables_discard_for_that_organization_only(
    stub: Any, w: dict, configure: Callable[..., None]
) -> None:
    g = f.group(w["project"])
    configure(ISSUES_FEATURES={"projects:discard-groups": [w["org"].id + 1000]})
    patch = pb.GroupPatch(discard=True)
    request = pb.BulkUpdateGroupsRequest(organization_id=w["org"].id, group_ids=[g.id], patch=patch)
    with pytest.raises(grpc.RpcError) as caught:
        stub.BulkUpdateGroups(request, metadata=metadata("admin", w["user"].id))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    configure(ISSUES_FEATURES={"projects:discard-groups": [w["org"].slug]})
    assert stub.BulkUpdateGroups(request, metadata=metadata("admin", w["user"].id)).applied.discard is True
    assert Group.get_by_id(g.id).status == 3
