"""Set-based work: a bulk update runs the same number of SQL statements for 1 and 1000 groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from server.core.commands import IgnoreConditions
from server.storage.models import Group
from tests import factories as f
from tests.core.helpers import bulk
from tests.statements import recorded

MAX_STATEMENTS = 25


def _groups(w: dict, n: int, **kw: Any) -> list[int]:
    rows = [{"project": w["project"].id, "status": 0, "substatus": 3, "title": "E", **kw} for _ in range(n)]
    first = Group.select().count()
    for start in range(0, n, 250):
        Group.insert_many(rows[start : start + 250]).execute()
    return [g.id for g in Group.select(Group.id).order_by(Group.id).offset(first)]


def _statements(w: dict, n: int, call: Callable[[list[int]], Any]) -> int:
    ids = _groups(w, n)
    with recorded() as statements:
        call(ids)
    return len(statements)


CASES = {
    "resolve": dict(status="resolved"),
    "unresolve": dict(status="unresolved"),
    "ignore_forever": dict(status="ignored"),
    "ignore_with_count": dict(status="ignored", top_level_ignore=IgnoreConditions(count=10)),
    "priority": dict(priority=75),
    "inbox_false": dict(inbox=False),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_statement_count_does_not_grow_with_group_count(database: str, name: str) -> None:
    w = f.world()
    patch = CASES[name]
    one = _statements(w, 1, lambda ids: bulk(w["org"].id, ids, user_id=w["user"].id, **patch))
    two = _statements(w, 2, lambda ids: bulk(w["org"].id, ids, user_id=w["user"].id, **patch))
    many = _statements(w, 1000, lambda ids: bulk(w["org"].id, ids, user_id=w["user"].id, **patch))
    # A single group may cost one or two more (Sentry subscribes and notifies only then).
    assert two == many, f"{name}: {two} statements for 2 groups, {many} for 1000"
    assert many <= one <= MAX_STATEMENTS, f"{name}: {one} for 1 group, {many} for 1000"
