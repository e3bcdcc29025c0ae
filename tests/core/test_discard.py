"""Discard at the core tier (§3.11): scope, feature, error issues only, tombstones and deletion."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from server.core import update
from server.core.commands import ADMIN_SCOPES, READ_SCOPES, IgnoreConditions, Selection, UpdateCommand
from server.core.context import BulkResult
from server.core.enums import GroupStatus, InboxReason
from server.core.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from server.storage.models import Group, GroupHash, GroupInbox, GroupTombstone, OutboxEvent
from tests import factories as f
from tests.core.helpers import caller
from tests.statements import recorded

ADMIN = READ_SCOPES | ADMIN_SCOPES
FEATURE = "projects:discard-groups"


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    world = f.world()
    world["org"].features = [FEATURE]
    world["org"].save()
    return world


def _discard(w: dict, ids: list[int], *, scopes: frozenset[str] = ADMIN, **patch: Any) -> BulkResult:
    return update.bulk_update(
        caller=caller(w["user"].id, scopes=scopes),
        selection_spec=Selection(organization_id=w["org"].id, group_ids=tuple(ids)),
        command=UpdateCommand(**{"discard": True, **patch}),
    )


def _untouched(*groups: Group) -> bool:
    fresh = [Group.get_by_id(g.id) for g in groups]
    return GroupTombstone.select().count() == 0 and all(g.status == GroupStatus.UNRESOLVED for g in fresh)


def test_discard_tombstones_the_group_repoints_hashes_and_deletes_it(w: dict) -> None:
    g = f.group(w["project"], level=30, message="boom", culprit="app.views", data={"metadata": {"k": 1}})
    other = f.group(w["project"])
    GroupHash.create(project=w["project"], hash="a" * 32, group=g)
    GroupHash.create(project=w["project"], hash="b" * 32, group=g)
    GroupHash.create(project=w["project"], hash="c" * 32, group=other)
    GroupInbox.create(group=g, project=w["project"], organization=w["org"], reason=InboxReason.NEW)
    result = _discard(w, [g.id])
    tomb = GroupTombstone.get(GroupTombstone.previous_group_id == g.id)
    copied = (tomb.project_id, tomb.level, tomb.message, tomb.culprit, tomb.data, tomb.actor_id)
    assert copied == (
        w["project"].id,
        30,
        "boom",
        "app.views",
        {"metadata": {"k": 1}},
        w["user"].id,
    )
    hashes = {h.hash[0]: (h.group_id, h.group_tombstone_id) for h in GroupHash.select()}
    assert hashes == {"a": (None, tomb.id), "b": (None, tomb.id), "c": (other.id, None)}
    fresh = Group.get_by_id(g.id)
    assert (fresh.status, fresh.substatus) == (GroupStatus.PENDING_DELETION, None)
    assert GroupInbox.select().count() == 0
    event = OutboxEvent.get(OutboxEvent.group_id == g.id)
    assert (event.kind, event.payload) == ("issue.deleted", {"delete_type": "discard"})
    assert result.applied.discard is True
    assert Group.get_by_id(other.id).status == GroupStatus.UNRESOLVED


def test_bulk_discard_gives_each_group_its_own_tombstone(w: dict) -> None:
    groups = [f.group(w["project"]) for _ in range(3)]
    for i, g in enumerate(groups):
        GroupHash.create(project=w["project"], hash=str(i) * 32, group=g)
    _discard(w, [g.id for g in groups])
    tombs = {t.previous_group_id: t.id for t in GroupTombstone.select()}
    assert set(tombs) == {g.id for g in groups}
    assert {h.group_tombstone_id for h in GroupHash.select()} == set(tombs.values())
    assert {Group.get_by_id(g.id).status for g in groups} == {GroupStatus.PENDING_DELETION}


def test_a_group_that_already_has_a_tombstone_is_skipped(w: dict) -> None:
    g = f.group(w["project"])
    GroupTombstone.create(previous_group_id=g.id, project=w["project"])
    GroupHash.create(project=w["project"], hash="a" * 32, group=g)
    _discard(w, [g.id])
    assert GroupTombstone.select().count() == 1
    assert Group.get_by_id(g.id).status == GroupStatus.UNRESOLVED
    assert GroupHash.get().group_id == g.id


def test_discard_needs_the_admin_scope(w: dict) -> None:
    g = f.group(w["project"])
    with pytest.raises(PermissionDenied) as exc:
        _discard(w, [g.id], scopes=READ_SCOPES - ADMIN_SCOPES)
    assert exc.value.message == "You do not have permission to discard events"
    assert _untouched(g)


def test_discard_needs_the_organization_feature(w: dict) -> None:
    w["org"].features = []
    w["org"].save()
    g = f.group(w["project"])
    with pytest.raises(FailedPrecondition) as exc:
        _discard(w, [g.id])
    assert exc.value.message == "You do not have that feature enabled"
    assert _untouched(g)


def test_discard_of_a_non_error_issue_is_refused_for_the_whole_selection(w: dict) -> None:
    error, perf = f.group(w["project"]), f.group(w["project"], type=1001)
    with pytest.raises(InvalidArgument) as exc:
        _discard(w, [error.id, perf.id])
    assert exc.value.violations[0].description == "Only error issues can be discarded."
    assert _untouched(error, perf)


@pytest.mark.parametrize("discard", [True, False])
def test_discard_with_another_field_is_refused(w: dict, discard: bool) -> None:
    g = f.group(w["project"])
    with pytest.raises(InvalidArgument) as exc:
        _discard(w, [g.id], discard=discard, is_public=True, top_level_ignore=IgnoreConditions(count=5))
    assert exc.value.message == "Other attributes cannot be updated when discarding"
    fields = [(v.field, v.description) for v in exc.value.violations]
    assert fields == [
        ("is_public", "Cannot be updated when discarding."),
        ("ignore_count", "Cannot be updated when discarding."),
    ]
    assert _untouched(g)


def test_discard_false_alone_changes_nothing(w: dict) -> None:
    g = f.group(w["project"])
    result = _discard(w, [g.id], discard=False)
    assert _untouched(g)
    assert result.applied.discard is None


def test_discard_false_needs_no_admin_scope(w: dict) -> None:
    writer = READ_SCOPES - ADMIN_SCOPES
    g = f.group(w["project"])
    result = _discard(w, [g.id], scopes=writer, discard=False)
    assert _untouched(g)
    assert result.applied.discard is None
    with pytest.raises(InvalidArgument, match="Other attributes cannot be updated when discarding"):
        _discard(w, [g.id], scopes=writer, discard=False, is_public=True)
    assert _untouched(g)


def test_discard_statement_count_is_the_same_for_1_and_200_groups(w: dict) -> None:
    counts = []
    for n in (1, 200):
        groups = [f.group(w["project"]) for _ in range(n)]
        for g in groups:
            GroupHash.create(project=w["project"], hash=uuid.uuid4().hex, group=g)
            GroupInbox.create(group=g, project=w["project"], organization=w["org"], reason=0)
        with recorded() as seen:
            _discard(w, [g.id for g in groups])
        counts.append(len(seen))
    assert counts[0] == counts[1] <= 25


def test_discard_through_the_single_update_returns_the_group_pending_deletion(w: dict) -> None:
    g = f.group(w["project"])
    view = update.update_group(
        caller=caller(w["user"].id, scopes=ADMIN),
        organization_id=w["org"].id,
        group_id=g.id,
        command=UpdateCommand(discard=True),
    )
    assert view.status == "pending_deletion"
    assert GroupTombstone.get().previous_group_id == g.id
