"""Assignment at the core tier: §2.3 parsing and checks, §3.8 effects."""

from __future__ import annotations

from typing import Any

import pytest

from server.core.commands import Assignee
from server.core.enums import ActivityType, GroupHistoryStatus, SubscriptionReason
from server.core.errors import InvalidArgument
from server.storage.models import (
    Activity,
    GroupAssignee,
    GroupHistory,
    GroupSubscription,
    OutboxEvent,
)
from tests import factories as f
from tests.core.helpers import bulk, single

PARSE_ERROR = "Could not parse actor. Format should be `type:id` where type is `team` or `user`."


@pytest.fixture()
def w(database: str) -> dict[str, Any]:
    return f.world()


def _refusal(exc: pytest.ExceptionInfo[InvalidArgument]) -> tuple[str, str]:
    violation = exc.value.violations[0]
    return violation.field, violation.description


def _assignee(group_id: int) -> tuple[int | None, int | None] | None:
    row = GroupAssignee.get_or_none(GroupAssignee.group == group_id)
    return None if row is None else (row.user_id, row.team_id)


def _subs(group_id: int) -> dict[int, int]:
    query = GroupSubscription.select().where(GroupSubscription.group == group_id)
    return {s.user_id: s.reason for s in query}


def _activities(group_id: int, kind: ActivityType) -> list[Activity]:
    query = Activity.select().where((Activity.group == group_id) & (Activity.type == int(kind)))
    return list(query.order_by(Activity.id))


def test_assign_to_user_id_writes_assignee_activity_history_and_subscription(w: dict) -> None:
    g = f.group(w["project"])
    u = w["user"]
    result = bulk(w["org"].id, [g.id], user_id=u.id, assigned_to=Assignee("user_id", u.id))
    assert _assignee(g.id) == (u.id, None)
    (act,) = _activities(g.id, ActivityType.ASSIGNED)
    assert act.user_id == u.id
    assert act.data == {"assignee": str(u.id), "assigneeEmail": u.email, "assigneeType": "user"}
    assert GroupHistory.get(GroupHistory.group == g.id).status == GroupHistoryStatus.ASSIGNED
    assert _subs(g.id) == {u.id: SubscriptionReason.ASSIGNED}
    view = result.applied.assigned_to
    assert view is not None
    assert (view.type, view.id, view.name, view.email) == ("user", u.id, u.name, u.email)
    assert result.outcomes[0].outcome == "changed"
    assert OutboxEvent.get(OutboxEvent.group_id == g.id).kind == "issue.assigned"


@pytest.mark.parametrize(
    "form",
    [
        lambda u: Assignee("actor", f"user:{u.id}"),
        lambda u: Assignee("actor", str(u.id)),
        lambda u: Assignee("actor", u.username),
        lambda u: Assignee("actor", u.email),
        lambda u: Assignee("username", u.username),
        lambda u: Assignee("email", u.email),
    ],
    ids=["user:id", "digits", "actor-username", "actor-email", "username", "email"],
)
def test_every_user_form_assigns_the_same_user(w: dict, form: Any) -> None:
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], assigned_to=form(w["user"]))
    assert _assignee(g.id) == (w["user"].id, None)


def test_assign_to_team_subscribes_each_member_and_replies_with_the_slug(w: dict) -> None:
    other = f.user()
    f.member(w["org"], other, teams=(w["team"],))
    g = f.group(w["project"])
    result = bulk(
        w["org"].id,
        [g.id],
        user_id=w["user"].id,
        assigned_to=Assignee("actor", f"team:{w['team'].id}"),
    )
    assert _assignee(g.id) == (None, w["team"].id)
    (act,) = _activities(g.id, ActivityType.ASSIGNED)
    assert act.data == {
        "assignee": str(w["team"].id),
        "assigneeEmail": None,
        "assigneeType": "team",
    }
    assert _subs(g.id) == {
        w["user"].id: SubscriptionReason.ASSIGNED,
        other.id: SubscriptionReason.ASSIGNED,
    }
    view = result.applied.assigned_to
    assert view is not None
    assert (view.type, view.id, view.name) == ("team", w["team"].id, w["team"].slug)


def test_assigning_the_same_user_again_writes_no_activity_but_resubscribes(w: dict) -> None:
    g = f.group(w["project"])
    u = w["user"]
    bulk(w["org"].id, [g.id], assigned_to=Assignee("user_id", u.id))
    GroupSubscription.delete().execute()
    result = bulk(w["org"].id, [g.id], assigned_to=Assignee("user_id", u.id))
    assert len(_activities(g.id, ActivityType.ASSIGNED)) == 1
    assert _subs(g.id) == {u.id: SubscriptionReason.ASSIGNED}
    assert result.outcomes[0].outcome == "unchanged"


def test_assignment_keeps_an_explicit_unsubscribe(w: dict) -> None:
    g = f.group(w["project"])
    GroupSubscription.create(group=g, project=w["project"], user=w["user"], is_active=False, reason=0)
    bulk(w["org"].id, [g.id], assigned_to=Assignee("user_id", w["user"].id))
    sub = GroupSubscription.get(GroupSubscription.group == g.id)
    assert (sub.is_active, sub.reason) == (False, 0)


def test_integration_slack_is_recorded_in_the_activity_and_others_are_not(w: dict) -> None:
    a, b = f.group(w["project"]), f.group(w["project"])
    bulk(w["org"].id, [a.id], assigned_to=Assignee("user_id", w["user"].id), integration="slack")
    bulk(w["org"].id, [b.id], assigned_to=Assignee("user_id", w["user"].id), integration="jira")
    assert _activities(a.id, ActivityType.ASSIGNED)[0].data["integration"] == "slack"
    assert "integration" not in _activities(b.id, ActivityType.ASSIGNED)[0].data


def test_reassigning_to_another_user_drops_only_the_previous_assignment_subscription(
    w: dict,
) -> None:
    g = f.group(w["project"])
    first, second = w["user"], f.user()
    f.member(w["org"], second, teams=(w["team"],))
    watcher = f.user()
    f.member(w["org"], watcher, teams=(w["team"],))
    GroupSubscription.create(group=g, project=w["project"], user=watcher, reason=SubscriptionReason.COMMENT)
    bulk(w["org"].id, [g.id], assigned_to=Assignee("user_id", first.id))
    bulk(w["org"].id, [g.id], assigned_to=Assignee("user_id", second.id))
    assert _assignee(g.id) == (second.id, None)
    assert _subs(g.id) == {
        second.id: SubscriptionReason.ASSIGNED,
        watcher.id: SubscriptionReason.COMMENT,
    }
    assert len(_activities(g.id, ActivityType.ASSIGNED)) == 2


def test_reassigning_a_user_to_a_team_they_belong_to_keeps_their_subscription(w: dict) -> None:
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], assigned_to=Assignee("user_id", w["user"].id))
    bulk(w["org"].id, [g.id], assigned_to=Assignee("team_id", w["team"].id))
    assert _subs(g.id) == {w["user"].id: SubscriptionReason.ASSIGNED}


def test_reassigning_a_team_to_a_user_drops_the_other_members_assignment_subscriptions(
    w: dict,
) -> None:
    g = f.group(w["project"])
    other = f.user()
    f.member(w["org"], other, teams=(w["team"],))
    bulk(w["org"].id, [g.id], assigned_to=Assignee("team_id", w["team"].id))
    bulk(w["org"].id, [g.id], assigned_to=Assignee("user_id", w["user"].id))
    assert _subs(g.id) == {w["user"].id: SubscriptionReason.ASSIGNED}


def test_unassign_deletes_the_row_and_writes_unassigned(w: dict) -> None:
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], assigned_to=Assignee("user_id", w["user"].id))
    result = bulk(w["org"].id, [g.id], user_id=w["user"].id, assigned_to=Assignee("unassign", True))
    assert _assignee(g.id) is None
    (act,) = _activities(g.id, ActivityType.UNASSIGNED)
    assert (act.user_id, act.data) == (w["user"].id, {})
    history = [h.status for h in GroupHistory.select().where(GroupHistory.group == g.id).order_by(GroupHistory.id)]
    assert history == [GroupHistoryStatus.ASSIGNED, GroupHistoryStatus.UNASSIGNED]
    assert _subs(g.id) == {}
    assert result.applied.assigned_to_set and result.applied.assigned_to is None


@pytest.mark.parametrize(
    "unassign",
    [
        Assignee("actor", ""),
        Assignee("actor", "0"),
        Assignee("user_id", 0),
        Assignee("unassign", True),
    ],
)
def test_unassign_of_an_unassigned_group_writes_nothing(w: dict, unassign: Assignee) -> None:
    g = f.group(w["project"])
    result = bulk(w["org"].id, [g.id], assigned_to=unassign)
    assert Activity.select().count() == 0
    assert result.applied.assigned_to_set and result.applied.assigned_to is None
    assert result.outcomes[0].outcome == "unchanged"


def test_single_update_reads_back_the_assignee(w: dict) -> None:
    g = f.group(w["project"])
    view = single(w["org"].id, g.id, assigned_to=Assignee("team_id", w["team"].id))
    assert view.assigned_to is not None
    assert (view.assigned_to.type, view.assigned_to.name) == ("team", w["team"].slug)


def test_bulk_assignment_of_mixed_previous_assignees_changes_only_the_others(w: dict) -> None:
    mine, theirs, free = f.group(w["project"]), f.group(w["project"]), f.group(w["project"])
    other = f.user()
    f.member(w["org"], other, teams=(w["team"],))
    bulk(w["org"].id, [mine.id], assigned_to=Assignee("user_id", w["user"].id))
    bulk(w["org"].id, [theirs.id], assigned_to=Assignee("user_id", other.id))
    result = bulk(w["org"].id, [mine.id, theirs.id, free.id], assigned_to=Assignee("user_id", w["user"].id))
    outcomes = {o.group_id: o.outcome for o in result.outcomes}
    assert outcomes == {mine.id: "unchanged", theirs.id: "changed", free.id: "changed"}
    assert {_assignee(g.id) for g in (mine, theirs, free)} == {(w["user"].id, None)}
    assert _subs(theirs.id) == {w["user"].id: SubscriptionReason.ASSIGNED}


# --- §2.3 errors, in order, as field violations on assigned_to ---------------------------------


def _refused(w: dict, assignee: Assignee, *, groups: list[Any] | None = None) -> tuple[str, str]:
    ids = [g.id for g in groups] if groups else [f.group(w["project"]).id]
    with pytest.raises(InvalidArgument) as exc:
        bulk(w["org"].id, ids, assigned_to=assignee)
    assert GroupAssignee.select().count() == 0 and Activity.select().count() == 0
    return _refusal(exc)


@pytest.mark.parametrize("text", ["user:abc", "team:", "team:x1", "nobody-by-that-name"])
def test_unparsable_actor_strings_are_refused_with_sentrys_parse_error(w: dict, text: str) -> None:
    assert _refused(w, Assignee("actor", text)) == ("assigned_to", PARSE_ERROR)


def test_unknown_email_is_a_parse_error(w: dict) -> None:
    assert _refused(w, Assignee("email", "ghost@example.com")) == ("assigned_to", PARSE_ERROR)


def test_unknown_user_id_does_not_exist(w: dict) -> None:
    assert _refused(w, Assignee("user_id", 987654)) == ("assigned_to", "User does not exist")
    assert _refused(w, Assignee("actor", "user:987654")) == ("assigned_to", "User does not exist")


def test_unknown_team_id_does_not_exist(w: dict) -> None:
    assert _refused(w, Assignee("actor", "team:987654")) == ("assigned_to", "Team does not exist")


def test_team_of_another_organization_is_refused(w: dict) -> None:
    foreign = f.team(f.org())
    expected = ("assigned_to", "Team is not a member of this organization")
    assert _refused(w, Assignee("team_id", foreign.id)) == expected


def test_user_outside_the_organization_is_refused(w: dict) -> None:
    stranger = f.user()
    expected = ("assigned_to", "User is not a member of this organization")
    assert _refused(w, Assignee("user_id", stranger.id)) == expected


def test_deactivated_member_is_refused(w: dict) -> None:
    gone = f.user()
    f.member(w["org"], gone, teams=(w["team"],), is_active=False)
    expected = ("assigned_to", "Cannot assign to a deactivated member")
    assert _refused(w, Assignee("user_id", gone.id)) == expected


def test_member_in_no_team_of_the_project_is_refused(w: dict) -> None:
    loner = f.user()
    f.member(w["org"], loner, teams=(f.team(w["org"]),))
    expected = ("assigned_to", "Cannot assign to non-team member")
    assert _refused(w, Assignee("user_id", loner.id)) == expected


def test_team_without_access_to_the_project_is_refused(w: dict) -> None:
    elsewhere = f.team(w["org"])
    expected = ("assigned_to", "Cannot assign to a team without access to the project")
    assert _refused(w, Assignee("team_id", elsewhere.id)) == expected


def test_open_membership_skips_the_project_checks(w: dict) -> None:
    w["org"].allow_joinleave = True
    w["org"].save()
    loner = f.user()
    f.member(w["org"], loner)
    elsewhere = f.team(w["org"])
    a, b = f.group(w["project"]), f.group(w["project"])
    bulk(w["org"].id, [a.id], assigned_to=Assignee("user_id", loner.id))
    bulk(w["org"].id, [b.id], assigned_to=Assignee("team_id", elsewhere.id))
    assert (_assignee(a.id), _assignee(b.id)) == ((loner.id, None), (None, elsewhere.id))


def test_open_membership_still_refuses_deactivated_members(w: dict) -> None:
    w["org"].allow_joinleave = True
    w["org"].save()
    gone = f.user()
    f.member(w["org"], gone, is_active=False)
    expected = ("assigned_to", "Cannot assign to a deactivated member")
    assert _refused(w, Assignee("user_id", gone.id)) == expected


def test_assignee_is_checked_against_every_project_of_the_selection(w: dict) -> None:
    other_project = f.project(w["org"])
    here, there = f.group(w["project"]), f.group(other_project)
    expected = ("assigned_to", "Cannot assign to non-team member")
    assert _refused(w, Assignee("user_id", w["user"].id), groups=[here, there]) == expected


def test_refused_assignment_leaves_other_fields_of_the_patch_unwritten(w: dict) -> None:
    g = f.group(w["project"], priority=50)
    with pytest.raises(InvalidArgument):
        bulk(w["org"].id, [g.id], user_id=w["user"].id, priority=75, is_bookmarked=True,
             assigned_to=Assignee("user_id", 987654))  # fmt: skip
    g2 = type(g).get_by_id(g.id)
    assert (g2.priority, g2.priority_locked_at) == (50, None)
    assert GroupSubscription.select().count() == 0


@pytest.mark.parametrize(
    ("assignee", "message"),
    [
        (Assignee("actor", "9" * 30), "User does not exist"),
        (Assignee("actor", f"team:{'9' * 30}"), "Team does not exist"),
        (Assignee("user_id", -5), "User does not exist"),
        (Assignee("team_id", 2**63 - 1), "Team does not exist"),
        (Assignee("actor", "user:²"), PARSE_ERROR),
        (Assignee("actor", "²"), PARSE_ERROR),
        (Assignee("actor", "bad\x00name"), PARSE_ERROR),
        (Assignee("username", "bad\x00name"), PARSE_ERROR),
        (Assignee("email", "bad\x00@example.com"), PARSE_ERROR),
    ],
    ids=[
        "huge-user",
        "huge-team",
        "negative",
        "max-bigint-team",
        "sup-digit",
        "sup-alone",
        "nul",
        "nul-username",
        "nul-email",
    ],
)
def test_hostile_assignee_input_is_a_field_error_not_a_crash(w: dict, assignee: Assignee, message: str) -> None:
    assert _refused(w, assignee) == ("assigned_to", message)


def _team_subs(group_id: int) -> dict[int, int]:
    query = GroupSubscription.select().where(
        (GroupSubscription.group == group_id) & GroupSubscription.team.is_null(False)
    )
    return {s.team_id: s.reason for s in query}


def test_with_team_workflow_notifications_the_team_itself_subscribes(w: dict) -> None:
    w["org"].features = ["organizations:team-workflow-notifications"]
    w["org"].save()
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], assigned_to=Assignee("team_id", w["team"].id))
    assert _team_subs(g.id) == {w["team"].id: SubscriptionReason.ASSIGNED}
    assert _subs(g.id) == {None: SubscriptionReason.ASSIGNED}  # only the team's row


def test_with_team_workflow_notifications_reassignment_drops_the_previous_rows(w: dict) -> None:
    w["org"].features = ["organizations:team-workflow-notifications"]
    w["org"].save()
    g = f.group(w["project"])
    bulk(w["org"].id, [g.id], assigned_to=Assignee("team_id", w["team"].id))
    bulk(w["org"].id, [g.id], assigned_to=Assignee("user_id", w["user"].id))
    assert _team_subs(g.id) == {}
    assert _subs(g.id) == {w["user"].id: SubscriptionReason.ASSIGNED}
    # A previous user loses the row even when the new team includes them (no exception here).
    bulk(w["org"].id, [g.id], assigned_to=Assignee("team_id", w["team"].id))
    assert _subs(g.id) == {None: SubscriptionReason.ASSIGNED}
