"""Bookmarks, subscriptions, seen, sharing, priority, inbox at the core tier (§3.7, §3.9, §3.10)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from server.core.commands import Assignee
from server.core.enums import (
    ActivityType,
    GroupHistoryStatus,
    GroupStatus,
    GroupSubStatus,
    InboxReason,
    SubscriptionReason,
)
from server.core.errors import InvalidArgument
from server.storage.models import (
    Activity,
    Group,
    GroupAssignee,
    GroupBookmark,
    GroupHistory,
    GroupInbox,
    GroupSeen,
    GroupShare,
    GroupSubscription,
    utcnow,
)
from tests import factories as f
from tests.core.helpers import bulk, single
from tests.statements import recorded


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    return f.world()


def _types(group_id: int) -> list[int]:
    query = Activity.select().where(Activity.group == group_id).order_by(Activity.id)
    return [a.type for a in query]


def _sub(group_id: int, user_id: int) -> GroupSubscription | None:
    return GroupSubscription.get_or_none((GroupSubscription.group == group_id) & (GroupSubscription.user == user_id))


# --- bookmarks ----------------------------------------------------------------------------------


def test_bookmark_creates_the_row_and_subscribes_with_reason_bookmark(w: dict) -> None:
    g = f.group(w["project"])
    uid = w["user"].id
    result = bulk(w["org"].id, [g.id], user_id=uid, is_bookmarked=True)
    assert GroupBookmark.select().where((GroupBookmark.group == g.id) & (GroupBookmark.user == uid)).count() == 1
    sub = _sub(g.id, uid)
    assert sub is not None and (sub.is_active, sub.reason) == (True, SubscriptionReason.BOOKMARK)
    assert result.applied.is_bookmarked is True
    view = single(w["org"].id, g.id, user_id=uid)
    assert (view.is_bookmarked, view.is_subscribed, view.subscription_reason) == (
        True,
        True,
        "bookmarked",
    )


def test_bookmarking_twice_keeps_one_row(w: dict) -> None:
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], user_id=w["user"].id, is_bookmarked=True)
    second = bulk(w["org"].id, [g.id], user_id=w["user"].id, is_bookmarked=True)
    assert GroupBookmark.select().count() == 1
    assert second.outcomes[0].outcome == "unchanged"


def test_unbookmark_removes_bookmark_and_every_subscription_of_that_user_only(w: dict) -> None:
    g = f.group(w["project"])
    me, other = w["user"], f.user()
    bulk(w["org"].id, [g.id], user_id=me.id, is_bookmarked=True)
    GroupSubscription.update(reason=SubscriptionReason.COMMENT).execute()
    GroupSubscription.create(group=g, project=w["project"], user=other, reason=SubscriptionReason.COMMENT)
    bulk(w["org"].id, [g.id], user_id=me.id, is_bookmarked=False)
    assert GroupBookmark.select().count() == 0
    assert _sub(g.id, me.id) is None
    assert _sub(g.id, other.id) is not None


# --- subscriptions ------------------------------------------------------------------------------


def test_subscribe_writes_an_active_row_with_reason_unknown(w: dict) -> None:
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], user_id=w["user"].id, is_subscribed=True)
    sub = _sub(g.id, w["user"].id)
    assert sub is not None and (sub.is_active, sub.reason) == (True, SubscriptionReason.UNKNOWN)
    assert (result.applied.is_subscribed, result.applied.subscription_reason) == (True, "unknown")
    assert single(w["org"].id, g.id, user_id=w["user"].id).subscription_reason == "unknown"


def test_unsubscribe_overwrites_an_earlier_reason_and_reads_back_disabled(w: dict) -> None:
    g = f.group(w["project"])
    GroupSubscription.create(group=g, project=w["project"], user=w["user"], reason=SubscriptionReason.ASSIGNED)
    result = bulk(w["org"].id, [g.id], user_id=w["user"].id, is_subscribed=False)
    sub = _sub(g.id, w["user"].id)
    assert sub is not None and (sub.is_active, sub.reason) == (False, SubscriptionReason.UNKNOWN)
    assert (result.applied.is_subscribed, result.applied.subscription_reason) == (False, "unknown")
    view = single(w["org"].id, g.id, user_id=w["user"].id)
    assert (view.is_subscribed, view.subscription_disabled) == (False, True)


# --- seen ---------------------------------------------------------------------------------------


def test_has_seen_records_only_in_projects_where_the_user_is_a_team_member(w: dict) -> None:
    foreign_project = f.project(w["org"])  # the user is an org member but in none of its teams
    mine, theirs = f.group(w["project"]), f.group(foreign_project)
    result = bulk(w["org"].id, [mine.id, theirs.id], user_id=w["user"].id, has_seen=True)
    assert [s.group_id for s in GroupSeen.select()] == [mine.id]
    assert result.applied.has_seen is True
    assert single(w["org"].id, mine.id, user_id=w["user"].id).has_seen is True


def test_has_seen_again_refreshes_last_seen(w: dict) -> None:
    g = f.group(w["project"])
    old = utcnow() - dt.timedelta(days=3)
    GroupSeen.create(group=g, project=w["project"], user=w["user"], last_seen=old)
    bulk(w["org"].id, [g.id], user_id=w["user"].id, has_seen=True)
    assert GroupSeen.get().last_seen > old


def test_has_seen_false_deletes_the_users_rows(w: dict) -> None:
    g = f.group(w["project"])
    other = f.user()
    GroupSeen.create(group=g, project=w["project"], user=w["user"])
    GroupSeen.create(group=g, project=w["project"], user=other)
    bulk(w["org"].id, [g.id], user_id=w["user"].id, has_seen=False)
    assert [s.user_id for s in GroupSeen.select()] == [other.id]


@pytest.mark.parametrize("name", ["has_seen", "is_bookmarked", "is_subscribed"])
def test_per_user_fields_without_an_acting_user_are_refused_before_any_write(w: dict, name: str) -> None:
    g = f.group(w["project"], priority=50)
    with pytest.raises(InvalidArgument) as exc:
        bulk(w["org"].id, [g.id], priority=75, **{name: True})
    assert exc.value.violations[0].field == name
    assert "acting user" in exc.value.violations[0].description
    assert Group.get_by_id(g.id).priority == 50
    assert Activity.select().count() == 0


# --- sharing ------------------------------------------------------------------------------------


def test_is_public_creates_a_share_and_replies_with_its_id(w: dict) -> None:
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], user_id=w["user"].id, is_public=True)
    share = GroupShare.get(GroupShare.group == g.id)
    assert len(share.uuid) == 32 and share.user_id == w["user"].id
    assert (result.applied.is_public, result.applied.share_id) == (True, share.uuid)
    assert _types(g.id) == [ActivityType.SET_PUBLIC]
    assert single(w["org"].id, g.id).share_id == share.uuid


def test_is_public_again_regenerates_the_share_id_with_private_then_public(w: dict) -> None:
    g = f.group(w["project"])
    first = bulk(w["org"].id, [g.id], is_public=True).applied.share_id
    second = bulk(w["org"].id, [g.id], is_public=True).applied.share_id
    assert first != second and GroupShare.get().uuid == second
    assert _types(g.id) == [
        ActivityType.SET_PUBLIC,
        ActivityType.SET_PRIVATE,
        ActivityType.SET_PUBLIC,
    ]


def test_bulk_share_replies_with_the_last_share_created(w: dict) -> None:
    a, b = f.group(w["project"]), f.group(w["project"])
    result = bulk(w["org"].id, [a.id, b.id], is_public=True)
    assert GroupShare.select().count() == 2
    assert result.applied.share_id == GroupShare.get(GroupShare.group == b.id).uuid


def test_is_public_false_removes_the_share_and_writes_private_only_when_one_existed(
    w: dict,
) -> None:
    shared, plain = f.group(w["project"]), f.group(w["project"])
    bulk(w["org"].id, [shared.id], is_public=True)
    result = bulk(w["org"].id, [shared.id, plain.id], is_public=False)
    assert GroupShare.select().count() == 0
    assert _types(shared.id) == [ActivityType.SET_PUBLIC, ActivityType.SET_PRIVATE]
    assert _types(plain.id) == []
    assert (result.applied.is_public, result.applied.share_id) == (False, None)


# --- priority -----------------------------------------------------------------------------------


def test_priority_change_writes_activity_history_and_locks(w: dict) -> None:
    g = f.group(w["project"], priority=25)
    result = bulk(w["org"].id, [g.id], user_id=w["user"].id, priority=75)
    fresh = Group.get_by_id(g.id)
    assert (fresh.priority, fresh.priority_locked_at is not None) == (75, True)
    act = Activity.get(Activity.group == g.id)
    assert (act.type, act.user_id, act.data) == (
        26,
        w["user"].id,
        {"priority": "high", "reason": None},
    )
    assert GroupHistory.get(GroupHistory.group == g.id).status == GroupHistoryStatus.PRIORITY_HIGH
    assert result.applied.priority == 75


def test_same_priority_writes_no_activity_but_still_locks(w: dict) -> None:
    g = f.group(w["project"], priority=50)
    bulk(w["org"].id, [g.id], priority=50)
    assert Activity.select().count() == 0
    assert Group.get_by_id(g.id).priority_locked_at is not None


def test_same_priority_moves_the_etag_with_the_lock_time(w: dict) -> None:
    g = f.group(w["project"], priority=50)
    before = Group.get_by_id(g.id).version
    result = bulk(w["org"].id, [g.id], priority=50)
    # priority_locked_at changed, so the state did: an etag read before it no longer matches.
    assert Group.get_by_id(g.id).version == before + 1
    assert [o.outcome for o in result.outcomes] == ["changed"]


def test_priority_is_applied_before_the_status_change(w: dict) -> None:
    g = f.group(w["project"], priority=25)
    bulk(w["org"].id, [g.id], priority=50, status="resolved")
    assert _types(g.id) == [ActivityType.SET_PRIORITY, ActivityType.SET_RESOLVED]


# --- inbox --------------------------------------------------------------------------------------


def _inbox(g: Group, reason: InboxReason = InboxReason.NEW) -> None:
    GroupInbox.create(group=g, project=g.project_id, organization=g.project.organization_id, reason=int(reason))


def test_inbox_true_adds_with_reason_manual_and_keeps_existing_rows(w: dict) -> None:
    fresh, kept = f.group(w["project"]), f.group(w["project"])
    _inbox(kept, InboxReason.REGRESSION)
    result = bulk(w["org"].id, [fresh.id, kept.id], inbox=True)
    reasons = {r.group_id: r.reason for r in GroupInbox.select()}
    assert reasons == {fresh.id: InboxReason.MANUAL, kept.id: InboxReason.REGRESSION}
    assert result.applied.inbox == "added"


def test_mark_reviewed_deletes_the_row_and_writes_mark_reviewed_by_the_user(w: dict) -> None:
    g = f.group(w["project"], substatus=GroupSubStatus.ONGOING)
    _inbox(g)
    result = bulk(w["org"].id, [g.id], user_id=w["user"].id, inbox=False)
    assert GroupInbox.select().count() == 0
    act = Activity.get(Activity.group == g.id)
    assert (act.type, act.user_id) == (ActivityType.MARK_REVIEWED, w["user"].id)
    assert GroupHistory.get(GroupHistory.group == g.id).status == GroupHistoryStatus.REVIEWED
    assert result.applied.inbox == "reviewed"


def test_mark_reviewed_without_a_user_writes_no_mark_reviewed(w: dict) -> None:
    g = f.group(w["project"], substatus=GroupSubStatus.ONGOING)
    _inbox(g)
    bulk(w["org"].id, [g.id], inbox=False)
    assert GroupInbox.select().count() == 0
    assert _types(g.id) == []


def test_mark_reviewed_moves_a_new_group_to_ongoing_with_a_system_activity(w: dict) -> None:
    g = f.group(w["project"], substatus=GroupSubStatus.NEW)
    bulk(w["org"].id, [g.id], user_id=w["user"].id, inbox=False)
    assert Group.get_by_id(g.id).substatus == GroupSubStatus.ONGOING
    act = Activity.get(Activity.group == g.id)
    assert (act.type, act.user_id, act.data) == (
        ActivityType.AUTO_SET_ONGOING,
        None,
        {"manually": True},
    )
    assert GroupHistory.get(GroupHistory.group == g.id).status == GroupHistoryStatus.UNRESOLVED


def test_mark_reviewed_leaves_ongoing_and_resolved_groups_alone(w: dict) -> None:
    ongoing = f.group(w["project"], substatus=GroupSubStatus.ONGOING)
    done = f.group(w["project"], status=GroupStatus.RESOLVED, substatus=None)
    bulk(w["org"].id, [ongoing.id, done.id], inbox=False)
    assert Activity.select().count() == 0
    assert Group.get_by_id(done.id).substatus is None


def test_mark_reviewed_of_an_escalating_group_restores_its_initial_priority(w: dict) -> None:
    g = f.group(w["project"], substatus=GroupSubStatus.ESCALATING, priority=75,
                data={"metadata": {"initial_priority": 25}})  # fmt: skip
    bulk(w["org"].id, [g.id], inbox=False)
    fresh = Group.get_by_id(g.id)
    assert (fresh.substatus, fresh.priority) == (GroupSubStatus.ONGOING, 25)
    act = Activity.get((Activity.group == g.id) & (Activity.type == ActivityType.SET_PRIORITY))
    assert (act.user_id, act.data) == (None, {"priority": "low", "reason": "ongoing"})


def test_mark_reviewed_of_a_regressed_group_keeps_its_priority(w: dict) -> None:
    g = f.group(w["project"], substatus=GroupSubStatus.REGRESSED, priority=75,
                data={"metadata": {"initial_priority": 25}})  # fmt: skip
    bulk(w["org"].id, [g.id], inbox=False)
    assert Group.get_by_id(g.id).priority == 75
    assert _types(g.id) == [ActivityType.AUTO_SET_ONGOING]


def test_inbox_is_ignored_when_the_same_patch_resolves(w: dict) -> None:
    g = f.group(w["project"])
    _inbox(g)
    result = bulk(w["org"].id, [g.id], user_id=w["user"].id, status="resolved", inbox=True)
    assert GroupInbox.select().count() == 0
    assert ActivityType.MARK_REVIEWED not in _types(g.id)
    assert result.applied.inbox == "removed"


# --- statements do not grow with the selection (set-based writes) --------------------------------

PATCHES: dict[str, dict[str, Any]] = {
    "assign-user": {"assigned_to": Assignee("user_id", 0)},  # id filled in by the test
    "assign-team": {"assigned_to": Assignee("actor", "")},  # team filled in by the test
    "unassign": {"assigned_to": Assignee("unassign", True)},
    "bookmark": {"is_bookmarked": True},
    "unbookmark": {"is_bookmarked": False},
    "subscribe": {"is_subscribed": True},
    "seen": {"has_seen": True},
    "share": {"is_public": True},
    "unshare": {"is_public": False},
    "priority": {"priority": 75},
    "inbox-add": {"inbox": True},
    "mark-reviewed": {"inbox": False},
    "merge": {"merge": True},
}


def _prepared(w: dict, n: int, previous: Any) -> list[int]:
    """n groups, each with prior state so the change, removal and activity paths all run."""
    ids = []
    for _ in range(n):
        g = f.group(w["project"], substatus=GroupSubStatus.ESCALATING, priority=25,
                    data={"metadata": {"initial_priority": 50}})  # fmt: skip
        GroupAssignee.create(group=g, project=w["project"], team=previous)
        GroupShare.create(group=g, project=w["project"], uuid=uuid.uuid4().hex)
        GroupBookmark.create(group=g, project=w["project"], user=w["user"])
        _inbox(g)
        ids.append(g.id)
    return ids


def _statements(run: Any) -> list[str]:
    with recorded() as seen:
        run()
    return seen


@pytest.mark.parametrize("kind", sorted(PATCHES))
def test_statement_count_is_the_same_for_1_and_200_groups(w: dict, kind: str) -> None:
    previous = f.team(w["org"], projects=(w["project"],))
    for extra in (f.user(), f.user()):  # two members: 200 groups stay within one 500-row batch
        f.member(w["org"], extra, teams=(previous,))
    patch = dict(PATCHES[kind])
    if kind == "assign-user":
        patch["assigned_to"] = Assignee("user_id", w["user"].id)
    if kind == "assign-team":
        patch["assigned_to"] = Assignee("actor", f"team:{w['team'].id}")
    counts = []
    for n in (2 if kind == "merge" else 1, 200):  # merging one group is a no-op
        ids = _prepared(w, n, previous)
        statements = _statements(lambda ids=ids: bulk(w["org"].id, ids, user_id=w["user"].id, **patch))
        counts.append(len(statements))
    assert counts[0] == counts[1], kind
    assert counts[0] <= 25
