"""Migration 7 (server/storage/migrate_indexes.py): on PostgreSQL the rows an update appends keep
the key to their group only; deleting a project or an organization still takes them along,
through the group."""

from __future__ import annotations

from typing import Any

import pytest

from server.storage import migrate_indexes
from server.storage.models import Activity, Group, GroupHistory, GroupSubscription, Organization, Project, db
from tests import factories as f
from tests.conftest import BACKEND
from tests.core.helpers import single

pytestmark = pytest.mark.db


def _keys(table: str) -> set[str]:
    return {key.column for key in db.get_foreign_keys(table)}


def _indexes(table: str) -> set[str]:
    return {index.name for index in db.get_indexes(table)}


def test_a_migrated_database_keeps_only_the_group_key_where_postgresql_runs(database: str) -> None:
    for table, column in migrate_indexes.REDUNDANT_KEYS:
        assert "group_id" in _keys(table)
        if BACKEND == "postgres":
            assert column not in _keys(table)
            assert f"{table}_{column}" not in _indexes(table)
        else:  # SQLite cannot drop a constraint in place: it keeps them
            assert column in _keys(table)


def _appended_rows(w: dict[str, Any]) -> Group:
    g = f.group(w["project"])
    single(w["org"].id, g.id, user_id=w["user"].id, status="resolved")  # history, activity, subscription
    assert GroupHistory.select().where(GroupHistory.group == g.id).count() == 1
    assert Activity.select().where(Activity.group == g.id).count() == 1
    assert GroupSubscription.select().where(GroupSubscription.group == g.id).count() == 1
    return g


@pytest.mark.parametrize("deleted", ["project", "organization"])
def test_deleting_a_project_or_organization_takes_the_appended_rows_along(database: str, deleted: str) -> None:
    w = f.world()
    g = _appended_rows(w)
    if deleted == "project":
        Project.delete().where(Project.id == w["project"].id).execute()
    else:
        Organization.delete().where(Organization.id == w["org"].id).execute()
    for model in (GroupHistory, Activity, GroupSubscription):
        assert model.select().where(model.group == g.id).count() == 0


def test_the_migration_is_idempotent(database: str) -> None:
    migrate_indexes.drop_redundant_keys()
    migrate_indexes.drop_redundant_keys()
    test_a_migrated_database_keeps_only_the_group_key_where_postgresql_runs(database)
