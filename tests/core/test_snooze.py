"""Archive conditions (sentry-semantics §3.5.1-§3.5.3, §4.2 read side, §5 items 12-14)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from server.core.commands import IgnoreConditions, StatusDetails
from server.core.enums import ActivityType, GroupStatus, GroupSubStatus
from server.core.errors import InvalidArgument
from server.core.serialize import group_view_with_commit
from server.storage.models import Activity, Group, GroupInbox, GroupSnooze, utcnow
from tests import factories as f
from tests.core.helpers import bulk, single

NO_DATA = {
    "ignoreCount": None,
    "ignoreDuration": None,
    "ignoreUntil": None,
    "ignoreUserCount": None,
    "ignoreUserWindow": None,
    "ignoreWindow": None,
    "ignoreUntilEscalating": None,
}


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    return f.world()


def nested(**conditions: int) -> StatusDetails:
    return StatusDetails(ignore=IgnoreConditions(**conditions))


def _snooze(group_id: int) -> GroupSnooze:
    return GroupSnooze.get(GroupSnooze.group == group_id)


def _ignore_data(group_id: int) -> dict[str, Any]:
    act = Activity.get((Activity.group == group_id) & (Activity.type == ActivityType.SET_IGNORED))
    return dict(act.data)


# --- writing the snooze ---------------------------------------------------------------------


def test_count_without_window_stores_the_times_seen_baseline(w: dict[str, Any]) -> None:
    g = f.group(w["project"], times_seen=40)
    result = bulk(
        w["org"].id,
        [g.id],
        user_id=w["user"].id,
        status="ignored",
        status_details=nested(count=100),
    )
    s = _snooze(g.id)
    assert (s.count, s.window, s.until, s.state, s.actor_id) == (
        100,
        None,
        None,
        {"times_seen": 40},
        w["user"].id,
    )
    assert _ignore_data(g.id) == {**NO_DATA, "ignoreCount": 100}
    details = result.applied.status_details
    assert details is not None and details.ignore_count == 100
    assert details.actor is not None and details.actor.id == w["user"].id


def test_count_with_window_stores_no_baseline(w: dict[str, Any]) -> None:
    g = f.group(w["project"], times_seen=40)
    bulk(w["org"].id, [g.id], status="ignored", status_details=nested(count=10, window=60))
    s = _snooze(g.id)
    assert (s.count, s.window, s.state) == (10, 60, {})
    assert _ignore_data(g.id) == {**NO_DATA, "ignoreCount": 10, "ignoreWindow": 60}


def test_user_count_without_window_stores_the_users_seen_baseline(w: dict[str, Any]) -> None:
    g = f.group(w["project"], user_count=12)
    result = bulk(w["org"].id, [g.id], status="ignored", status_details=nested(user_count=5))
    s = _snooze(g.id)
    assert (s.user_count, s.user_window, s.state) == (5, None, {"users_seen": 12})
    assert result.applied.status_details is not None and result.applied.status_details.ignore_user_count == 5


def test_user_count_with_window_stores_no_baseline(w: dict[str, Any]) -> None:
    g = f.group(w["project"], user_count=12)
    bulk(w["org"].id, [g.id], status="ignored", status_details=nested(user_count=5, user_window=30))
    s = _snooze(g.id)
    assert (s.user_count, s.user_window, s.state) == (5, 30, {})
    assert _ignore_data(g.id) == {**NO_DATA, "ignoreUserCount": 5, "ignoreUserWindow": 30}


def test_duration_snoozes_until_now_plus_minutes_and_reports_ignore_until(
    w: dict[str, Any],
) -> None:
    g = f.group(w["project"])
    before = utcnow()
    result = bulk(w["org"].id, [g.id], status="ignored", status_details=nested(duration=90))
    until = _snooze(g.id).until
    assert before + dt.timedelta(minutes=90) <= until <= utcnow() + dt.timedelta(minutes=90)
    details = result.applied.status_details
    assert details is not None and details.ignore_until == until
    # Through the API the duration shows only as ignoreUntil, in Sentry's JSON datetime form.
    assert _ignore_data(g.id) == {**NO_DATA, "ignoreUntil": until.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    assert Group.get_by_id(g.id).substatus == GroupSubStatus.UNTIL_CONDITION_MET


def test_ignoring_again_updates_the_snooze_and_its_actor(w: dict[str, Any]) -> None:
    g = f.group(w["project"], status=2, substatus=4, times_seen=7)
    GroupSnooze.create(group=g, count=3, state={"times_seen": 1})
    bulk(w["org"].id, [g.id], user_id=w["user"].id, status="ignored", status_details=nested(count=50))
    assert GroupSnooze.select().count() == 1
    s = _snooze(g.id)
    assert (s.count, s.state, s.actor_id) == (50, {"times_seen": 7}, w["user"].id)


def test_bare_ignore_writes_empty_details_and_all_null_activity_data(w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], status="ignored")
    assert _ignore_data(g.id) == NO_DATA
    details = result.applied.status_details
    assert details is not None
    assert (details.ignore_count, details.ignore_until, details.ignore_until_escalating) == (
        None,
        None,
        False,
    )


def test_zero_duration_archives_until_condition_met_without_a_snooze(w: dict[str, Any]) -> None:
    # §5 item 14: 0 is "set" for substatus inference but "not set" for the snooze.
    g = f.group(w["project"])
    GroupSnooze.create(group=g, count=3)
    bulk(w["org"].id, [g.id], status="ignored", status_details=nested(duration=0))
    assert Group.get_by_id(g.id).substatus == GroupSubStatus.UNTIL_CONDITION_MET
    assert not GroupSnooze.select().exists()
    assert _ignore_data(g.id) == NO_DATA


def test_archive_until_escalating_keeps_an_existing_snooze_and_removes_inbox(
    w: dict[str, Any],
) -> None:
    g = f.group(w["project"])
    GroupSnooze.create(group=g, count=3)
    GroupInbox.create(group=g, project=w["project"], organization=w["org"], reason=0)
    result = bulk(w["org"].id, [g.id], status="ignored", substatus=int(GroupSubStatus.UNTIL_ESCALATING))
    assert GroupSnooze.select().count() == 1
    assert not GroupInbox.select().exists()
    assert _ignore_data(g.id) == {**NO_DATA, "ignoreUntilEscalating": True}
    assert result.applied.inbox == "removed"
    assert result.applied.substatus == GroupSubStatus.UNTIL_ESCALATING


def test_muted_is_an_alias_of_ignored_and_echoed_as_sent(w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], status="muted")
    fresh = Group.get_by_id(g.id)
    assert (fresh.status, fresh.substatus) == (GroupStatus.IGNORED, GroupSubStatus.FOREVER)
    assert result.applied.status == "muted"


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"status_details": nested(count=1, window=10081)}, "status_details.ignore_window"),
        (
            {"status_details": nested(user_count=1, user_window=10081)},
            "status_details.ignore_user_window",
        ),
        ({"top_level_ignore": IgnoreConditions(count=1, window=10081)}, "ignore_window"),
        (
            {"top_level_ignore": IgnoreConditions(user_count=1, user_window=10081)},
            "ignore_user_window",
        ),
    ],
)
def test_windows_above_a_week_are_refused_with_sentrys_message(
    w: dict[str, Any], patch: dict[str, Any], path: str
) -> None:
    g = f.group(w["project"])
    with pytest.raises(InvalidArgument) as err:
        bulk(w["org"].id, [g.id], status="ignored", **patch)
    assert [(v.field, v.description) for v in err.value.violations] == [
        (path, "Ensure this value is less than or equal to 10080.")
    ]
    assert Group.get_by_id(g.id).status == GroupStatus.UNRESOLVED
    assert not GroupSnooze.select().exists()


def test_a_window_of_exactly_a_week_is_accepted(w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], status="ignored", status_details=nested(count=1, window=10080))
    assert _snooze(g.id).window == 10080


# --- top-level versus nested fields (§5 item 12) --------------------------------------------


def test_top_level_fields_are_used_without_status_details(w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], status="ignored", top_level_ignore=IgnoreConditions(count=5, window=30))
    s = _snooze(g.id)
    assert (s.count, s.window) == (5, 30)
    assert Group.get_by_id(g.id).substatus == GroupSubStatus.UNTIL_CONDITION_MET
    assert result.applied.status_details is not None and result.applied.status_details.ignore_count == 5


def test_top_level_fields_are_ignored_when_status_details_are_sent_even_empty(
    w: dict[str, Any],
) -> None:
    g = f.group(w["project"])
    bulk(
        w["org"].id,
        [g.id],
        status="ignored",
        top_level_ignore=IgnoreConditions(count=5),
        status_details=nested(),
    )
    assert not GroupSnooze.select().exists()
    assert Group.get_by_id(g.id).substatus == GroupSubStatus.FOREVER


# --- the read side (§4.2) -------------------------------------------------------------------


def _view(g: Group, now: dt.datetime | None = None) -> Any:
    return group_view_with_commit(Group.get_by_id(g.id), user_id=None, now=now or utcnow())()  # reads at once


def test_valid_count_snooze_reads_back_the_remaining_count(w: dict[str, Any]) -> None:
    g = f.group(w["project"], times_seen=10)
    single(w["org"].id, g.id, user_id=w["user"].id, status="ignored", status_details=nested(count=8))
    Group.update(times_seen=13).where(Group.id == g.id).execute()
    view = _view(g)
    assert view.status == "ignored"
    assert view.status_details.ignore_count == 5
    assert view.status_details.actor is not None and view.status_details.actor.id == w["user"].id


def test_windowed_count_reads_back_unchanged(w: dict[str, Any]) -> None:
    g = f.group(w["project"], times_seen=10)
    single(w["org"].id, g.id, status="ignored", status_details=nested(count=8, window=60))
    Group.update(times_seen=100).where(Group.id == g.id).execute()
    view = _view(g)
    assert (view.status, view.status_details.ignore_count, view.status_details.ignore_window) == (
        "ignored",
        8,
        60,
    )


def test_user_count_reads_back_the_remaining_users(w: dict[str, Any]) -> None:
    g = f.group(w["project"], user_count=3)
    single(w["org"].id, g.id, status="ignored", status_details=nested(user_count=10))
    Group.update(user_count=7).where(Group.id == g.id).execute()
    assert _view(g).status_details.ignore_user_count == 6


def test_count_reached_reads_as_unresolved_with_empty_details(w: dict[str, Any]) -> None:
    g = f.group(w["project"], times_seen=10)
    single(w["org"].id, g.id, status="ignored", status_details=nested(count=8))
    Group.update(times_seen=18).where(Group.id == g.id).execute()
    view = _view(g)
    assert view.status == "unresolved"
    assert view.status_details.ignore_count is None


def test_expired_duration_reads_as_unresolved(w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    single(w["org"].id, g.id, status="ignored", status_details=nested(duration=30))
    assert _view(g).status == "ignored"
    assert _view(g, now=utcnow() + dt.timedelta(minutes=31)).status == "unresolved"


def test_archived_until_escalating_reads_back_its_flag(w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    view = single(w["org"].id, g.id, status="ignored", substatus=int(GroupSubStatus.UNTIL_ESCALATING))
    assert view.status == "ignored" and view.status_details.ignore_until_escalating


@pytest.mark.parametrize("name", ["duration", "count", "user_count"])
def test_amounts_past_the_largest_32_bit_value_are_refused_not_crashed(w: dict[str, Any], name: str) -> None:
    g = f.group(w["project"])
    with pytest.raises(InvalidArgument) as err:
        bulk(w["org"].id, [g.id], status="ignored", status_details=nested(**{name: 2**62}))
    assert [(v.field, v.description) for v in err.value.violations] == [
        (f"status_details.ignore_{name}", "Ensure this value is less than or equal to 2147483647.")
    ]
    assert not GroupSnooze.select().exists()


def test_negative_amounts_are_refused(w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    with pytest.raises(InvalidArgument) as err:
        bulk(w["org"].id, [g.id], status="ignored", top_level_ignore=IgnoreConditions(count=-1))
    assert err.value.violations[0].field == "ignore_count"
    assert Group.get_by_id(g.id).status == GroupStatus.UNRESOLVED


def test_unresolved_group_past_the_auto_resolve_age_reads_as_auto_resolved(
    w: dict[str, Any],
) -> None:
    p = f.project(w["org"], auto_resolve_age_hours=24)
    stale = f.group(p, last_seen=utcnow() - dt.timedelta(hours=25))
    fresh = f.group(p, last_seen=utcnow() - dt.timedelta(hours=23))
    view = _view(stale)
    assert (view.status, view.status_details.auto_resolved) == ("resolved", True)
    assert (_view(fresh).status, _view(fresh).status_details.auto_resolved) == ("unresolved", False)


def test_a_bare_ignore_of_a_snoozed_issue_drops_the_snooze_and_moves_the_etag(w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    first = single(w["org"].id, g.id, status="ignored", top_level_ignore=IgnoreConditions(count=44))
    second = single(w["org"].id, g.id, status="ignored")  # the same status, for ever now
    assert first.status_details.ignore_count == 44 and second.status_details.ignore_count is None
    assert second.etag != first.etag  # the state changed: a writer holding the old etag is refused
    assert not GroupSnooze.select().exists()


def test_a_bare_ignore_of_an_issue_ignored_for_ever_changes_nothing(w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    single(w["org"].id, g.id, status="ignored")
    version = Group.get_by_id(g.id).version
    result = bulk(w["org"].id, [g.id], status="ignored")
    assert [o.outcome for o in result.outcomes] == ["unchanged"]
    assert Group.get_by_id(g.id).version == version
