"""Inbox (§3.7): true puts back with reason MANUAL; false marks reviewed and moves to ongoing."""

from __future__ import annotations

from typing import Any

from server.core import activity
from server.core.bulk_sql import insert_rows, where_id_in
from server.core.context import UpdateContext
from server.core.enums import (
    ActivityType,
    GroupHistoryStatus,
    GroupStatus,
    GroupSubStatus,
    InboxReason,
    PriorityLevel,
)
from server.core.priority import PRIORITY_HISTORY
from server.core.write_sql import delete_in
from server.storage.models import Group, GroupInbox


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
    existing = {
        r.group_id for r in GroupInbox.select(GroupInbox.group).where(where_id_in(GroupInbox.group, ctx.group_ids))
    }
    insert_rows(GroupInbox, rows, ignore=True)
    ctx.mark_changed([g.id for g in ctx.groups if g.id not in existing])


def _mark_reviewed(ctx: UpdateContext) -> None:
    ctx.delta.inbox = "reviewed"
    existing = {
        r.group_id for r in GroupInbox.select(GroupInbox.group).where(where_id_in(GroupInbox.group, ctx.group_ids))
    }
    if existing:
        delete_in(GroupInbox, list(existing))
        reviewed = [g for g in ctx.groups if g.id in existing]
        if ctx.actor_id is not None:
            activity.record_activities(ctx, groups=reviewed, type=ActivityType.MARK_REVIEWED, data={})
            activity.record_history(ctx, groups=reviewed, status=GroupHistoryStatus.REVIEWED)
        ctx.mark_changed(list(existing))
    _to_ongoing(ctx)
    for g in ctx.groups:  # a group that was not in the inbox was not reviewed now: no signal
        if g.id in existing:
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
    escalating = [g for g in movers if g.substatus == GroupSubStatus.ESCALATING]
    Group.update(substatus=int(GroupSubStatus.ONGOING)).where(
        where_id_in(Group.id, ids) & (Group.status == int(GroupStatus.UNRESOLVED))
    ).execute()
    for g in movers:
        g.substatus = int(GroupSubStatus.ONGOING)
    activity.record_activities(
        ctx,
        groups=movers,
        type=ActivityType.AUTO_SET_ONGOING,
        data={"manually": True},
        user_id=None,
    )
    activity.record_history(ctx, groups=movers, status=GroupHistoryStatus.UNRESOLVED)
    _reset_priority(ctx, groups=escalating)
    ctx.mark_changed(ids)


def initial_priority(group: Group) -> int | None:
    """The priority the group was created with, from its metadata (get_initial_priority)."""
    data: Any = group.data if isinstance(group.data, dict) else {}
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    for value in (metadata.get("initial_priority"), data.get("initial_priority")):
        if isinstance(value, int) and value in PriorityLevel._value2member_map_:
            return value
    return None


def _reset_priority(ctx: UpdateContext, *, groups: list[Group]) -> None:
    """A group leaving ESCALATING gets its initial priority back, even if locked (§3.7 step 2)."""
    by_level: dict[int, list[Group]] = {}
    for g in groups:
        level = initial_priority(g)
        if level is not None and level != g.priority:
            by_level.setdefault(level, []).append(g)
    for level, members in by_level.items():  # at most three levels: bounded statements
        Group.update(priority=level).where(where_id_in(Group.id, [g.id for g in members])).execute()
        name = PriorityLevel(level).name.lower()
        data = {"priority": name, "reason": "ongoing"}
        activity.record_activities(ctx, groups=members, type=ActivityType.SET_PRIORITY, data=data, user_id=None)
        activity.record_history(ctx, groups=members, status=PRIORITY_HISTORY[PriorityLevel(level)])
        for g in members:
            g.priority = level
