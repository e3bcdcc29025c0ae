"""Resolution kinds at the core tier (sentry-semantics §3.4; §5 items 1, 3-7, 17, 22; §3.13)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from server.core.commands import Assignee, InCommit, StatusDetails
from server.core.enums import (
    ActivityType,
    GroupHistoryStatus,
    GroupStatus,
    ResolutionStatus,
    ResolutionType,
)
from server.core.errors import InvalidArgument
from server.core.validation import NO_RELEASE
from server.storage.models import (
    Activity,
    Group,
    GroupAssignee,
    GroupHistory,
    GroupLink,
    GroupResolution,
    OutboxEvent,
    ReleaseProject,
    UserOption,
    utcnow,
)
from tests import factories as f
from tests.core.helpers import bulk, single
from tests.statements import recorded

T0 = utcnow() - dt.timedelta(days=10)


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    return f.world()


def _hours(n: int) -> dt.datetime:
    return T0 + dt.timedelta(hours=n)


def _activity(group_id: int) -> Activity:
    return Activity.get(Activity.group == group_id)


def _resolution(group_id: int) -> GroupResolution:
    return GroupResolution.get(GroupResolution.group == group_id)


def _snapshot() -> list[tuple[Any, ...]]:
    """Everything a refused call must leave alone."""
    groups = [(g.id, g.status, g.substatus, g.priority, g.version) for g in Group.select().order_by(Group.id)]
    counts = [m.select().count() for m in (Activity, GroupHistory, GroupResolution, GroupLink, OutboxEvent)]
    return [*groups, tuple(counts)]


def in_release(version: str) -> StatusDetails:
    return StatusDetails(in_release=version)


# --- in a release ---------------------------------------------------------------------------


def test_resolve_in_release_writes_resolved_in_release_row_activity_and_history(
    w: dict[str, Any],
) -> None:
    r = f.release(w["project"], "1.0")
    g = f.group(w["project"])
    result = bulk(
        w["org"].id,
        [g.id],
        user_id=w["user"].id,
        status="resolved",
        status_details=in_release("1.0"),
    )
    res = _resolution(g.id)
    assert (res.release_id, res.type, res.status, res.actor_id) == (
        r.id, ResolutionType.IN_RELEASE, ResolutionStatus.RESOLVED, w["user"].id,
    )  # fmt: skip
    act = _activity(g.id)
    assert (act.type, act.data, act.ident, act.user_id) == (
        ActivityType.SET_RESOLVED_IN_RELEASE, {"version": "1.0"}, str(res.id), w["user"].id,
    )  # fmt: skip
    hist = GroupHistory.get(GroupHistory.group == g.id)
    assert (hist.status, hist.release_id) == (GroupHistoryStatus.SET_RESOLVED_IN_RELEASE, r.id)
    assert Group.get_by_id(g.id).status == GroupStatus.RESOLVED
    details = result.applied.status_details
    assert details is not None and details.in_release == "1.0" and not details.in_next_release
    assert details.actor is not None and details.actor.id == w["user"].id
    assert result.applied.status == "resolved"


def test_resolve_in_latest_release_picks_the_most_recent_by_release_date(w: dict[str, Any]) -> None:
    # Added first but released last: COALESCE(date_released, date_added) makes it the latest.
    released_late = f.release(w["project"], "a", added=_hours(0), date_released=_hours(5))
    f.release(w["project"], "b", added=_hours(3))
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], status="resolved", status_details=in_release("latest"))
    assert _resolution(g.id).release_id == released_late.id
    assert _activity(g.id).data == {"version": "a"}
    assert result.applied.status_details is not None and result.applied.status_details.in_release == "a"


def test_resolve_in_latest_release_without_releases_is_refused(w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    with pytest.raises(InvalidArgument) as err:
        bulk(w["org"].id, [g.id], status="resolved", status_details=in_release("latest"))
    assert [(v.field, v.description) for v in err.value.violations] == [("status_details.in_release", NO_RELEASE)]
    assert Group.get_by_id(g.id).status == GroupStatus.UNRESOLVED


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("9.9", "Unable to find a release with the given version."),
        ("  ", "This field may not be blank."),
    ],
)
def test_resolve_in_unknown_or_blank_release_is_refused_with_sentrys_message(
    w: dict[str, Any], version: str, message: str
) -> None:
    f.release(w["project"], "1.0")
    g = f.group(w["project"])
    before = _snapshot()
    with pytest.raises(InvalidArgument) as err:
        bulk(w["org"].id, [g.id], status="resolved", status_details=in_release(version))
    assert [(v.field, v.description) for v in err.value.violations] == [("status_details.in_release", message)]
    assert _snapshot() == before


def test_release_of_another_project_is_not_found(w: dict[str, Any]) -> None:
    f.release(f.project(w["org"]), "2.0")
    g = f.group(w["project"])
    with pytest.raises(InvalidArgument) as err:
        bulk(w["org"].id, [g.id], status="resolved", status_details=in_release("2.0"))
    assert err.value.violations[0].description == "Unable to find a release with the given version."


def test_resolved_in_release_reads_back_with_version_and_actor(w: dict[str, Any]) -> None:
    f.release(w["project"], "1.0")
    g = f.group(w["project"])
    view = single(w["org"].id, g.id, user_id=w["user"].id, status="resolved", status_details=in_release("1.0"))
    assert view.status == "resolved"
    assert view.status_details.in_release == "1.0" and not view.status_details.in_next_release
    assert view.status_details.actor is not None and view.status_details.actor.id == w["user"].id


# --- in the next release --------------------------------------------------------------------


def test_resolved_in_next_release_without_any_release_just_resolves(w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], status="resolvedInNextRelease")
    assert Group.get_by_id(g.id).status == GroupStatus.RESOLVED
    assert not GroupResolution.select().exists()
    assert (_activity(g.id).type, _activity(g.id).data) == (
        ActivityType.SET_RESOLVED_IN_RELEASE,
        {"version": ""},
    )
    assert result.applied.status == "resolved"
    assert result.applied.status_details is not None and result.applied.status_details.in_next_release


def test_in_next_release_detail_without_any_release_is_refused(w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    with pytest.raises(InvalidArgument) as err:
        bulk(
            w["org"].id,
            [g.id],
            status="resolved",
            status_details=StatusDetails(in_next_release=True),
        )
    assert [(v.field, v.description) for v in err.value.violations] == [("status_details.in_next_release", NO_RELEASE)]
    assert Group.get_by_id(g.id).status == GroupStatus.UNRESOLVED


def test_in_next_release_false_still_resolves_in_next_release(w: dict[str, Any]) -> None:
    r = f.release(w["project"], "1.0")
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], status="resolved", status_details=StatusDetails(in_next_release=False))
    res = _resolution(g.id)
    assert (res.release_id, res.type, res.status) == (
        r.id,
        ResolutionType.IN_NEXT_RELEASE,
        ResolutionStatus.PENDING,
    )
    assert result.applied.status_details is not None and result.applied.status_details.in_next_release


def test_date_project_group_in_latest_release_stays_pending(w: dict[str, Any]) -> None:
    f.release(w["project"], "a", added=_hours(0))
    latest = f.release(w["project"], "b", added=_hours(1))
    g = f.group(w["project"])
    f.group_release(g, latest)
    view = single(w["org"].id, g.id, user_id=w["user"].id, status="resolvedInNextRelease")
    res = _resolution(g.id)
    assert (res.release_id, res.type, res.status, res.current_release_version) == (
        latest.id, ResolutionType.IN_NEXT_RELEASE, ResolutionStatus.PENDING, "b",
    )  # fmt: skip
    assert _activity(g.id).data == {"version": ""}
    assert Group.get_by_id(g.id).status == GroupStatus.RESOLVED
    assert view.status_details.in_next_release and view.status_details.actor is not None


def test_date_project_jumps_to_first_release_after_the_groups_last_release(
    w: dict[str, Any],
) -> None:
    # "Next" is after the group's last release, not after the project's latest (§5 item 7).
    first = f.release(w["project"], "a", added=_hours(0))
    second = f.release(w["project"], "b", added=_hours(1))
    f.release(w["project"], "c", added=_hours(2))
    g = f.group(w["project"])
    f.group_release(g, second, last_seen=_hours(1))
    f.group_release(g, first, last_seen=_hours(3))  # seen last in "a", so the next one is "b"
    bulk(w["org"].id, [g.id], status="resolvedInNextRelease")
    res = _resolution(g.id)
    assert (res.release_id, res.type, res.status, res.current_release_version) == (
        second.id, ResolutionType.IN_RELEASE, ResolutionStatus.RESOLVED, "a",
    )  # fmt: skip
    assert _activity(g.id).data == {"version": "b"}


def test_first_release_after_is_ordered_by_release_date_then_id(w: dict[str, Any]) -> None:
    base = f.release(w["project"], "a", added=_hours(0))
    f.release(w["project"], "b", added=_hours(1), date_released=_hours(9))
    soonest = f.release(w["project"], "c", added=_hours(2))
    g = f.group(w["project"])
    f.group_release(g, base)
    bulk(w["org"].id, [g.id], status="resolvedInNextRelease")
    assert _resolution(g.id).release_id == soonest.id


def test_group_without_release_history_keeps_a_pending_row(w: dict[str, Any]) -> None:
    latest = f.release(w["project"], "a")
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], status="resolvedInNextRelease")
    res = _resolution(g.id)
    assert (res.release_id, res.status, res.current_release_version) == (
        latest.id,
        ResolutionStatus.PENDING,
        None,
    )


def test_semver_project_resolves_at_once_past_the_greatest_version(w: dict[str, Any]) -> None:
    f.release(w["project"], "app@1.0.0", added=_hours(0))
    f.release(w["project"], "app@2.0.0", added=_hours(1))
    f.release(w["project"], "app@1.5.0", added=_hours(2))  # newest by date, not the greatest
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], status="resolvedInNextRelease")
    res = _resolution(g.id)
    assert (res.type, res.status, res.current_release_version) == (
        ResolutionType.IN_RELEASE, ResolutionStatus.RESOLVED, "app@2.0.0",
    )  # fmt: skip
    assert _activity(g.id).data == {"version": "", "current_release_version": "app@2.0.0"}


def test_next_release_refinement_is_computed_per_group_without_leaking(w: dict[str, Any]) -> None:
    old = f.release(w["project"], "a", added=_hours(0))
    f.release(w["project"], "b", added=_hours(1))
    moved, pending = f.group(w["project"]), f.group(w["project"])
    f.group_release(moved, old)
    bulk(w["org"].id, [moved.id, pending.id], status="resolvedInNextRelease")
    assert _activity(moved.id).data == {"version": "b"}
    assert _activity(pending.id).data == {"version": ""}  # Sentry would leak "b" here
    assert _resolution(pending.id).status == ResolutionStatus.PENDING


@pytest.fixture()
def statements() -> Iterator[list[str]]:
    with recorded() as seen:
        yield seen


def _next_release_statements(w: dict[str, Any], statements: list[str], n: int) -> int:
    rels = [f.release(w["project"], f"v{n}-{i}", added=_hours(i)) for i in range(n + 1)]
    groups = [f.group(w["project"]) for _ in range(n)]
    for g, r in zip(groups, rels, strict=False):
        f.group_release(g, r)
    statements.clear()
    bulk(w["org"].id, [g.id for g in groups], user_id=w["user"].id, status="resolvedInNextRelease")
    count = len(statements)
    assert {_resolution(g.id).status for g in groups} == {ResolutionStatus.RESOLVED}
    return count


def test_next_release_statement_count_does_not_grow_with_groups(w: dict[str, Any], statements: list[str]) -> None:
    assert _next_release_statements(w, statements, 3) == _next_release_statements(w, statements, 40)


# --- in a commit ----------------------------------------------------------------------------


def in_commit(key: str = "abc123", repo: str = "acme/app") -> StatusDetails:
    return StatusDetails(in_commit=InCommit(commit=key, repository=repo))


def test_resolve_in_commit_of_a_release_resolves_in_the_newest_release_containing_it(
    w: dict[str, Any],
) -> None:
    older = f.release(w["project"], "1.0", added=_hours(0))
    newer = f.release(w["project"], "1.1", added=_hours(1))
    c = f.commit(w["org"], releases=(older, newer))
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], user_id=w["user"].id, status="resolved", status_details=in_commit())
    res = _resolution(g.id)
    assert (res.release_id, res.type, res.status) == (
        newer.id,
        ResolutionType.IN_RELEASE,
        ResolutionStatus.RESOLVED,
    )
    link = GroupLink.get(GroupLink.group == g.id)
    assert (link.linked_type, link.linked_id, link.relationship) == (1, c.id, 1)
    assert (_activity(g.id).type, _activity(g.id).data) == (
        ActivityType.SET_RESOLVED_IN_COMMIT,
        {"commit": c.id},
    )
    assert GroupHistory.get(GroupHistory.group == g.id).status == GroupHistoryStatus.SET_RESOLVED_IN_COMMIT
    details = result.applied.status_details
    assert details is not None and details.in_commit is not None
    assert (details.in_commit.id, details.in_commit.key, details.in_commit.repository) == (
        c.id,
        "abc123",
        "acme/app",
    )
    # Stored as in_release, so the single-group reply carries the activities (§3.13 step 1).
    assert result.applied.activities[0].type == ActivityType.SET_RESOLVED_IN_COMMIT


def test_resolve_in_undeployed_commit_links_it_without_a_resolution_row(w: dict[str, Any]) -> None:
    c = f.commit(w["org"])
    g = f.group(w["project"])
    view = single(w["org"].id, g.id, status="resolved", status_details=in_commit())
    assert not GroupResolution.select().exists()
    assert GroupLink.get(GroupLink.group == g.id).linked_id == c.id
    assert view.status == "resolved"
    assert view.status_details.in_commit is not None and view.status_details.in_commit.key == "abc123"


@pytest.mark.parametrize(
    ("details", "path", "message"),
    [
        (
            in_commit(repo="nope/nope"),
            "status_details.in_commit.repository",
            "Unable to find the given repository.",
        ),
        (
            in_commit(key="fff"),
            "status_details.in_commit.commit",
            "Unable to find the given commit.",
        ),
        (in_commit(key=""), "status_details.in_commit.commit", "This field is required."),
    ],
)
def test_unknown_repository_or_commit_is_refused_at_its_field(
    w: dict[str, Any], details: StatusDetails, path: str, message: str
) -> None:
    f.commit(w["org"])
    g = f.group(w["project"])
    before = _snapshot()
    with pytest.raises(InvalidArgument) as err:
        bulk(w["org"].id, [g.id], status="resolved", status_details=details)
    assert [(v.field, v.description) for v in err.value.violations] == [(path, message)]
    assert _snapshot() == before


def test_commit_of_another_organization_is_not_found(w: dict[str, Any]) -> None:
    f.commit(f.org())
    g = f.group(w["project"])
    with pytest.raises(InvalidArgument) as err:
        bulk(w["org"].id, [g.id], status="resolved", status_details=in_commit())
    assert err.value.violations[0].field == "status_details.in_commit.repository"


def test_resolving_again_in_the_same_commit_after_unresolve_does_not_crash(
    w: dict[str, Any],
) -> None:
    f.commit(w["org"])
    g = f.group(w["project"])
    single(w["org"].id, g.id, status="resolved", status_details=in_commit())
    single(w["org"].id, g.id, status="unresolved")
    view = single(w["org"].id, g.id, status="resolved", status_details=in_commit())
    assert view.status == "resolved"
    assert GroupLink.select().where(GroupLink.group == g.id).count() == 1
    kinds = [a.type for a in Activity.select().where(Activity.group == g.id).order_by(Activity.id)]
    assert kinds == [16, 2, 16]


# --- several projects -----------------------------------------------------------------------


def _two_projects(w: dict[str, Any]) -> tuple[Group, Group]:
    other = f.sibling_project(w)
    r = f.release(w["project"], "1.0")
    ReleaseProject.create(release=r, project=other)
    f.commit(w["org"], releases=(r,))
    return f.group(w["project"]), f.group(other)


@pytest.mark.parametrize(
    "patch",
    [
        {"status": "resolved", "status_details": StatusDetails(in_release="1.0")},
        {"status": "resolved", "status_details": StatusDetails(in_next_release=True)},
        {"status": "resolvedInNextRelease"},
        {
            "status": "resolved",
            "status_details": StatusDetails(in_commit=InCommit("abc123", "acme/app")),
        },
    ],
    ids=["in_release", "in_next_release", "resolvedInNextRelease", "in_commit"],
)
def test_release_and_commit_resolution_across_projects_is_refused_before_any_write(
    w: dict[str, Any], patch: dict[str, Any]
) -> None:
    a, b = _two_projects(w)
    before = _snapshot()
    with pytest.raises(InvalidArgument) as err:
        bulk(w["org"].id, [a.id, b.id], user_id=w["user"].id, priority=75, **patch)
    assert err.value.message == "Cannot set resolved for multiple projects."
    assert _snapshot() == before  # not even the priority sent alongside


def test_plain_resolve_works_across_projects(w: dict[str, Any]) -> None:
    a, b = _two_projects(w)
    bulk(w["org"].id, [a.id, b.id], status="resolved")
    assert {g.status for g in Group.select()} == {GroupStatus.RESOLVED}


# --- self-assign ----------------------------------------------------------------------------


def _self_assign_on(w: dict[str, Any]) -> None:
    UserOption.create(user=w["user"], key="self_assign_issue", value="1")


def test_self_assign_assigns_every_group_once_one_lacked_an_assignee(w: dict[str, Any]) -> None:
    _self_assign_on(w)
    other = f.user()
    f.member(w["org"], other, teams=(w["team"],))
    taken, free = f.group(w["project"]), f.group(w["project"])
    GroupAssignee.create(group=taken, project=w["project"], user=other)
    result = bulk(w["org"].id, [taken.id, free.id], user_id=w["user"].id, status="resolved")
    assert {a.user_id for a in GroupAssignee.select()} == {w["user"].id}
    assert GroupAssignee.select().count() == 2
    assert result.applied.assigned_to_set
    assert result.applied.assigned_to is not None
    assert (result.applied.assigned_to.type, result.applied.assigned_to.id) == (
        "user",
        w["user"].id,
    )


def test_self_assign_overrides_an_assignee_in_the_same_patch(w: dict[str, Any]) -> None:
    _self_assign_on(w)
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], user_id=w["user"].id, status="resolved",
                  assigned_to=Assignee(kind="team_id", value=w["team"].id))  # fmt: skip
    row = GroupAssignee.get(GroupAssignee.group == g.id)
    assert (row.user_id, row.team_id) == (w["user"].id, None)
    assert result.applied.assigned_to is not None and result.applied.assigned_to.type == "user"


def test_self_assign_leaves_groups_alone_when_all_had_an_assignee(w: dict[str, Any]) -> None:
    _self_assign_on(w)
    g = f.group(w["project"])
    GroupAssignee.create(group=g, project=w["project"], team=w["team"])
    result = bulk(w["org"].id, [g.id], user_id=w["user"].id, status="resolved")
    assert GroupAssignee.get(GroupAssignee.group == g.id).team_id == w["team"].id
    assert not result.applied.assigned_to_set


@pytest.mark.parametrize("value", ["0", None])
def test_without_the_option_resolving_assigns_nobody(w: dict[str, Any], value: str | None) -> None:
    if value is not None:
        UserOption.create(user=w["user"], key="self_assign_issue", value=value)
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], user_id=w["user"].id, status="resolved")
    assert not GroupAssignee.select().exists()


def test_self_assign_ignores_groups_skipped_as_already_resolved(w: dict[str, Any]) -> None:
    _self_assign_on(w)
    done = f.group(w["project"], status=1, substatus=None)
    bulk(w["org"].id, [done.id], user_id=w["user"].id, status="resolved")
    assert not GroupAssignee.select().exists()


# --- activities in the bulk reply (§3.13 item 1) -------------------------------------------


def test_single_group_release_resolution_reply_carries_its_activities(w: dict[str, Any]) -> None:
    f.release(w["project"], "1.0")
    g = f.group(w["project"], priority=75)
    result = bulk(
        w["org"].id,
        [g.id],
        user_id=w["user"].id,
        status="resolved",
        status_details=in_release("1.0"),
    )
    kinds = [a.type for a in result.applied.activities]
    assert kinds == [ActivityType.SET_RESOLVED_IN_RELEASE, ActivityType.FIRST_SEEN]
    assert result.applied.activities[0].data == {"version": "1.0"}
    assert result.applied.activities[-1].data == {"priority": "high"}


def test_next_release_reply_carries_activities_even_when_the_group_was_resolved(
    w: dict[str, Any],
) -> None:
    g = f.group(w["project"], status=1, substatus=None)
    result = bulk(w["org"].id, [g.id], status="resolvedInNextRelease")
    assert [a.type for a in result.applied.activities] == [ActivityType.FIRST_SEEN]


@pytest.mark.parametrize("patch", [{"status": "resolved"}, {"status": "resolvedInNextRelease", "bulk": True}])
def test_plain_or_bulk_resolution_reply_carries_no_activities(w: dict[str, Any], patch: dict[str, Any]) -> None:
    f.release(w["project"], "1.0")
    ids = [f.group(w["project"]).id for _ in range(2 if patch.pop("bulk", False) else 1)]
    assert bulk(w["org"].id, ids, **patch).applied.activities == []


# --- notifications, history links ----------------------------------------------------------


def test_single_resolution_notifies_and_bulk_only_emits_resolved_events(w: dict[str, Any]) -> None:
    a, b = f.group(w["project"]), f.group(w["project"])
    bulk(w["org"].id, [a.id, b.id], user_id=w["user"].id, status="resolved")
    kinds = sorted(e.kind for e in OutboxEvent.select())
    assert kinds == ["issue.resolved", "issue.resolved"]
    c = f.group(w["project"])
    single(w["org"].id, c.id, user_id=w["user"].id, status="resolved")
    note = OutboxEvent.get(OutboxEvent.kind == "activity.notification")
    assert (note.group_id, note.payload["activity_type"]) == (c.id, ActivityType.SET_RESOLVED)
    resolved = OutboxEvent.get((OutboxEvent.kind == "issue.resolved") & (OutboxEvent.group_id == c.id))
    assert resolved.payload == {"resolution_type": "now"}


def test_history_rows_link_to_the_latest_opposite_row(w: dict[str, Any]) -> None:
    g = f.group(w["project"])
    single(w["org"].id, g.id, status="resolved")
    single(w["org"].id, g.id, status="unresolved")
    single(w["org"].id, g.id, status="resolved")
    h1, h2, h3 = GroupHistory.select().where(GroupHistory.group == g.id).order_by(GroupHistory.id)
    assert [h.status for h in (h1, h2, h3)] == [
        GroupHistoryStatus.RESOLVED,
        GroupHistoryStatus.REGRESSED,
        GroupHistoryStatus.RESOLVED,
    ]
    assert h1.prev_history_id is None
    assert (h2.prev_history_id, h2.prev_history_date) == (h1.id, h1.date_added)
    assert (h3.prev_history_id, h3.prev_history_date) == (h2.id, h2.date_added)


def test_history_link_is_per_group_in_bulk(w: dict[str, Any]) -> None:
    a, b = f.group(w["project"]), f.group(w["project"])
    single(w["org"].id, a.id, status="resolved")
    bulk(w["org"].id, [a.id, b.id], status="unresolved")
    rows = {h.group_id: h for h in GroupHistory.select().where(GroupHistory.status == 0)}
    first = GroupHistory.get((GroupHistory.group == a.id) & (GroupHistory.status == 1))
    assert rows[a.id].prev_history_id == first.id
    assert rows[b.id].prev_history_id is None


def test_release_version_is_trimmed_like_a_drf_string_field(w: dict[str, Any]) -> None:
    r = f.release(w["project"], "1.0")
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], status="resolved", status_details=in_release(" 1.0 "))
    assert _resolution(g.id).release_id == r.id


@pytest.mark.parametrize(
    ("details", "path"),
    [
        (StatusDetails(in_release="1.0\x00"), "status_details.in_release"),
        (
            StatusDetails(in_commit=InCommit("abc\x00", "acme/app")),
            "status_details.in_commit.commit",
        ),
        (
            StatusDetails(in_commit=InCommit("abc123", "acme\x00")),
            "status_details.in_commit.repository",
        ),
    ],
)
def test_names_with_a_nul_character_are_not_found_on_every_backend(
    w: dict[str, Any], details: StatusDetails, path: str
) -> None:
    f.release(w["project"], "1.0")
    f.commit(w["org"])
    g = f.group(w["project"])
    with pytest.raises(InvalidArgument) as err:
        bulk(w["org"].id, [g.id], status="resolved", status_details=details)
    assert err.value.violations[0].field == path


def test_resolved_in_next_release_ignores_an_in_release_detail(w: dict[str, Any]) -> None:
    # Sentry reads the release only from an inNextRelease detail; otherwise it picks its own.
    named = f.release(w["project"], "1.0", added=_hours(0))
    latest = f.release(w["project"], "2.0", added=_hours(1))
    g = f.group(w["project"])
    bulk(
        w["org"].id,
        [g.id],
        status="resolvedInNextRelease",
        status_details=in_release(named.version),
    )
    res = _resolution(g.id)
    assert (res.release_id, res.type) == (latest.id, ResolutionType.IN_NEXT_RELEASE)
