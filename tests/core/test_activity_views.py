"""The reply's activity list (serialize.activity_views): newest first, consecutive duplicates
dropped except notes (compared as Sentry compares them), the first-seen entry last, at most
`limit` entries."""

from __future__ import annotations

import datetime as dt
from typing import Any

from server.core import serialize
from server.core.enums import ActivityType
from server.core.sqltext import record
from server.storage.models import Activity, Group, User

NOW = dt.datetime(2026, 11, 30, 12)
ALICE = record(User, id=7, username="alice", email="a@x", name="Alice", is_active=True)
GROUP = record(Group, id=1, first_seen=NOW - dt.timedelta(days=1), data={}, priority=50)
RESOLVED, NOTE = int(ActivityType.SET_RESOLVED), int(ActivityType.NOTE)


def _row(aid: int, kind: int, data: Any, actor: User | None = ALICE) -> tuple[Activity, User | None]:
    activity = record(Activity, id=aid, type=kind, ident=None, user_id=actor.id if actor else None,
                      datetime=NOW - dt.timedelta(minutes=aid), data=data)  # fmt: skip
    return activity, actor


def test_consecutive_duplicates_go_notes_stay_and_first_seen_comes_last() -> None:
    rows = [_row(1, RESOLVED, {"a": 1, "b": 2}), _row(2, RESOLVED, {"b": 2, "a": 1}),  # same data, other key order
            _row(3, NOTE, {"text": "hi"}), _row(4, NOTE, {"text": "hi"}), _row(5, RESOLVED, {"a": 2})]  # fmt: skip
    views = serialize.activity_views(GROUP, rows, limit=100)
    assert [(v.id, v.type) for v in views] == [(1, RESOLVED), (3, NOTE), (4, NOTE), (5, RESOLVED),
                                               (0, int(ActivityType.FIRST_SEEN))]  # fmt: skip
    assert {(v.user.id, v.user.name) for v in views if v.user is not None} == {(7, "Alice")}


def test_at_most_limit_entries_and_the_first_seen_entry_only_if_it_fits() -> None:
    rows = [_row(i, RESOLVED if i % 2 else NOTE, {"i": i}) for i in range(1, 11)]
    assert [v.id for v in serialize.activity_views(GROUP, rows, limit=4)] == [1, 2, 3, 4]
    assert [v.id for v in serialize.activity_views(GROUP, rows, limit=11)] == [*range(1, 11), 0]
