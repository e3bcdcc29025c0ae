"""Activity and GroupHistory rows for many groups at once (one INSERT per table)."""

from __future__ import annotations

from typing import Any

from server.core.bulk_sql import insert_rows
from server.core.context import UpdateContext
from server.core.enums import (
    ACTIVITY_HISTORY,
    SUBSTATUS_HISTORY,
    ActivityType,
    GroupHistoryStatus,
    GroupSubStatus,
)
from server.core.history_sql import HistoryRow, insert_history
from server.storage.models import Activity, Group

H = GroupHistoryStatus

_UNRESOLVED = frozenset({H.UNRESOLVED, H.REGRESSED, H.ESCALATING})
_RESOLVED = frozenset(
    {
        H.RESOLVED,
        H.SET_RESOLVED_IN_RELEASE,
        H.SET_RESOLVED_IN_COMMIT,
        H.SET_RESOLVED_IN_PULL_REQUEST,
        H.AUTO_RESOLVED,
    }
)
_ARCHIVED = frozenset({H.ARCHIVED_UNTIL_ESCALATING, H.ARCHIVED_FOREVER, H.ARCHIVED_UNTIL_CONDITION_MET})
# Sentry's PREVIOUS_STATUSES (§1.13): the row a new history row points back to. The archive
# labels pair with unignore like IGNORED does (inferred: the newest table was not read).
PREVIOUS_HISTORY: dict[H, frozenset[int]] = {
    **{s: frozenset(_UNRESOLVED) for s in _RESOLVED},
    H.UNRESOLVED: frozenset(_RESOLVED),
    H.REGRESSED: frozenset(_RESOLVED),
    H.IGNORED: frozenset({H.UNIGNORED}),
    **{s: frozenset({H.UNIGNORED}) for s in _ARCHIVED},
    H.UNIGNORED: frozenset({H.IGNORED, *_ARCHIVED}),
    H.ESCALATING: frozenset({H.ARCHIVED_UNTIL_ESCALATING}),
    H.ASSIGNED: frozenset({H.UNASSIGNED}),
    H.UNASSIGNED: frozenset({H.ASSIGNED}),
}


def _insert_batched(model: Any, rows: list[dict[str, Any]]) -> None:
    # One short statement whatever the row count (bulk_sql); at most 1000 groups per call.
    insert_rows(model, rows)


# Keyword-only options shared by every writer of activities; a parameter object would only
# move the same five names into each caller.
def record_activities(  # noqa: PLR0913
    ctx: UpdateContext,
    *,
    groups: list[Group],
    type: ActivityType,
    data: dict[str, Any] | None = None,
    idents: dict[int, str] | None = None,
    per_group_data: dict[int, dict[str, Any]] | None = None,
    user_id: int | bool | None = True,
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
    statuses: dict[int, GroupHistoryStatus] = {}
    for g in groups:
        resolved = status if status is not None else _status_for(g, activity)
        if resolved is not None:
            statuses[g.id] = resolved
    rows = [
        HistoryRow(
            organization_id=ctx.organization.id,
            group_id=g.id,
            project_id=g.project_id,
            release_id=release_id,
            user_id=ctx.actor_id,
            status=int(statuses[g.id]),
            previous_statuses=PREVIOUS_HISTORY.get(statuses[g.id], frozenset()),
            date_added=ctx.now,
        )
        for g in groups
        if g.id in statuses
    ]
    insert_history(rows)


def _status_for(group: Group, activity: ActivityType | None) -> GroupHistoryStatus | None:
    return history_status_for(group, activity) if activity is not None else None
