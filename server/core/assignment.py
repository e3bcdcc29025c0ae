"""Assignment effects (§3.8), set-based over the selection; assignee.py checks whom to assign."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from server.core import activity, settings, subscriptions
from server.core.bulk_sql import insert_rows
from server.core.context import ActorView, UpdateContext
from server.core.enums import ActivityType, GroupHistoryStatus, SubscriptionReason
from server.core.reads import rows_where_in
from server.core.write_sql import delete_in
from server.storage.models import Group, GroupAssignee, OrganizationMember, OrganizationMemberTeam

CHAT_INTEGRATIONS = frozenset({"slack", "msteams"})
TEAM_WORKFLOW = "organizations:team-workflow-notifications"


def members_by_team(team_ids: Iterable[int], *, active_only: bool = False) -> dict[int, list[int]]:
    """User ids of each team's members, in one query whatever the number of teams."""
    ids = sorted(set(team_ids))
    if not ids:
        return {}
    query = (
        OrganizationMemberTeam.select(OrganizationMemberTeam.team, OrganizationMember.user)
        .join(OrganizationMember)
        .where(OrganizationMemberTeam.team.in_(ids))
    )
    if active_only:
        query = query.where(OrganizationMember.is_active == True)  # noqa: E712
    out: dict[int, list[int]] = {tid: [] for tid in ids}
    rows: Any = query.tuples()
    for team_id, user_id in rows:
        out[team_id].append(user_id)
    return out


def team_member_ids(team_id: int) -> list[int]:
    return members_by_team([team_id], active_only=True)[team_id]


def apply(ctx: UpdateContext, *, assignee: ActorView | None) -> None:
    """Assign every selected group to `assignee`, or unassign when it is None."""
    ctx.delta.assigned_to_set = True
    ctx.delta.assigned_to = assignee
    current = {a.group_id: a for a in rows_where_in(GroupAssignee, ctx.group_ids)}
    if assignee is None:
        _unassign(ctx, current=current)
    else:
        _assign(ctx, assignee=assignee, current=current)


def _same(row: GroupAssignee, assignee: ActorView) -> bool:
    if assignee.type == "user":
        return bool(row.user_id == assignee.id)
    return bool(row.team_id == assignee.id)


def _assign(ctx: UpdateContext, *, assignee: ActorView, current: dict[int, GroupAssignee]) -> None:
    new_user_ids = _subscribe_assignee(ctx, assignee=assignee)
    changed = [g for g in ctx.groups if g.id not in current or not _same(current[g.id], assignee)]
    if not changed:
        return
    _upsert_assignees(ctx, groups=changed, assignee=assignee)
    previous = [current[g.id] for g in changed if g.id in current]
    _drop_old_subscriptions(ctx, previous=previous, assignee=assignee, new_members=new_user_ids)
    data: dict[str, object] = {
        "assignee": str(assignee.id),
        "assigneeEmail": (assignee.email or None) if assignee.type == "user" else None,
        "assigneeType": assignee.type,
    }
    if ctx.command.integration in CHAT_INTEGRATIONS:
        data["integration"] = ctx.command.integration
    activity.record_activities(ctx, groups=changed, type=ActivityType.ASSIGNED, data=data)
    activity.record_history(ctx, groups=changed, status=GroupHistoryStatus.ASSIGNED)
    ctx.mark_changed([g.id for g in changed])
    for g in changed:  # Sentry sends the ASSIGNED notification in bulk too (§3.8)
        ctx.notify("issue.assigned", group_id=g.id, assignee=data)
        ctx.notify("activity.notification", group_id=g.id, activity_type=int(ActivityType.ASSIGNED))


def _team_workflow(ctx: UpdateContext) -> bool:
    return settings.feature_enabled(ctx.organization, TEAM_WORKFLOW)


def _subscribe_assignee(ctx: UpdateContext, *, assignee: ActorView) -> list[int]:
    """Step 1 of §3.8, run even when the assignee does not change; returns the new member ids."""
    reason = SubscriptionReason.ASSIGNED
    if assignee.type == "user":
        subscriptions.subscribe_users(ctx, groups=ctx.groups, user_ids=[assignee.id], reason=reason)
        return [assignee.id]
    members = team_member_ids(assignee.id)
    if _team_workflow(ctx):
        subscriptions.subscribe_team(ctx, groups=ctx.groups, team_id=assignee.id, reason=reason)
    else:
        subscriptions.subscribe_users(ctx, groups=ctx.groups, user_ids=members, reason=reason)
    return members


def _upsert_assignees(ctx: UpdateContext, *, groups: list[Group], assignee: ActorView) -> None:
    user_id = assignee.id if assignee.type == "user" else None
    team_id = assignee.id if assignee.type == "team" else None
    rows = [
        {
            "group": g.id,
            "project": g.project_id,
            "user": user_id,
            "team": team_id,
            "date_added": ctx.now,
        }
        for g in groups
    ]
    insert_rows(
        GroupAssignee,
        rows,
        conflict_target=["group"],
        update={"user": user_id, "team": team_id, "date_added": ctx.now},
    )


def _unassign(ctx: UpdateContext, *, current: dict[int, GroupAssignee]) -> None:
    groups = [g for g in ctx.groups if g.id in current]
    if not groups:
        return
    delete_in(GroupAssignee, [g.id for g in groups])
    _drop_old_subscriptions(ctx, previous=list(current.values()), assignee=None, new_members=[])
    activity.record_activities(ctx, groups=groups, type=ActivityType.UNASSIGNED, data={})
    activity.record_history(ctx, groups=groups, status=GroupHistoryStatus.UNASSIGNED)
    ctx.mark_changed([g.id for g in groups])
    for g in groups:
        ctx.notify("issue.unassigned", group_id=g.id)
        ctx.notify("activity.notification", group_id=g.id, activity_type=int(ActivityType.UNASSIGNED))


def _drop_old_subscriptions(
    ctx: UpdateContext,
    *,
    previous: list[GroupAssignee],
    assignee: ActorView | None,
    new_members: list[int],
) -> None:
    """Sentry's remove_old_assignees: a previous team's members lose their assignment subscription
    except the new user assignee; a previous user keeps it only when the new team includes them.
    With team workflow notifications the team's own row goes, and a previous user's always."""
    if _team_workflow(ctx):
        _drop_team_workflow_subscriptions(previous=previous)
        return
    new_user = assignee.id if assignee is not None and assignee.type == "user" else None
    keep_previous_user = set(new_members) if assignee is not None and assignee.type == "team" else set()
    members = members_by_team(r.team_id for r in previous if r.team_id is not None)
    pairs: list[tuple[int, int]] = []
    for row in previous:
        if row.user_id is not None:
            if row.user_id not in keep_previous_user:
                pairs.append((row.group_id, row.user_id))
        elif row.team_id is not None:
            team = members.get(row.team_id, [])
            pairs.extend((row.group_id, uid) for uid in team if uid != new_user)
    if pairs:
        subscriptions.unsubscribe_pairs(pairs=pairs, reason=SubscriptionReason.ASSIGNED)


def _drop_team_workflow_subscriptions(*, previous: list[GroupAssignee]) -> None:
    users = [(r.group_id, r.user_id) for r in previous if r.user_id is not None]
    teams = [(r.group_id, r.team_id) for r in previous if r.team_id is not None]
    reason = SubscriptionReason.ASSIGNED
    if users:
        subscriptions.unsubscribe_pairs(pairs=users, reason=reason)
    if teams:
        subscriptions.unsubscribe_pairs(pairs=teams, reason=reason, teams=True)
