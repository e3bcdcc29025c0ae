"""A group's newest activities (every reply) and its newest earlier history row (each history
insert's back-pointer) come from the end of a (group_id, time, id) index, so what an update or a
GetGroup costs does not grow with the group's past (server/storage/migrate_indexes.py).

The group here flapped MANY times; the statements must read a handful of its rows, not all.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from server.core import history_sql, page_reads, reads
from server.storage.models import Activity, GroupHistory, db
from tests import factories as f
from tests.conftest import BACKEND

pytestmark = pytest.mark.db

MANY = 600
LIMIT = 10
RESOLVED, UNRESOLVED = 1, 0
SWAPPED = (  # table, its index before migration 5, after
    ("activity", "activity_group_id", "activity_group_id_datetime_id"),
    ("group_history", "group_history_group_id", "group_history_group_id_date_added_id"),
)


def _flapping_group() -> tuple[int, int, int]:
    w = f.world()
    g = f.group(w["project"])
    start = dt.datetime(2026, 1, 1)
    times = [start + dt.timedelta(minutes=i) for i in range(MANY)]
    Activity.insert_many(
        [{"project": w["project"].id, "group": g.id, "type": 1, "datetime": t} for t in times]
    ).execute()
    GroupHistory.insert_many(
        [{"organization": w["org"].id, "group": g.id, "project": w["project"].id,
          "status": (RESOLVED, UNRESOLVED)[i % 2], "date_added": t} for i, t in enumerate(times)]
    ).execute()  # fmt: skip
    db.execute_sql("ANALYZE")
    return g.id, w["project"].id, w["org"].id


def _history_insert(gid: int, pid: int, org: int) -> tuple[str, list[Any]]:
    row = [org, gid, pid, None, None, RESOLVED, [UNRESOLVED], "2026-06-01 00:00:00"]
    return history_sql._sql(BACKEND == "postgres"), [json.dumps([row])]


def _scans(plan: dict[str, Any], relation: str) -> list[dict[str, Any]]:
    found = [plan] if plan.get("Relation Name") == relation and "Scan" in plan["Node Type"] else []
    for child in plan.get("Plans", []):
        found += _scans(child, relation)
    return found


def _pg_plan(sql: str, params: Any) -> dict[str, Any]:
    with db.atomic() as txn:  # EXPLAIN ANALYZE runs the insert: roll it back
        (row,) = db.execute_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params).fetchone()
        txn.rollback()
    return (json.loads(row) if isinstance(row, str) else row)[0]["Plan"]


def _sqlite_plan(sql: str, params: Any) -> str:
    return "\n".join(str(r[-1]) for r in db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall())


def test_a_reply_reads_only_the_newest_activities(database: str) -> None:
    gid, _, _ = _flapping_group()
    sql, params = reads._group_sql(BACKEND == "postgres"), {"gid": gid, "uid": None, "limit": LIMIT}
    (row,) = [r for r in db.execute_sql(sql, params).fetchall()]
    assert len(reads.with_activities(row).activities) == LIMIT
    if BACKEND == "postgres":
        scans = _scans(_pg_plan(sql, params), "activity")
        assert scans and all(s["Actual Rows"] <= LIMIT for s in scans), scans
    else:
        plan = _sqlite_plan(sql, params)
        assert "USING INDEX activity_group_id_datetime_id" in plan, plan


def test_a_page_reads_only_each_groups_newest_activities(database: str) -> None:
    gid, _, _ = _flapping_group()
    assert len(page_reads.load_activities([gid], limit=LIMIT)[gid]) == LIMIT
    if BACKEND != "postgres":
        pytest.skip("SQLite has no LATERAL: its page read numbers every activity of the page's groups")
    sql = page_reads._activities_sql("%s")
    scans = _scans(_pg_plan(sql, [[gid], LIMIT]), "activity")
    assert scans and all(s["Actual Rows"] <= LIMIT for s in scans), scans


def test_a_history_back_pointer_reads_only_the_newest_rows(database: str) -> None:
    gid, pid, org = _flapping_group()
    sql, params = _history_insert(gid, pid, org)
    if BACKEND == "postgres":
        scans = _scans(_pg_plan(sql, params), "group_history")
        assert scans and all(s["Actual Rows"] <= 2 for s in scans), scans
    else:
        plan = _sqlite_plan(sql, params)
        assert "USING INDEX group_history_group_id_date_added_id" in plan, plan


def test_migration_5_swaps_the_group_id_indexes_of_an_older_database(tmp_path: Any) -> None:
    """A database at version 4 (single-column group_id indexes) gets the composite ones."""
    from server.storage.db import make_database
    from server.storage.migrate import migrate
    from server.storage.models import SchemaVersion

    make_database(f"sqlite:///{tmp_path}/old.db")
    with db.connection_context():
        migrate()
        for table, old, new in SWAPPED:
            db.execute_sql(f"DROP INDEX {new}")
            db.execute_sql(f'CREATE INDEX {old} ON {table} ("group_id")')
        SchemaVersion.delete().where(SchemaVersion.version >= 5).execute()
        assert migrate()[0] == 4
        indexes = {i.name for t in ("activity", "group_history") for i in db.get_indexes(t)}
    assert {new for _, _, new in SWAPPED} <= indexes
    assert not {old for _, old, _ in SWAPPED} & indexes
