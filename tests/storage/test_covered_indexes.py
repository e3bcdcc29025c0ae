"""No index that a unique index on the same leading column covers (migration 6,
server/storage/migrate_indexes.py): lookups by that column use the unique index instead."""

from __future__ import annotations

import pytest

from server.storage import migrate_indexes
from server.storage.models import GroupSubscription, User, db
from tests import factories as f
from tests.conftest import BACKEND

pytestmark = pytest.mark.db

COVERING = {  # table -> the unique index that serves lookups by the dropped index's column
    "group_subscription": "group_subscription_group_id_user_id",
    "group_bookmark": "group_bookmark_project_id_user_id_group_id",
    "group_seen": "group_seen_user_id_group_id",
}


def _indexes(table: str) -> set[str]:
    return {index.name for index in db.get_indexes(table)}


def test_a_migrated_database_has_the_covering_indexes_only(database: str) -> None:
    for table, dropped in migrate_indexes.COVERED:
        names = _indexes(table)
        assert dropped not in names
        assert COVERING[table] in names


def test_the_migration_drops_them_from_a_database_made_before(database: str) -> None:
    columns = {"group_subscription": "group_id", "group_bookmark": "project_id", "group_seen": "user_id"}
    for table, index in migrate_indexes.COVERED:
        db.execute_sql(f'CREATE INDEX {index} ON {table} ("{columns[table]}")')
    assert all(index in _indexes(table) for table, index in migrate_indexes.COVERED)
    migrate_indexes.drop_covered()
    assert not any(index in _indexes(table) for table, index in migrate_indexes.COVERED)
    migrate_indexes.drop_covered()  # idempotent


@pytest.mark.skipif(BACKEND != "postgres", reason="PostgreSQL's planner")
def test_subscriptions_of_a_group_are_found_through_the_unique_index(database: str) -> None:
    w = f.world()
    users = [User.create(username=f"u{i}", email=f"u{i}@example.com").id for i in range(20)]
    groups = [f.group(w["project"]).id for _ in range(100)]
    GroupSubscription.insert_many(
        [{"group": g, "project": w["project"].id, "user": u, "reason": 0} for g in groups for u in users]
    ).execute()
    db.execute_sql("ANALYZE group_subscription")
    plan = "\n".join(
        row[0] for row in db.execute_sql("EXPLAIN SELECT id FROM group_subscription WHERE group_id = %s", (groups[7],))
    )
    assert "Seq Scan" not in plan, plan
    assert "group_subscription_group_id_user_id" in plan or "group_subscription_group_id_team_id" in plan, plan
