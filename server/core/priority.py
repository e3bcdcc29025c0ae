"""Priority (§3.9): runs before any status change; always locks the priority."""

from __future__ import annotations

from server.core import activity
from server.core.context import UpdateContext
from server.core.enums import ActivityType, GroupHistoryStatus, PriorityLevel
from server.storage.models import Group

PRIORITY_HISTORY = {
    PriorityLevel.HIGH: GroupHistoryStatus.PRIORITY_HIGH,
    PriorityLevel.MEDIUM: GroupHistoryStatus.PRIORITY_MEDIUM,
    PriorityLevel.LOW: GroupHistoryStatus.PRIORITY_LOW,
}


def set_priority(ctx: UpdateContext, *, priority: int) -> None:
    level = PriorityLevel(priority)
    changed = [g for g in ctx.groups if g.priority != int(level)]
    # priority_locked_at is set even when the value does not change (§5 item 18): every group's
    # state changes, so every group's version (its etag) moves.
    Group.update(priority_locked_at=ctx.now).where(Group.id.in_(ctx.group_ids)).execute()
    ctx.mark_changed(ctx.group_ids)
    if changed:
        Group.update(priority=int(level)).where(Group.id.in_([g.id for g in changed])).execute()
        name = level.name.lower()
        activity.record_activities(
            ctx,
            groups=changed,
            type=ActivityType.SET_PRIORITY,
            data={"priority": name, "reason": None},
        )
        activity.record_history(ctx, groups=changed, status=PRIORITY_HISTORY[level])
        for g in changed:
            ctx.notify("issue.priority_updated", group_id=g.id, new=name, previous=_name(g.priority))
            ctx.notify("activity.notification", group_id=g.id, activity_type=int(ActivityType.SET_PRIORITY))
            g.priority = int(level)
    ctx.delta.priority = int(level)


def _name(value: int | None) -> str | None:
    try:
        return PriorityLevel(value).name.lower() if value is not None else None
    except ValueError:
        return None
