"""Set-based bulk work: the SQL statements of a bulk call do not grow with the number of groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from server.core import update
from server.core.commands import Selection, UpdateCommand
from server.storage.models import Group
from tests import factories as f
from tests.core.helpers import caller
from tests.core.test_paging import many_groups
from tests.statements import recorded

BUDGET = 25  # statements per bulk call, whatever the number of groups


def counted(run: Callable[[], Any]) -> int:
    with recorded() as seen:
        run()
    return len(seen)


def resolve(org_id: int, **spec: Any) -> Callable[[], Any]:
    return lambda: update.bulk_update(
        caller=caller(),
        selection_spec=Selection(organization_id=org_id, **spec),
        command=UpdateCommand(status="resolved"),
    )


@pytest.fixture()
def two_worlds(database: str) -> tuple[dict, dict]:
    return f.world(), f.world()


def test_a_bulk_resolve_by_ids_runs_as_many_statements_for_1000_groups_as_for_1(
    two_worlds: tuple[dict, dict],
) -> None:
    small, large = two_worlds
    one = many_groups(small["project"], 1)
    thousand = many_groups(large["project"], 1000)
    few = counted(resolve(small["org"].id, group_ids=tuple(one)))
    many = counted(resolve(large["org"].id, group_ids=tuple(thousand)))
    assert few == many <= BUDGET
    assert Group.select().where(Group.status == 1).count() == 1001


def test_a_bulk_resolve_by_query_runs_as_many_statements_for_1000_groups_as_for_1(
    two_worlds: tuple[dict, dict],
) -> None:
    small, large = two_worlds
    many_groups(small["project"], 1)
    many_groups(large["project"], 1000)
    few = counted(resolve(small["org"].id, query="is:unresolved"))
    many = counted(resolve(large["org"].id, query="is:unresolved"))
    assert few == many <= BUDGET
    assert Group.select().where(Group.status == 1).count() == 1001
