"""Activity and GroupHistory rows for many groups at once (one INSERT per table)."""

from __future__ import annotations

from typing import Any

from server.core.context import UpdateContext
from server.core.enums import (
    ACTIVITY_HISTORY,
    SUBSTATUS_HISTORY,
    ActivityType,
    GroupHistoryStatus,
    GroupSubStatus,
)
from server.models import Activity, Group, GroupHistory

INSERT_BATCH = 500  # rows per INSERT: stays under every backend's bound-variable limit


def _insert_batched(model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), INSERT_BATCH):
        model.insert_many(rows[start : start + INSERT_BATCH]).execute()


def record_activities(
    ctx: UpdateContext,
    *,
    groups: list[Group],
    type: ActivityType,
    data: dict[str, Any] | None = None,
    idents: dict[int, str] | None = None,
    per_group_data: dict[int, dict[str, Any]] | None = None,
    user_id: int | None | bool = True,
) -> None:
    """One activity per group; user_id=True means the acting user."""
    actor = ctx.actor_id if user_id is True else (user_id or None)
    rows = [
        {
            "project": g.project_id,
            "group": g.id,
            "type": int(type),
            "ident": (idents or {}).get(g.id),
            "user_id": actor,
            "datetime": ctx.now,
            "data": (per_group_data or {}).get(g.id, data if data is not None else {}),
        }
        for g in groups
    ]
    _insert_batched(Activity, rows)


def history_status_for(group: Group, activity: ActivityType) -> GroupHistoryStatus | None:
    """A substatus label wins over the activity mapping (§1.13)."""
    if group.substatus is not None:
        try:
            label = SUBSTATUS_HISTORY.get(GroupSubStatus(group.substatus))
        except ValueError:
            label = None
        if label is not None:
            return label
    return ACTIVITY_HISTORY.get(activity)


def record_history(
    ctx: UpdateContext,
    *,
    groups: list[Group],
    status: GroupHistoryStatus | None = None,
    activity: ActivityType | None = None,
    release_id: int | None = None,
) -> None:
    """GroupHistory rows; with `activity`, each group's status comes from §1.13's mapping."""
    rows = []
    for g in groups:
        resolved = status if status is not None else history_status_for(g, activity)  # type: ignore[arg-type]
        if resolved is None:
            continue
        rows.append(
            {
                "organization": ctx.organization.id,
                "group": g.id,
                "project": g.project_id,
                "release": release_id,
                "user_id": ctx.actor_id,
                "status": int(resolved),
                "date_added": ctx.now,
            }
        )
    _insert_batched(GroupHistory, rows)
