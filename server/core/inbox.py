"""Inbox (§3.7): true puts back with reason MANUAL; false marks reviewed and moves to ongoing."""

from __future__ import annotations

from server.core import activity
from server.core.context import UpdateContext
from server.core.enums import (
    ActivityType,
    GroupHistoryStatus,
    GroupStatus,
    GroupSubStatus,
    InboxReason,
)
from server.models import Group, GroupInbox


def set_inbox(ctx: UpdateContext, *, inbox: bool) -> None:
    if inbox:
        _add(ctx)
    else:
        _mark_reviewed(ctx)


def _add(ctx: UpdateContext) -> None:
    ctx.delta.inbox = "added"
    rows = [
        {"group": g.id, "project": g.project_id, "organization": ctx.organization.id,
         "reason": int(InboxReason.MANUAL), "reason_details": None, "date_added": ctx.now}
        for g in ctx.groups
    ]  # fmt: skip
    existing = {r.group_id for r in GroupInbox.select(GroupInbox.group).where(GroupInbox.group.in_(ctx.group_ids))}
    for start in range(0, len(rows), 500):
        GroupInbox.insert_many(rows[start : start + 500]).on_conflict_ignore().execute()
    ctx.mark_changed([g.id for g in ctx.groups if g.id not in existing])


def _mark_reviewed(ctx: UpdateContext) -> None:
    ctx.delta.inbox = "reviewed"
    existing = {r.group_id for r in GroupInbox.select(GroupInbox.group).where(GroupInbox.group.in_(ctx.group_ids))}
    if existing:
        GroupInbox.delete().where(GroupInbox.group.in_(list(existing))).execute()
        reviewed = [g for g in ctx.groups if g.id in existing]
        if ctx.actor_id is not None:
            activity.record_activities(ctx, groups=reviewed, type=ActivityType.MARK_REVIEWED, data={})
            activity.record_history(ctx, groups=reviewed, status=GroupHistoryStatus.REVIEWED)
        ctx.mark_changed(list(existing))
    _to_ongoing(ctx)
    for g in ctx.groups:
        ctx.notify("issue.mark_reviewed", group_id=g.id)


def _to_ongoing(ctx: UpdateContext) -> None:
    """Unresolved groups not ongoing move to ongoing (conditional update, §3.7 step 2)."""
    movers = [
        g for g in ctx.groups
        if g.status == GroupStatus.UNRESOLVED and g.substatus != GroupSubStatus.ONGOING
    ]  # fmt: skip
    if not movers:
        return
    ids = [g.id for g in movers]
    Group.update(substatus=int(GroupSubStatus.ONGOING)).where(
        Group.id.in_(ids) & (Group.status == int(GroupStatus.UNRESOLVED))
    ).execute()
    for g in movers:
        g.substatus = int(GroupSubStatus.ONGOING)
    activity.record_activities(
        ctx, groups=movers, type=ActivityType.AUTO_SET_ONGOING, data={"manually": True}, user_id=None
    )
    activity.record_history(ctx, groups=movers, status=GroupHistoryStatus.UNRESOLVED)
    ctx.mark_changed(ids)
