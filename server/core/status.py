"""Unresolve and archive (§3.5) with substatus inference (§3.6) and side effects (§3.5.3)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from server.core import activity, snooze, subscriptions
from server.core.context import StatusDetailsView, UpdateContext
from server.core.enums import (
    IGNORED_SUBSTATUSES,
    UNRESOLVED_SUBSTATUSES,
    ActivityType,
    GroupStatus,
    GroupSubStatus,
    SubscriptionReason,
)
from server.core.write_sql import delete_in, update_in
from server.storage.models import Group, GroupResolution

NEW_STATUS = {
    "unresolved": GroupStatus.UNRESOLVED,
    "ignored": GroupStatus.IGNORED,
    "muted": GroupStatus.IGNORED,
}
TRANSITION_AFTER_DAYS = 7


def infer_substatus(ctx: UpdateContext, *, new_status: GroupStatus) -> int | None:
    """Sentry's infer_substatus: keep a requested substatus only when it fits the status."""
    requested = ctx.command.substatus
    if new_status == GroupStatus.IGNORED:
        if requested in IGNORED_SUBSTATUSES:
            return requested
        if ctx.command.ignore_conditions().any_sent():
            return int(GroupSubStatus.UNTIL_CONDITION_MET)
        return int(GroupSubStatus.FOREVER)  # a bare ignore archives forever, not until escalating
    if new_status == GroupStatus.UNRESOLVED:
        if requested in UNRESOLVED_SUBSTATUSES:
            return requested
        return _unresolved_substatus(ctx)
    return None


def _unresolved_substatus(ctx: UpdateContext) -> int:
    if ctx.is_bulk:
        return int(GroupSubStatus.ONGOING)
    group = ctx.groups[0]
    if group.status == GroupStatus.IGNORED:
        recent = group.first_seen > ctx.now - dt.timedelta(days=TRANSITION_AFTER_DAYS)
        return int(GroupSubStatus.NEW if recent else GroupSubStatus.ONGOING)
    if group.status == GroupStatus.RESOLVED:
        return int(GroupSubStatus.REGRESSED)
    return int(GroupSubStatus.ONGOING)


def change_status(ctx: UpdateContext, *, status: str) -> None:
    """Unresolve, ignore or mute every selected group."""
    new_status = NEW_STATUS[status]
    new_substatus = infer_substatus(ctx, new_status=new_status)
    previous = {g.id: g.status for g in ctx.groups}
    # The version bump rides on this UPDATE: it changes exactly the groups marked below.
    values = {"status": int(new_status), "substatus": new_substatus}
    update_in(Group, ctx.group_ids, values=values, bump_version=True, status_not=int(new_status))
    delete_in(GroupResolution, ctx.group_ids)
    details = _archive(ctx, substatus=new_substatus) if new_status == GroupStatus.IGNORED else StatusDetailsView()
    ctx.delta.status = status
    ctx.delta.status_details = details
    changed = [gid for gid, old in previous.items() if old != new_status]
    ctx.mark_changed(changed)
    ctx.versioned_ids.update(changed)
    if changed:  # the rows are locked: what the UPDATE changed is what `previous` says differs
        _side_effects(ctx, new_status=new_status, substatus=new_substatus, details=details, previous=previous)


def _archive(ctx: UpdateContext, *, substatus: int | None) -> StatusDetailsView:
    ctx.delta.inbox = "removed"
    if substatus == GroupSubStatus.UNTIL_ESCALATING:
        return snooze.archive_until_escalating(ctx)
    details = snooze.archive_with_conditions(ctx, conditions=ctx.command.ignore_conditions())
    if details.ignore_until or details.ignore_count or details.ignore_user_count:
        ctx.mark_changed(ctx.group_ids)  # a new or changed snooze is a change
    return details


def ignore_activity_data(details: StatusDetailsView) -> dict[str, Any]:
    """Activity data read from the reply's details: ignoreDuration is always null via the API."""
    return {
        "ignoreCount": details.ignore_count,
        "ignoreDuration": None,
        "ignoreUntil": _iso(details.ignore_until),
        "ignoreUserCount": details.ignore_user_count,
        "ignoreUserWindow": details.ignore_user_window,
        "ignoreWindow": details.ignore_window,
        "ignoreUntilEscalating": True if details.ignore_until_escalating else None,
    }


def _iso(value: dt.datetime | None) -> str | None:
    """Sentry's JSON encoder for datetimes: microseconds and a Z suffix, always."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def _side_effects(
    ctx: UpdateContext,
    *,
    new_status: GroupStatus,
    substatus: int | None,
    details: StatusDetailsView,
    previous: dict[int, int],
) -> None:
    """Every selected group gets the activity once any changed (§5 item 11)."""
    for g in ctx.groups:  # in memory, so history labels see the new substatus
        g.status, g.substatus = int(new_status), substatus
    if new_status == GroupStatus.IGNORED:
        kind, data = ActivityType.SET_IGNORED, ignore_activity_data(details)
    else:
        kind, data = ActivityType.SET_UNRESOLVED, {}
    activity.record_activities(ctx, groups=ctx.groups, type=kind, data=data)
    activity.record_history(ctx, groups=ctx.groups, activity=kind)
    _signal(ctx, new_status=new_status, substatus=substatus, details=details, previous=previous)
    if not ctx.is_bulk:
        subscriptions.subscribe_actor(ctx, groups=ctx.groups, reason=SubscriptionReason.STATUS_CHANGE)
        ctx.notify("activity.notification", group_id=ctx.groups[0].id, activity_type=int(kind))


def _signal(
    ctx: UpdateContext, *, new_status: GroupStatus, substatus: int | None, details: StatusDetailsView,
    previous: dict[int, int],
) -> None:  # fmt: skip
    """Sentry's status signals (§3.5.1, §3.5.3), once per group whose status changed."""
    ignored = {"substatus": substatus, **ignore_activity_data(details)}
    for g in ctx.groups:
        if previous[g.id] == new_status:
            continue  # unchanged groups get the activity (Sentry) but no signal
        if new_status == GroupStatus.IGNORED:
            ctx.notify("issue.ignored", group_id=g.id, **ignored)
            if substatus == GroupSubStatus.UNTIL_ESCALATING:
                ctx.notify("issue.archived", group_id=g.id, until_escalating=True)
        elif previous[g.id] == GroupStatus.IGNORED:
            ctx.notify("issue.unignored", group_id=g.id, transition="manual")
        else:
            ctx.notify("issue.unresolved", group_id=g.id)
