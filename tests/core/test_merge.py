"""Merge at the core tier (§3.12): checks before writes, primary choice, moved rows, redirects."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from server.core import update
from server.core.enums import ActivityType, GroupStatus, SubscriptionReason
from server.core.errors import InvalidArgument, NotFound
from server.storage.models import (
    Activity,
    Group,
    GroupBookmark,
    GroupHash,
    GroupRedirect,
    GroupSubscription,
    utcnow,
)
from tests import factories as f
from tests.core.helpers import bulk, caller, single


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    return f.world()


def _aged(w: dict, days: int, **kw: Any) -> Group:
    return f.group(w["project"], first_seen=utcnow() - dt.timedelta(days=days), **kw)


def _status(group_id: int) -> tuple[int, int | None]:
    g = Group.get_by_id(group_id)
    return g.status, g.substatus


def test_merge_keeps_the_earliest_first_seen_and_parks_the_others(w: dict) -> None:
    young, oldest, middle = _aged(w, 1), _aged(w, 30), _aged(w, 10)
    result = bulk(w["org"].id, [young.id, oldest.id, middle.id], user_id=w["user"].id, merge=True)
    merge = result.applied.merge
    assert merge is not None
    assert (merge.parent, merge.children) == (oldest.id, sorted([young.id, middle.id]))
    assert _status(oldest.id) == (GroupStatus.UNRESOLVED, 3)
    assert _status(young.id) == _status(middle.id) == (GroupStatus.PENDING_MERGE, None)
    act = Activity.get((Activity.group == oldest.id) & (Activity.type == ActivityType.MERGE))
    assert act.user_id == w["user"].id
    assert act.data == {"issues": [{"id": cid} for cid in merge.children]}
    redirects = {r.previous_group_id: r.group_id for r in GroupRedirect.select()}
    assert redirects == {young.id: oldest.id, middle.id: oldest.id}
    assert {o.outcome for o in result.outcomes} == {"changed"}


def test_primary_ties_break_on_most_events_then_lowest_id(w: dict) -> None:
    seen = utcnow() - dt.timedelta(days=5)
    a = f.group(w["project"], first_seen=seen, times_seen=3)
    b = f.group(w["project"], first_seen=seen, times_seen=9)
    c = f.group(w["project"], first_seen=seen, times_seen=9)
    merge = bulk(w["org"].id, [a.id, b.id, c.id], merge=True).applied.merge
    assert merge is not None and merge.parent == b.id


def test_merge_primary_group_id_names_the_group_to_keep(w: dict) -> None:
    old, young = _aged(w, 30), _aged(w, 1)
    merge = bulk(w["org"].id, [old.id, young.id], merge=True, merge_primary_group_id=young.id).applied.merge
    assert merge is not None and (merge.parent, merge.children) == (young.id, [old.id])
    assert _status(old.id)[0] == GroupStatus.PENDING_MERGE


def test_merge_primary_group_id_outside_the_selection_is_refused(w: dict) -> None:
    a, b, outsider = _aged(w, 3), _aged(w, 2), _aged(w, 1)
    with pytest.raises(InvalidArgument) as exc:
        bulk(w["org"].id, [a.id, b.id], merge=True, merge_primary_group_id=outsider.id)
    assert exc.value.violations[0].field == "merge_primary_group_id"
    assert GroupRedirect.select().count() == 0


def test_merge_primary_group_id_without_merge_is_refused(w: dict) -> None:
    a, b = _aged(w, 3), _aged(w, 2)
    for merge in (None, False):
        with pytest.raises(InvalidArgument) as exc:
            bulk(w["org"].id, [a.id, b.id], merge=merge, merge_primary_group_id=a.id)
        assert exc.value.violations[0].field == "merge_primary_group_id"


def test_merge_across_projects_is_refused_before_any_other_field_is_written(w: dict) -> None:
    here, there = _aged(w, 3), f.group(f.sibling_project(w))
    with pytest.raises(InvalidArgument) as exc:
        bulk(
            w["org"].id,
            [here.id, there.id],
            user_id=w["user"].id,
            merge=True,
            is_bookmarked=True,
            priority=75,
        )
    violation = exc.value.violations[0]
    assert (violation.field, violation.description) == (
        "merge",
        "Merging across multiple projects is not supported",
    )
    assert GroupBookmark.select().count() == 0
    assert Group.get_by_id(here.id).priority_locked_at is None
    assert _status(there.id)[0] == GroupStatus.UNRESOLVED


def test_merge_of_non_error_issues_is_refused(w: dict) -> None:
    error, perf = _aged(w, 3), _aged(w, 2, type=1001)
    with pytest.raises(InvalidArgument) as exc:
        bulk(w["org"].id, [error.id, perf.id], merge=True)
    assert exc.value.violations[0].description == "Only error issues can be merged."
    assert _status(error.id)[0] == _status(perf.id)[0] == GroupStatus.UNRESOLVED


def test_merge_of_one_group_is_a_no_op(w: dict) -> None:
    g = _aged(w, 3)
    result = bulk(w["org"].id, [g.id], merge=True)
    assert result.applied.merge is None
    assert Activity.select().count() == 0 and GroupRedirect.select().count() == 0
    assert single(w["org"].id, g.id, merge=True).status == "unresolved"


def test_merge_moves_hashes_activities_subscriptions_and_bookmarks_without_duplicates(
    w: dict,
) -> None:
    primary, child_a, child_b = _aged(w, 30), _aged(w, 2), _aged(w, 1)
    p = w["project"]
    both, only_child, twice = w["user"], f.user(), f.user()
    for g, h in ((primary, "p"), (child_a, "a"), (child_b, "b")):
        GroupHash.create(project=p, hash=h * 32, group=g)
        Activity.create(project=p, group=g, type=ActivityType.NOTE, data={"text": h})
    GroupSubscription.create(group=primary, project=p, user=both, reason=SubscriptionReason.COMMENT)
    GroupSubscription.create(group=child_a, project=p, user=both, reason=SubscriptionReason.ASSIGNED)
    GroupSubscription.create(group=child_a, project=p, user=only_child, reason=SubscriptionReason.MENTIONED)
    GroupSubscription.create(group=child_a, project=p, user=twice, reason=SubscriptionReason.COMMENT)
    GroupSubscription.create(group=child_b, project=p, user=twice, reason=SubscriptionReason.BOOKMARK)
    GroupSubscription.create(group=child_b, project=p, team=w["team"], reason=SubscriptionReason.ASSIGNED)
    GroupBookmark.create(group=primary, project=p, user=both)
    GroupBookmark.create(group=child_a, project=p, user=both)
    GroupBookmark.create(group=child_b, project=p, user=twice)
    bulk(w["org"].id, [primary.id, child_a.id, child_b.id], merge=True)
    assert {h.group_id for h in GroupHash.select()} == {primary.id}
    notes = Activity.select().where((Activity.group == primary.id) & (Activity.type == ActivityType.NOTE))
    assert sorted(a.data["text"] for a in notes) == ["a", "b", "p"]
    subs = {
        (s.user_id, s.team_id): s.reason
        for s in GroupSubscription.select().where(GroupSubscription.group == primary.id)
    }
    assert subs == {
        (both.id, None): SubscriptionReason.COMMENT,  # the primary's own row wins
        (only_child.id, None): SubscriptionReason.MENTIONED,
        (twice.id, None): SubscriptionReason.COMMENT,  # the earlier child row wins
        (None, w["team"].id): SubscriptionReason.ASSIGNED,
    }
    assert GroupSubscription.select().where(GroupSubscription.group != primary.id).count() == 0
    marks = GroupBookmark.select().where(GroupBookmark.group == primary.id)
    assert sorted(b.user_id for b in marks) == sorted([both.id, twice.id])
    assert GroupBookmark.select().count() == 2


def test_a_merged_child_id_reaches_the_primary_for_reads_and_updates(w: dict) -> None:
    primary, child = _aged(w, 30), _aged(w, 1)
    bulk(w["org"].id, [primary.id, child.id], merge=True)
    read = update.get_group(caller=caller(), organization_id=w["org"].id, group_id=child.id)
    assert read.id == primary.id
    view = single(w["org"].id, child.id, priority=75)
    assert view.id == primary.id and view.priority == 75
    assert Group.get_by_id(child.id).priority != 75


def test_a_merged_child_without_redirect_is_not_found(w: dict) -> None:
    g = _aged(w, 1, status=GroupStatus.PENDING_MERGE, substatus=None)
    with pytest.raises(NotFound):
        single(w["org"].id, g.id, priority=75)


def test_merging_a_primary_again_repoints_the_earlier_redirects(w: dict) -> None:
    first, second, third = _aged(w, 10), _aged(w, 5), _aged(w, 30)
    bulk(w["org"].id, [first.id, second.id], merge=True)
    bulk(w["org"].id, [first.id, third.id], merge=True)
    redirects = {r.previous_group_id: r.group_id for r in GroupRedirect.select()}
    assert redirects == {second.id: third.id, first.id: third.id}
    assert single(w["org"].id, second.id).id == third.id


def test_merge_skips_groups_already_merged_away(w: dict) -> None:
    primary, child, parked = (
        _aged(w, 30),
        _aged(w, 2),
        _aged(w, 40, status=GroupStatus.PENDING_MERGE, substatus=None),
    )
    merge = bulk(w["org"].id, [primary.id, child.id, parked.id], merge=True).applied.merge
    assert merge is not None and (merge.parent, merge.children) == (primary.id, [child.id])
