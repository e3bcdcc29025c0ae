"""Archive conditions (§3.5.1, §3.5.2): snooze rows, inbox removal, the reply's status details."""

from __future__ import annotations

import datetime as dt
from typing import Any

from server.core.bulk_sql import EXCLUDED, insert_rows
from server.core.commands import IgnoreConditions
from server.core.context import StatusDetailsView, UpdateContext, UserView
from server.core.write_sql import delete_in, delete_in_returning
from server.storage.models import Group, GroupInbox, GroupSnooze, User


def user_view(user: User | None) -> UserView | None:
    if user is None:
        return None
    return UserView(id=user.id, name=user.name or user.username, username=user.username, email=user.email)


def _normalise(value: int | None) -> int | None:
    """Sentry treats 0 like "not set" here (§5 item 14)."""
    return value or None


def remove_from_inbox(ctx: UpdateContext) -> None:
    delete_in(GroupInbox, ctx.group_ids)


def archive_until_escalating(ctx: UpdateContext) -> StatusDetailsView:
    # Existing snoozes are kept, as in Sentry; escalation forecasts are not modelled.
    remove_from_inbox(ctx)
    return StatusDetailsView(ignore_until_escalating=True)


def archive_with_conditions(ctx: UpdateContext, *, conditions: IgnoreConditions) -> StatusDetailsView:
    """Snooze until a condition is met, or archive forever when no condition is set."""
    remove_from_inbox(ctx)
    c = IgnoreConditions(
        duration=_normalise(conditions.duration),
        count=_normalise(conditions.count),
        window=_normalise(conditions.window),
        user_count=_normalise(conditions.user_count),
        user_window=_normalise(conditions.user_window),
    )
    if not (c.duration or c.count or c.user_count):
        # Archived for ever: a group that had a snooze loses its conditions, a change of its
        # state (its etag must move, though its status may not).
        ctx.mark_changed(delete_in_returning(GroupSnooze, ctx.group_ids))
        return StatusDetailsView()
    until = ctx.now + dt.timedelta(minutes=c.duration) if c.duration else None
    rows = [
        {
            "group": g.id,
            "until": until,
            "count": c.count,
            "window": c.window,
            "user_count": c.user_count,
            "user_window": c.user_window,
            "state": _state(g, conditions=c),
            "actor_id": ctx.actor_id,
        }
        for g in ctx.groups
    ]
    _upsert(rows)
    return StatusDetailsView(
        ignore_count=c.count,
        ignore_until=until,
        ignore_user_count=c.user_count,
        ignore_user_window=c.user_window,
        ignore_window=c.window,
        actor=user_view(ctx.actor),
    )


def _state(group: Group, *, conditions: IgnoreConditions) -> dict[str, Any]:
    """Baselines for conditions without a window, so the snooze counts only what comes after."""
    state: dict[str, Any] = {}
    if conditions.count and not conditions.window:
        state["times_seen"] = group.times_seen
    if conditions.user_count and not conditions.user_window:
        state["users_seen"] = group.user_count  # the group's distinct users so far
    return state


def _upsert(rows: list[dict[str, Any]]) -> None:
    fields = ("until", "count", "window", "user_count", "user_window", "state", "actor_id")
    insert_rows(GroupSnooze, rows, conflict_target=["group"], update=dict.fromkeys(fields, EXCLUDED))
