"""The array/JSON bulk writer stores exactly what peewee's insert_many stores, on both backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from server.core.bulk_sql import EXCLUDED, insert_rows, where_id_in
from server.storage.models import Activity, Group, GroupSubscription, OutboxEvent, db
from tests import factories as f

pytestmark = pytest.mark.db

WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, 678901)
ON_THE_SECOND = dt.datetime(2026, 1, 2, 3, 4, 5)


def _raw(table: str, ids: list[int]) -> list[tuple[Any, ...]]:
    """The stored cells as the driver returns them, without peewee's conversions."""
    cursor = db.execute_sql(f'SELECT * FROM "{table}" WHERE id >= {min(ids)} ORDER BY id')
    return [tuple(row)[1:] for row in cursor.fetchall()]


def _activity_rows(w: dict[str, Any], when: dt.datetime) -> list[dict[str, Any]]:
    return [
        {"project": w["project"].id, "group": g, "type": 1, "ident": ident, "user_id": user,
         "datetime": when, "data": data}
        for g, ident, user, data in [
            (w["ids"][0], None, None, {}),
            (w["ids"][1], "7", w["user"].id, {"version": "1.0", "nested": {"a": [1, True, None]}}),
            (w["ids"][2], "x", None, None),
            # Objects and arrays ride in the row table as JSON, anything else as its JSON text.
            (w["ids"][0], None, None, [1, "a", {"q": 'say "hi"', "u": "é\n"}]),
            (w["ids"][1], None, None, "a bare string"),
            (w["ids"][2], None, None, 5),
        ]
    ]  # fmt: skip


def _world() -> dict[str, Any]:
    w = f.world()
    w["ids"] = [f.group(w["project"]).id for _ in range(3)]
    return w


def _first_new_id(model: Any) -> int:
    last = model.select(model.id).order_by(model.id.desc()).first()
    return (last.id if last else 0) + 1


@pytest.mark.parametrize("when", [WHEN, ON_THE_SECOND])
def test_inserted_rows_are_stored_byte_for_byte_like_peewee_insert_many(database: str, when: dt.datetime) -> None:
    w = _world()
    rows = _activity_rows(w, when)
    start = _first_new_id(Activity)
    Activity.insert_many(rows).execute()
    by_peewee = _raw("activity", [start])
    Activity.delete().execute()
    start = _first_new_id(Activity)
    insert_rows(Activity, rows)
    assert _raw("activity", [start]) == by_peewee
    read = list(Activity.select().order_by(Activity.id))
    assert [(a.ident, a.user_id, a.datetime, a.data) for a in read] == [
        (r["ident"], r["user_id"], r["datetime"], r["data"]) for r in rows
    ]


def test_rows_keep_their_order_so_ids_follow_the_input(database: str) -> None:
    rows = [{"kind": f"k{i}", "group_id": i, "payload": {"i": i}, "created_at": WHEN} for i in range(50)]
    insert_rows(OutboxEvent, rows)
    assert [e.group_id for e in OutboxEvent.select().order_by(OutboxEvent.id)] == list(range(50))


def test_no_rows_runs_no_statement(database: str) -> None:
    seen: list[str] = []
    db.obj.query_hooks.append(lambda event: seen.append(event.sql))
    try:
        insert_rows(OutboxEvent, [])
    finally:
        db.obj.query_hooks.pop()
    assert seen == []


def _subscription(w: dict[str, Any], gid: int, *, active: bool, reason: int) -> dict[str, Any]:
    return {"group": gid, "project": w["project"].id, "user": w["user"].id, "is_active": active,
            "reason": reason, "date_added": WHEN}  # fmt: skip


def test_ignore_keeps_existing_rows_and_inserts_missing_ones(database: str) -> None:
    w = _world()
    insert_rows(GroupSubscription, [_subscription(w, w["ids"][0], active=False, reason=0)])
    rows = [_subscription(w, gid, active=True, reason=3) for gid in w["ids"]]
    insert_rows(GroupSubscription, rows, ignore=True)
    stored = {s.group_id: (s.is_active, s.reason) for s in GroupSubscription.select()}
    assert stored == {w["ids"][0]: (False, 0), w["ids"][1]: (True, 3), w["ids"][2]: (True, 3)}


def test_update_on_conflict_sets_constants_and_excluded_values(database: str) -> None:
    w = _world()
    insert_rows(GroupSubscription, [_subscription(w, w["ids"][0], active=True, reason=3)])
    later = WHEN + dt.timedelta(days=1)
    rows = [{**_subscription(w, gid, active=False, reason=0), "date_added": later} for gid in w["ids"][:2]]
    insert_rows(
        GroupSubscription,
        rows,
        conflict_target=["group", "user"],
        update={"is_active": False, "reason": 9, "date_added": EXCLUDED},
    )
    stored = {s.group_id: (s.is_active, s.reason, s.date_added) for s in GroupSubscription.select()}
    assert stored == {w["ids"][0]: (False, 9, later), w["ids"][1]: (False, 0, later)}


def test_where_id_in_matches_exactly_the_given_ids(database: str) -> None:
    w = _world()
    picked = [w["ids"][0], w["ids"][2]]
    assert sorted(g.id for g in Group.select().where(where_id_in(Group.id, picked))) == picked
    assert list(Group.select().where(where_id_in(Group.id, []))) == []


def test_a_thousand_rows_go_in_one_statement_with_one_parameter(database: str) -> None:
    seen: list[tuple[str, Any]] = []
    db.obj.query_hooks.append(lambda event: seen.append((event.sql, event.params)))
    try:
        rows = [{"kind": "k", "group_id": i, "payload": {}, "created_at": WHEN} for i in range(1000)]
        insert_rows(OutboxEvent, rows)
    finally:
        db.obj.query_hooks.pop()
    assert len(seen) == 1 and len(seen[0][1]) == 1
    assert OutboxEvent.select().count() == 1000
