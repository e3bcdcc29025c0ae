"""Archive conditions (§3.5.1, §3.5.2): snooze rows, inbox removal, the reply's status details."""

from __future__ import annotations

import datetime as dt
from typing import Any

from peewee import EXCLUDED

from server.core.commands import IgnoreConditions
from server.core.context import StatusDetailsView, UpdateContext, UserView
from server.models import GroupInbox, GroupSnooze, User

BATCH = 500


def user_view(user: User | None) -> UserView | None:
    if user is None:
        return None
    return UserView(id=user.id, name=user.name or user.username, username=user.username, email=user.email)


def _normalise(value: int | None) -> int | None:
    """Sentry treats 0 like "not set" here (§5 item 14)."""
    return value or None


def remove_from_inbox(ctx: UpdateContext) -> None:
    GroupInbox.delete().where(GroupInbox.group.in_(ctx.group_ids)).execute()


def archive_until_escalating(ctx: UpdateContext) -> StatusDetailsView:
    # Existing snoozes are kept, as in Sentry; escalation forecasts are not modelled.
    remove_from_inbox(ctx)
    return StatusDetailsView(ignore_until_escalating=True)


def archive_with_conditions(ctx: UpdateContext, *, conditions: IgnoreConditions) -> StatusDetailsView:
    """Snooze until a condition is met, or archive forever when no condition is set."""
    remove_from_inbox(ctx)
    duration = _normalise(conditions.duration)
    count = _normalise(conditions.count)
    window = _normalise(conditions.window)
    user_count = _normalise(conditions.user_count)
    user_window = _normalise(conditions.user_window)
    if not (duration or count or user_count):
        GroupSnooze.delete().where(GroupSnooze.group.in_(ctx.group_ids)).execute()
        return StatusDetailsView()
    until = ctx.now + dt.timedelta(minutes=duration) if duration else None
    rows = [
        {
            "group": g.id,
            "until": until,
            "count": count,
            "window": window,
            "user_count": user_count,
            "user_window": user_window,
            "state": _state(g.times_seen, g.user_count, count, window, user_count, user_window),
            "actor_id": ctx.actor_id,
        }
        for g in ctx.groups
    ]
    _upsert(rows)
    return StatusDetailsView(
        ignore_count=count,
        ignore_until=until,
        ignore_user_count=user_count,
        ignore_user_window=user_window,
        ignore_window=window,
        actor=user_view(ctx.actor),
    )


def _state(
    times_seen: int,
    users_seen: int,
    count: int | None,
    window: int | None,
    user_count: int | None,
    user_window: int | None,
) -> dict[str, Any]:
    """Baselines for conditions without a window, so the snooze counts only what comes after."""
    state: dict[str, Any] = {}
    if count and not window:
        state["times_seen"] = times_seen
    if user_count and not user_window:
        state["users_seen"] = users_seen
    return state


def _upsert(rows: list[dict[str, Any]]) -> None:
    fields = ("until", "count", "window", "user_count", "user_window", "state", "actor_id")
    update = {getattr(GroupSnooze, f): getattr(EXCLUDED, f) for f in fields}
    for start in range(0, len(rows), BATCH):
        GroupSnooze.insert_many(rows[start : start + BATCH]).on_conflict(
            conflict_target=[GroupSnooze.group], update=update
        ).execute()
