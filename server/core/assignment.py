"""Assignment (§2.3 checks in Sentry's order, §3.8 effects), set-based over the selection."""

from __future__ import annotations

from dataclasses import dataclass

from server.core import activity, subscriptions
from server.core.commands import Assignee
from server.core.context import ActorView, UpdateContext
from server.core.enums import ActivityType, GroupHistoryStatus, SubscriptionReason
from server.core.errors import InvalidArgument
from server.models import (
    Group,
    GroupAssignee,
    OrganizationMember,
    OrganizationMemberTeam,
    Project,
    ProjectTeam,
    Team,
    User,
)

FIELD = "assigned_to"
PARSE_ERROR = "Could not parse actor. Format should be `type:id` where type is `team` or `user`."
CHAT_INTEGRATIONS = frozenset({"slack", "msteams"})


@dataclass(frozen=True)
class _Target:
    kind: str  # "user", "team" or "unassign"
    id: int = 0
    username: str | None = None
    email: str | None = None


def _invalid(message: str) -> InvalidArgument:
    return InvalidArgument.field(FIELD, message)


def _parse_actor_string(text: str) -> _Target:
    if text == "":
        return _Target("unassign")
    if text.isdigit():
        return _Target("user", int(text))
    kind, sep, rest = text.partition(":")
    if sep and kind in ("user", "team"):
        if not rest.isdigit():
            raise _invalid(PARSE_ERROR)
        return _Target(kind, int(rest))
    return _Target("user", username=text)


def _parse(assignee: Assignee) -> _Target:
    kind, value = assignee.kind, assignee.value
    if kind == "unassign":
        return _Target("unassign")
    if kind == "user_id":
        return _Target("user", int(value or 0))
    if kind == "team_id":
        return _Target("team", int(value or 0))
    if kind == "username":
        return _Target("user", username=str(value))
    if kind == "email":
        return _Target("user", email=str(value))
    return _parse_actor_string(str(value or ""))


def _lookup_user(target: _Target) -> User:
    if target.username is not None:
        user = User.get_or_none(User.username == target.username)
        if user is None:  # Sentry documents "username or primary e-mail"
            user = User.get_or_none(User.email == target.username)
    elif target.email is not None:
        user = User.get_or_none(User.email == target.email)
    else:
        user = User.get_or_none(User.id == target.id)
        if user is None:
            raise _invalid("User does not exist")
        return user
    if user is None:
        raise _invalid(PARSE_ERROR)
    return user


def validate_assignee(ctx: UpdateContext, *, assignee: Assignee, project: Project) -> ActorView | None:
    """The assignee for `project`, or None to unassign; raises with Sentry's message and order."""
    target = _parse(assignee)
    if target.kind == "unassign":
        return None
    if target.kind == "team":
        return _validate_team(ctx, team_id=target.id, project=project)
    return _validate_user(ctx, user=_lookup_user(target), project=project)


def _validate_team(ctx: UpdateContext, *, team_id: int, project: Project) -> ActorView:
    team = Team.get_or_none(Team.id == team_id)
    if team is None:
        raise _invalid("Team does not exist")
    if team.organization_id != ctx.organization.id:
        raise _invalid("Team is not a member of this organization")
    if not ctx.organization.allow_joinleave:
        linked = ProjectTeam.get_or_none(
            (ProjectTeam.project == project.id) & (ProjectTeam.team == team.id)
        )
        if linked is None:
            raise _invalid("Cannot assign to a team without access to the project")
    return ActorView(type="team", id=team.id, name=team.slug)


def _validate_user(ctx: UpdateContext, *, user: User, project: Project) -> ActorView:
    member = OrganizationMember.get_or_none(
        (OrganizationMember.organization == ctx.organization.id) & (OrganizationMember.user == user.id)
    )
    if member is None:
        raise _invalid("User is not a member of this organization")
    if not member.is_active:
        raise _invalid("Cannot assign to a deactivated member")
    if not ctx.organization.allow_joinleave and not _in_project_team(member.id, project.id):
        raise _invalid("Cannot assign to non-team member")
    return ActorView(type="user", id=user.id, name=user.name or user.username, email=user.email)


def _in_project_team(member_id: int, project_id: int) -> bool:
    query = (
        OrganizationMemberTeam.select()
        .join(ProjectTeam, on=(ProjectTeam.team == OrganizationMemberTeam.team))
        .where((OrganizationMemberTeam.member == member_id) & (ProjectTeam.project == project_id))
    )
    return bool(query.exists())


def team_member_ids(team_id: int) -> list[int]:
    query = (
        OrganizationMember.select(OrganizationMember.user)
        .join(OrganizationMemberTeam)
        .where((OrganizationMemberTeam.team == team_id) & (OrganizationMember.is_active == True))  # noqa: E712
    )
    return [m.user_id for m in query]


def apply(ctx: UpdateContext, *, assignee: ActorView | None) -> None:
    """Assign every selected group to `assignee`, or unassign when it is None."""
    ctx.delta.assigned_to_set = True
    ctx.delta.assigned_to = assignee
    current = {a.group_id: a for a in GroupAssignee.select().where(GroupAssignee.group.in_(ctx.group_ids))}
    if assignee is None:
        _unassign(ctx, current=current)
    else:
        _assign(ctx, assignee=assignee, current=current)


def _same(row: GroupAssignee, assignee: ActorView) -> bool:
    if assignee.type == "user":
        return bool(row.user_id == assignee.id)
    return bool(row.team_id == assignee.id)


def _assign(ctx: UpdateContext, *, assignee: ActorView, current: dict[int, GroupAssignee]) -> None:
    new_user_ids = [assignee.id] if assignee.type == "user" else team_member_ids(assignee.id)
    subscriptions.subscribe_users(
        ctx, groups=ctx.groups, user_ids=new_user_ids, reason=SubscriptionReason.ASSIGNED
    )
    changed = [g for g in ctx.groups if g.id not in current or not _same(current[g.id], assignee)]
    if not changed:
        return
    _upsert_assignees(ctx, groups=changed, assignee=assignee)
    _drop_old_subscriptions(ctx, previous=[current[g.id] for g in changed if g.id in current], keep=new_user_ids)
    data: dict[str, object] = {
        "assignee": str(assignee.id),
        "assigneeEmail": assignee.email or None,
        "assigneeType": assignee.type,
    }
    if ctx.command.integration in CHAT_INTEGRATIONS:
        data["integration"] = ctx.command.integration
    activity.record_activities(ctx, groups=changed, type=ActivityType.ASSIGNED, data=data)
    activity.record_history(ctx, groups=changed, status=GroupHistoryStatus.ASSIGNED)
    ctx.mark_changed([g.id for g in changed])
    for g in changed:
        ctx.notify("issue.assigned", group_id=g.id, assignee=data)


def _upsert_assignees(ctx: UpdateContext, *, groups: list[Group], assignee: ActorView) -> None:
    user_id = assignee.id if assignee.type == "user" else None
    team_id = assignee.id if assignee.type == "team" else None
    rows = [
        {"group": g.id, "project": g.project_id, "user": user_id, "team": team_id, "date_added": ctx.now}
        for g in groups
    ]
    for start in range(0, len(rows), 500):
        GroupAssignee.insert_many(rows[start : start + 500]).on_conflict(
            conflict_target=[GroupAssignee.group],
            update={
                GroupAssignee.user: user_id,
                GroupAssignee.team: team_id,
                GroupAssignee.date_added: ctx.now,
            },
        ).execute()


def _unassign(ctx: UpdateContext, *, current: dict[int, GroupAssignee]) -> None:
    groups = [g for g in ctx.groups if g.id in current]
    if not groups:
        return
    GroupAssignee.delete().where(GroupAssignee.group.in_([g.id for g in groups])).execute()
    _drop_old_subscriptions(ctx, previous=list(current.values()), keep=[])
    activity.record_activities(ctx, groups=groups, type=ActivityType.UNASSIGNED, data={})
    activity.record_history(ctx, groups=groups, status=GroupHistoryStatus.UNASSIGNED)
    ctx.mark_changed([g.id for g in groups])
    for g in groups:
        ctx.notify("issue.unassigned", group_id=g.id)


def _drop_old_subscriptions(ctx: UpdateContext, *, previous: list[GroupAssignee], keep: list[int]) -> None:
    """Remove the previous assignee's assignment subscriptions, except for the new assignee(s)."""
    pairs: list[tuple[int, int]] = []
    team_members: dict[int, list[int]] = {}
    for row in previous:
        if row.user_id is not None:
            users = [row.user_id]
        else:
            users = team_members.setdefault(row.team_id, team_member_ids(row.team_id))
        pairs.extend((row.group_id, uid) for uid in users if uid not in keep)
    if pairs:
        subscriptions.unsubscribe_pairs(pairs=pairs, reason=SubscriptionReason.ASSIGNED)
