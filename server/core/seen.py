"""has_seen (§3.10): only for projects where the acting user is a team member."""

from __future__ import annotations

from server.core import subscriptions
from server.core.bulk_sql import EXCLUDED, insert_rows, where_id_in, write
from server.core.context import UpdateContext
from server.storage.models import GroupSeen, OrganizationMember, OrganizationMemberTeam, ProjectTeam


def _member_project_ids(ctx: UpdateContext, *, user_id: int) -> set[int]:
    """Selected projects with the user in one of their teams (org membership is not enough)."""
    query = (
        ProjectTeam.select(ProjectTeam.project)
        .join(OrganizationMemberTeam, on=(OrganizationMemberTeam.team == ProjectTeam.team))
        .join(OrganizationMember, on=(OrganizationMember.id == OrganizationMemberTeam.member))
        .where(
            (OrganizationMember.user == user_id)
            & (OrganizationMember.organization == ctx.organization.id)
            & ProjectTeam.project.in_(list(ctx.projects))
        )
    )
    return {row.project_id for row in query}


def set_seen(ctx: UpdateContext, *, has_seen: bool) -> None:
    user_id = subscriptions.actor_id_for(ctx, field="has_seen")
    ctx.delta.has_seen = has_seen
    if not has_seen:
        write(GroupSeen.delete().where((GroupSeen.user == user_id) & where_id_in(GroupSeen.group, ctx.group_ids)))
        return
    allowed = _member_project_ids(ctx, user_id=user_id)
    rows = [
        {"project": g.project_id, "group": g.id, "user": user_id, "last_seen": ctx.now}
        for g in ctx.groups
        if g.project_id in allowed
    ]
    insert_rows(GroupSeen, rows, conflict_target=["user", "group"], update={"last_seen": EXCLUDED})
