"""Status changes at the core tier: resolve, unresolve, ignore, as sentry-semantics §3.3-§3.6."""

from __future__ import annotations

import datetime as dt

import pytest

from server.core.commands import IgnoreConditions, StatusDetails
from server.core.enums import ActivityType, GroupStatus, GroupSubStatus, SubscriptionReason
from server.core.errors import InvalidArgument, NotFound
from server.storage.models import (
    Activity,
    Group,
    GroupHistory,
    GroupInbox,
    GroupResolution,
    GroupSnooze,
    GroupSubscription,
    OutboxEvent,
    utcnow,
)
from tests import factories as f
from tests.core.helpers import bulk, single


@pytest.fixture()
def w(database: str) -> dict:
    return f.world()


def test_resolve_sets_status_and_clears_substatus_and_inbox(w: dict) -> None:
    g = f.group(w["project"])
    GroupInbox.create(group=g, project=w["project"], organization=w["org"], reason=0)
    view = single(w["org"].id, g.id, user_id=w["user"].id, status="resolved")
    fresh = Group.get_by_id(g.id)
    assert (fresh.status, fresh.substatus) == (GroupStatus.RESOLVED, None)
    assert fresh.resolved_at is not None
    assert view.status == "resolved"
    assert not GroupInbox.select().where(GroupInbox.group == g.id).exists()
    act = Activity.get(Activity.group == g.id)
    assert (act.type, act.user_id, act.data) == (ActivityType.SET_RESOLVED, w["user"].id, {})
    assert GroupHistory.get(GroupHistory.group == g.id).status == 1
    sub = GroupSubscription.get(GroupSubscription.group == g.id)
    assert (sub.user_id, sub.reason) == (w["user"].id, SubscriptionReason.STATUS_CHANGE)


def test_resolve_skips_groups_already_resolved(w: dict) -> None:
    done = f.group(w["project"], status=1, substatus=None, resolved_at=utcnow() - dt.timedelta(days=1))
    open_ = f.group(w["project"])
    result = bulk(w["org"].id, [done.id, open_.id], status="resolved")
    outcomes = {o.group_id: o.outcome for o in result.outcomes}
    assert outcomes == {done.id: "unchanged", open_.id: "changed"}
    assert Activity.select().where(Activity.group == done.id).count() == 0
    assert Group.get_by_id(done.id).resolved_at < utcnow() - dt.timedelta(hours=12)


def test_resolve_deletes_snooze_of_an_ignored_group(w: dict) -> None:
    g = f.group(w["project"], status=2, substatus=4)
    GroupSnooze.create(group=g, count=10, state={"times_seen": 1})
    single(w["org"].id, g.id, status="resolved")
    assert not GroupSnooze.select().where(GroupSnooze.group == g.id).exists()


def test_unresolve_single_resolved_group_is_regressed(w: dict) -> None:
    g = f.group(w["project"], status=1, substatus=None, resolved_at=utcnow())
    single(w["org"].id, g.id, status="unresolved")
    fresh = Group.get_by_id(g.id)
    assert (fresh.status, fresh.substatus) == (GroupStatus.UNRESOLVED, GroupSubStatus.REGRESSED)
    assert fresh.resolved_at is not None  # never cleared (§5 item 21)
    assert Activity.get(Activity.group == g.id).type == ActivityType.SET_UNRESOLVED
    assert GroupHistory.get(GroupHistory.group == g.id).status == 7  # regressed label wins


def test_unresolve_recent_ignored_group_is_new_and_old_one_ongoing(w: dict) -> None:
    young = f.group(w["project"], status=2, substatus=5, first_seen=utcnow() - dt.timedelta(days=2))
    old = f.group(w["project"], status=2, substatus=5, first_seen=utcnow() - dt.timedelta(days=20))
    single(w["org"].id, young.id, status="unresolved")
    single(w["org"].id, old.id, status="unresolved")
    assert Group.get_by_id(young.id).substatus == GroupSubStatus.NEW
    assert Group.get_by_id(old.id).substatus == GroupSubStatus.ONGOING


def test_bulk_unresolve_infers_ongoing(w: dict) -> None:
    a = f.group(w["project"], status=1, substatus=None)
    b = f.group(w["project"], status=2, substatus=5, first_seen=utcnow())
    bulk(w["org"].id, [a.id, b.id], status="unresolved")
    assert {g.substatus for g in Group.select().where(Group.id.in_([a.id, b.id]))} == {3}


def test_bare_ignore_archives_forever_and_removes_snooze(w: dict) -> None:
    g = f.group(w["project"])
    GroupSnooze.create(group=g, count=3)
    GroupInbox.create(group=g, project=w["project"], organization=w["org"], reason=0)
    result = bulk(w["org"].id, [g.id], status="ignored")
    fresh = Group.get_by_id(g.id)
    assert (fresh.status, fresh.substatus) == (GroupStatus.IGNORED, GroupSubStatus.FOREVER)
    assert not GroupSnooze.select().exists()
    assert not GroupInbox.select().exists()
    assert result.applied.inbox == "removed"
    assert GroupHistory.get(GroupHistory.group == g.id).status == 16  # archived_forever


def test_ignore_with_count_creates_snooze_with_baseline(w: dict) -> None:
    g = f.group(w["project"], times_seen=40)
    result = bulk(w["org"].id, [g.id], user_id=w["user"].id, status="ignored",
                  status_details=StatusDetails(ignore=IgnoreConditions(count=100)))  # fmt: skip
    snooze = GroupSnooze.get(GroupSnooze.group == g.id)
    assert (snooze.count, snooze.window, snooze.state, snooze.actor_id) == (
        100,
        None,
        {"times_seen": 40},
        w["user"].id,
    )
    assert Group.get_by_id(g.id).substatus == GroupSubStatus.UNTIL_CONDITION_MET
    assert result.applied.status_details is not None
    assert result.applied.status_details.ignore_count == 100
    data = Activity.get(Activity.group == g.id).data
    assert data["ignoreCount"] == 100 and data["ignoreDuration"] is None


def test_ignore_duration_sets_until_and_activity_ignore_until(w: dict) -> None:
    g = f.group(w["project"])
    before = utcnow()
    bulk(w["org"].id, [g.id], status="ignored", top_level_ignore=IgnoreConditions(duration=30))
    until = GroupSnooze.get(GroupSnooze.group == g.id).until
    assert before + dt.timedelta(minutes=29) < until < utcnow() + dt.timedelta(minutes=31)
    assert Activity.get(Activity.group == g.id).data["ignoreUntil"].startswith(until.isoformat()[:16])


def test_status_details_win_over_top_level_ignore_fields(w: dict) -> None:
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], status="ignored", top_level_ignore=IgnoreConditions(count=5),
         status_details=StatusDetails(ignore=IgnoreConditions(user_count=7)))  # fmt: skip
    snooze = GroupSnooze.get(GroupSnooze.group == g.id)
    assert (snooze.count, snooze.user_count) == (None, 7)


def test_window_above_maximum_is_refused_and_nothing_changes(w: dict) -> None:
    g = f.group(w["project"])
    with pytest.raises(InvalidArgument) as err:
        details = StatusDetails(ignore=IgnoreConditions(count=5, window=10081))
        bulk(w["org"].id, [g.id], status="ignored", status_details=details)
    assert err.value.violations[0].field == "status_details.ignore_window"
    assert err.value.violations[0].description == "Ensure this value is less than or equal to 10080."
    assert Group.get_by_id(g.id).status == GroupStatus.UNRESOLVED


def test_archive_until_escalating_only_by_substatus(w: dict) -> None:
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], status="ignored", substatus=int(GroupSubStatus.UNTIL_ESCALATING))
    assert Group.get_by_id(g.id).substatus == GroupSubStatus.UNTIL_ESCALATING
    assert result.applied.status_details is not None and result.applied.status_details.ignore_until_escalating
    assert Activity.get(Activity.group == g.id).data["ignoreUntilEscalating"] is True


def test_ignoring_an_ignored_group_updates_snooze_without_activity(w: dict) -> None:
    g = f.group(w["project"], status=2, substatus=5)
    bulk(w["org"].id, [g.id], status="ignored", top_level_ignore=IgnoreConditions(count=9))
    assert Group.get_by_id(g.id).substatus == GroupSubStatus.FOREVER  # substatus kept (§5 item 9)
    assert GroupSnooze.get(GroupSnooze.group == g.id).count == 9
    assert Activity.select().count() == 0


def test_bulk_activity_for_every_group_when_any_changed(w: dict) -> None:
    a = f.group(w["project"], status=2, substatus=5)
    b = f.group(w["project"])
    bulk(w["org"].id, [a.id, b.id], status="ignored")
    assert Activity.select().where(Activity.type == ActivityType.SET_IGNORED).count() == 2


def test_single_status_change_notifies_and_bulk_does_not(w: dict) -> None:
    a, b = f.group(w["project"]), f.group(w["project"])
    bulk(w["org"].id, [a.id, b.id], status="ignored", user_id=w["user"].id)
    assert not OutboxEvent.select().where(OutboxEvent.kind == "activity.notification").exists()
    assert not GroupSubscription.select().exists()
    single(w["org"].id, a.id, status="unresolved", user_id=w["user"].id)
    assert OutboxEvent.select().where(OutboxEvent.kind == "activity.notification").count() == 1


def test_ids_outside_the_organization_are_ignored(w: dict) -> None:
    other = f.org()
    foreign = f.group(f.project(other))
    mine = f.group(w["project"])
    result = bulk(w["org"].id, [mine.id, foreign.id], status="resolved")
    assert result.matched_group_ids == [mine.id]
    assert Group.get_by_id(foreign.id).status == GroupStatus.UNRESOLVED


def test_no_group_in_scope_is_not_found_and_changes_nothing(w: dict) -> None:
    foreign = f.group(f.project(f.org()))
    with pytest.raises(NotFound) as err:
        bulk(w["org"].id, [foreign.id], status="resolved")
    assert err.value.message == "No groups found"
    assert Group.get_by_id(foreign.id).status == GroupStatus.UNRESOLVED


def test_validate_only_writes_nothing_but_reports_outcomes(w: dict) -> None:
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], status="resolved", validate_only=True)
    assert [o.outcome for o in result.outcomes] == ["changed"]
    assert Group.get_by_id(g.id).status == GroupStatus.UNRESOLVED
    assert Activity.select().count() == 0


# --- substatus inference, one test per branch of §3.6 -----------------------------------------


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (GroupSubStatus.UNTIL_CONDITION_MET, GroupSubStatus.UNTIL_CONDITION_MET),
        (GroupSubStatus.FOREVER, GroupSubStatus.FOREVER),
        (GroupSubStatus.UNTIL_ESCALATING, GroupSubStatus.UNTIL_ESCALATING),
        (GroupSubStatus.ONGOING, GroupSubStatus.FOREVER),  # does not fit: dropped, then inferred
        (GroupSubStatus.NEW, GroupSubStatus.FOREVER),
    ],
)
def test_ignore_keeps_a_requested_archive_substatus_only(
    w: dict, requested: GroupSubStatus, expected: GroupSubStatus
) -> None:
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], status="ignored", substatus=int(requested))
    assert Group.get_by_id(g.id).substatus == expected
    assert result.applied.substatus == requested  # the reply echoes what was sent


def test_ignore_with_a_condition_infers_until_condition_met(w: dict) -> None:
    g = f.group(w["project"])
    bulk(
        w["org"].id,
        [g.id],
        status="ignored",
        status_details=StatusDetails(ignore=IgnoreConditions(window=5)),
    )
    # A window alone is "sent" for inference though it creates no snooze (§3.5.2 note).
    assert Group.get_by_id(g.id).substatus == GroupSubStatus.UNTIL_CONDITION_MET
    assert not GroupSnooze.select().exists()


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (GroupSubStatus.ESCALATING, GroupSubStatus.ESCALATING),
        (GroupSubStatus.ONGOING, GroupSubStatus.ONGOING),
        (GroupSubStatus.NEW, GroupSubStatus.NEW),
        (GroupSubStatus.REGRESSED, GroupSubStatus.REGRESSED),
        (GroupSubStatus.FOREVER, GroupSubStatus.REGRESSED),  # does not fit: inferred from RESOLVED
    ],
)
def test_unresolve_keeps_a_requested_unresolved_substatus_only(
    w: dict, requested: GroupSubStatus, expected: GroupSubStatus
) -> None:
    g = f.group(w["project"], status=1, substatus=None)
    single(w["org"].id, g.id, status="unresolved", substatus=int(requested))
    assert Group.get_by_id(g.id).substatus == expected


def test_unresolving_an_unresolved_group_without_substatus_leaves_it_alone(w: dict) -> None:
    g = f.group(w["project"], status=0, substatus=None)
    # Same status: the row is not rewritten and no history is written.
    single(w["org"].id, g.id, status="unresolved")
    assert Group.get_by_id(g.id).substatus is None
    assert not GroupHistory.select().exists()


def test_unresolve_ignored_group_first_seen_exactly_past_seven_days_is_ongoing(w: dict) -> None:
    g = f.group(w["project"], status=2, substatus=5, first_seen=utcnow() - dt.timedelta(days=7, minutes=1))
    single(w["org"].id, g.id, status="unresolved")
    assert Group.get_by_id(g.id).substatus == GroupSubStatus.ONGOING


def test_bulk_unresolve_of_a_young_ignored_group_is_ongoing_not_new(w: dict) -> None:
    young = f.group(w["project"], status=2, substatus=5, first_seen=utcnow())
    other = f.group(w["project"], status=2, substatus=5, first_seen=utcnow())
    bulk(w["org"].id, [young.id, other.id], status="unresolved")
    assert Group.get_by_id(young.id).substatus == GroupSubStatus.ONGOING


def test_resolve_ignores_a_requested_substatus(w: dict) -> None:
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], status="resolved", substatus=int(GroupSubStatus.ONGOING))
    assert Group.get_by_id(g.id).substatus is None


# --- same-status rules (§5 item 9) ----------------------------------------------------------


def test_unresolving_an_unresolved_group_only_deletes_resolution_rows(w: dict) -> None:
    r = f.release(w["project"], "1.0")
    g = f.group(w["project"], status=0, substatus=6)
    GroupResolution.create(group=g, release=r, type=0, status=1)
    GroupSnooze.create(group=g, count=3)
    GroupInbox.create(group=g, project=w["project"], organization=w["org"], reason=0)
    result = bulk(w["org"].id, [g.id], user_id=w["user"].id, status="unresolved")
    assert not GroupResolution.select().exists()
    assert Group.get_by_id(g.id).substatus == GroupSubStatus.REGRESSED
    assert Activity.select().count() == 0 and GroupHistory.select().count() == 0
    assert GroupSnooze.select().count() == 1 and GroupInbox.select().count() == 1
    assert [o.outcome for o in result.outcomes] == ["unchanged"]


def test_changing_archive_mode_keeps_substatus_and_writes_no_activity(w: dict) -> None:
    g = f.group(w["project"], status=2, substatus=5)
    bulk(w["org"].id, [g.id], status="ignored", substatus=int(GroupSubStatus.UNTIL_ESCALATING))
    assert Group.get_by_id(g.id).substatus == GroupSubStatus.FOREVER
    assert Activity.select().count() == 0


# --- side effects (§3.5.3) ------------------------------------------------------------------


def test_ignore_and_unresolve_delete_resolution_rows(w: dict) -> None:
    r = f.release(w["project"], "1.0")
    a = f.group(w["project"], status=1, substatus=None)
    b = f.group(w["project"], status=1, substatus=None)
    GroupResolution.create(group=a, release=r, type=0, status=1)
    GroupResolution.create(group=b, release=r, type=0, status=1)
    single(w["org"].id, a.id, status="ignored")
    single(w["org"].id, b.id, status="unresolved")
    assert not GroupResolution.select().exists()


def test_unresolve_keeps_snooze_and_inbox(w: dict) -> None:
    g = f.group(w["project"], status=2, substatus=4)
    GroupSnooze.create(group=g, count=3)
    GroupInbox.create(group=g, project=w["project"], organization=w["org"], reason=0)
    single(w["org"].id, g.id, status="unresolved")
    assert GroupSnooze.select().count() == 1 and GroupInbox.select().count() == 1


def test_bulk_unresolve_gives_unchanged_groups_an_activity_and_history_too(w: dict) -> None:
    changed = f.group(w["project"], status=1, substatus=None)
    same = f.group(w["project"], status=0, substatus=3)
    bulk(w["org"].id, [changed.id, same.id], user_id=w["user"].id, status="unresolved")
    acts = {a.group_id: a for a in Activity.select()}
    assert set(acts) == {changed.id, same.id}
    assert [(a.type, a.user_id, a.data) for a in acts.values()] == [(ActivityType.SET_UNRESOLVED, w["user"].id, {})] * 2
    # The ongoing substatus carries the "unresolved" label.
    assert [h.status for h in GroupHistory.select()] == [0, 0]


@pytest.mark.parametrize(
    ("patch", "label"),
    [
        ({"status": "ignored"}, 16),
        ({"status": "ignored", "top_level_ignore": IgnoreConditions(count=4)}, 17),
        ({"status": "ignored", "substatus": 1}, 15),
    ],
    ids=["forever", "until_condition_met", "until_escalating"],
)
def test_archive_history_uses_the_substatus_label(w: dict, patch: dict, label: int) -> None:
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], **patch)
    assert GroupHistory.get(GroupHistory.group == g.id).status == label


def test_unresolving_a_young_ignored_group_records_unresolved_history(w: dict) -> None:
    g = f.group(w["project"], status=2, substatus=5, first_seen=utcnow())
    single(w["org"].id, g.id, status="unresolved")
    assert GroupHistory.get(GroupHistory.group == g.id).status == 0  # NEW has no label of its own


def test_single_unignore_subscribes_the_actor_and_emits_unignored(w: dict) -> None:
    g = f.group(w["project"], status=2, substatus=5)
    single(w["org"].id, g.id, user_id=w["user"].id, status="unresolved")
    sub = GroupSubscription.get(GroupSubscription.group == g.id)
    assert (sub.user_id, sub.reason) == (w["user"].id, SubscriptionReason.STATUS_CHANGE)
    kinds = {e.kind: e.payload for e in OutboxEvent.select()}
    assert kinds["issue.unignored"] == {"transition": "manual"}
    assert kinds["activity.notification"] == {"activity_type": int(ActivityType.SET_UNRESOLVED)}


def test_single_status_change_keeps_an_explicit_unsubscribe(w: dict) -> None:
    g = f.group(w["project"])
    GroupSubscription.create(group=g, project=w["project"], user=w["user"], is_active=False, reason=0)
    single(w["org"].id, g.id, user_id=w["user"].id, status="ignored")
    sub = GroupSubscription.get(GroupSubscription.group == g.id)
    assert (sub.is_active, sub.reason) == (False, 0)


def test_resolve_in_bulk_subscribes_the_actor_to_every_group(w: dict) -> None:
    # Resolution subscribes in its per-group step, bulk or not (§3.4 e), unlike §3.5.3.
    a, b = f.group(w["project"]), f.group(w["project"])
    bulk(w["org"].id, [a.id, b.id], user_id=w["user"].id, status="resolved")
    assert {s.group_id for s in GroupSubscription.select()} == {a.id, b.id}


def test_resolve_and_ignore_remove_inbox_rows_but_unresolve_does_not_echo_inbox(w: dict) -> None:
    a, b = f.group(w["project"]), f.group(w["project"])
    for g in (a, b):
        GroupInbox.create(group=g, project=w["project"], organization=w["org"], reason=0)
    assert bulk(w["org"].id, [a.id], status="resolved").applied.inbox == "removed"
    assert bulk(w["org"].id, [b.id], status="ignored").applied.inbox == "removed"
    assert not GroupInbox.select().exists()
    assert bulk(w["org"].id, [a.id], status="unresolved").applied.inbox is None


def test_inbox_sent_with_a_resolve_is_not_applied(w: dict) -> None:
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], status="resolved", inbox=True)
    assert not GroupInbox.select().exists()
    assert result.applied.inbox == "removed"
