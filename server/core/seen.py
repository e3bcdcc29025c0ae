"""has_seen (§3.10): only for projects where the acting user is a team member."""

from __future__ import annotations

from peewee import EXCLUDED

from server.core.context import UpdateContext
from server.core.errors import InvalidArgument
from server.models import GroupSeen, OrganizationMember, OrganizationMemberTeam, ProjectTeam


def _member_project_ids(ctx: UpdateContext) -> set[int]:
    query = (
        ProjectTeam.select(ProjectTeam.project)
        .join(OrganizationMemberTeam, on=(OrganizationMemberTeam.team == ProjectTeam.team))
        .join(OrganizationMember, on=(OrganizationMember.id == OrganizationMemberTeam.member))
        .where(
            (OrganizationMember.user == ctx.actor_id)
            & (OrganizationMember.organization == ctx.organization.id)
            & ProjectTeam.project.in_(list(ctx.projects))
        )
    )
    return {row.project_id for row in query}


def set_seen(ctx: UpdateContext, *, has_seen: bool) -> None:
    if ctx.actor_id is None:
        raise InvalidArgument.field("has_seen", "An acting user is required to mark issues seen.")
    ctx.delta.has_seen = has_seen
    if not has_seen:
        GroupSeen.delete().where(
            (GroupSeen.user == ctx.actor_id) & GroupSeen.group.in_(ctx.group_ids)
        ).execute()
        return
    allowed = _member_project_ids(ctx)
    rows = [
        {"project": g.project_id, "group": g.id, "user": ctx.actor_id, "last_seen": ctx.now}
        for g in ctx.groups
        if g.project_id in allowed
    ]
    for start in range(0, len(rows), 500):
        GroupSeen.insert_many(rows[start : start + 500]).on_conflict(
            conflict_target=[GroupSeen.user, GroupSeen.group],
            update={GroupSeen.last_seen: EXCLUDED.last_seen},
        ).execute()
