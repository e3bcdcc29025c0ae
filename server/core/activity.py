"""Activity and GroupHistory rows for many groups at once (one INSERT per table)."""

from __future__ import annotations

import json
from functools import lru_cache
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
from server.storage.models import Activity, Group, GroupHistory, db

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
    previous = _previous_rows(statuses)
    rows = []
    for g in groups:
        if g.id not in statuses:
            continue
        prev = previous.get(g.id)
        rows.append(
            {
                "organization": ctx.organization.id,
                "group": g.id,
                "project": g.project_id,
                "release": release_id,
                "user_id": ctx.actor_id,
                "status": int(statuses[g.id]),
                "prev_history": prev[0] if prev else None,
                "prev_history_date": prev[1] if prev else None,
                "date_added": ctx.now,
            }
        )
    _insert_batched(GroupHistory, rows)


def _status_for(group: Group, activity: ActivityType | None) -> GroupHistoryStatus | None:
    return history_status_for(group, activity) if activity is not None else None


def _previous_rows(statuses: dict[int, GroupHistoryStatus]) -> dict[int, tuple[int, Any]]:
    """Per group, the latest history row of the statuses "opposite" to the new one (§1.13);
    one query per distinct new status, never per group."""
    by_status: dict[GroupHistoryStatus, list[int]] = {}
    for group_id, new_status in statuses.items():
        if new_status in PREVIOUS_HISTORY:
            by_status.setdefault(new_status, []).append(group_id)
    found: dict[int, tuple[int, Any]] = {}
    for new_status, group_ids in by_status.items():
        found.update(_latest_of(group_ids, PREVIOUS_HISTORY[new_status]))
    return found


@lru_cache(maxsize=4)
def _latest_sql(param: str) -> str:
    """Per group, the newest history row among some statuses (ROW_NUMBER over each group)."""
    if param == "%s":
        ids, statuses = "= ANY(%s::bigint[])", "= ANY(%s::int[])"
    else:
        ids = statuses = "IN (SELECT value FROM json_each(?))"
    table = GroupHistory._meta.table_name
    return (
        'SELECT ranked.gid, ranked.hid, ranked.added FROM (SELECT h."id" AS hid,'
        ' h."group_id" AS gid, h."date_added" AS added, ROW_NUMBER() OVER (PARTITION BY'
        ' h."group_id" ORDER BY h."date_added" DESC, h."id" DESC) AS rn'
        f' FROM "{table}" h WHERE h."group_id" {ids} AND h."status" {statuses}) ranked'
        " WHERE ranked.rn = 1"
    )


def _latest_of(group_ids: list[int], statuses: frozenset[int]) -> dict[int, tuple[int, Any]]:
    param = db.obj.param
    values = ([int(g) for g in group_ids], sorted(int(s) for s in statuses))
    params = list(values) if param == "%s" else [json.dumps(v) for v in values]
    cursor = db.execute_sql(_latest_sql(param), params)
    # The subquery's columns bypass field conversion (SQLite returns text): parse explicitly.
    parse: Any = GroupHistory.date_added.python_value
    return {gid: (hid, parse(added)) for gid, hid, added in cursor.fetchall()}
