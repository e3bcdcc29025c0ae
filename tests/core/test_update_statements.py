"""One UpdateGroup's statements, BEGIN and COMMIT included: at most 7 on PostgreSQL (access and
lock in one statement, the writes in one statement of data-modifying CTEs, the reply in one).
SQLite has no data-modifying CTEs, so its writes stay one statement each (in-process, no round
trip); its own, higher counts are guarded separately. On PostgreSQL the round trips too: two for
a status change (BEGIN with the access and lock; the writes, the reply's read and COMMIT)."""

from __future__ import annotations

from typing import Any

import pytest

from server.core.commands import Assignee, IgnoreConditions
from tests import factories as f
from tests.conftest import BACKEND
from tests.core.helpers import single
from tests.statements import recorded, round_trips

pytestmark = pytest.mark.db

POSTGRES_MAX = 7
# name: (patch, SQLite's count); the PostgreSQL bound is the same for all of them
CASES: dict[str, tuple[dict[str, Any], int]] = {
    "resolve": (dict(status="resolved"), 11),
    "unresolve": (dict(status="unresolved"), 10),
    "ignore_with_count": (dict(status="ignored", top_level_ignore=IgnoreConditions(count=10)), 12),
    "assign": (dict(assigned_to=Assignee("user_id", 0)), 12),  # 0: replaced by the actor below
}


def prepared_case(w: dict[str, Any], name: str) -> tuple[int, dict[str, Any]]:
    g = f.group(w["project"], status=2 if name == "unresolve" else 0)  # unresolve an ignored one
    patch = dict(CASES[name][0])
    if name == "assign":
        patch["assigned_to"] = Assignee("user_id", w["user"].id)
    return g.id, patch


# Assign also reads the assignee's team and project membership (two more round trips).
ROUND_TRIPS = {"resolve": 2, "unresolve": 2, "ignore_with_count": 2, "assign": 4}


@pytest.mark.parametrize("name", sorted(CASES))
def test_update_group_statements_and_round_trips(database: str, name: str) -> None:
    w = f.world()
    gid, patch = prepared_case(w, name)
    with recorded() as seen, round_trips() as trips:
        view = single(w["org"].id, gid, user_id=w["user"].id, **patch)
    assert seen[0].startswith("BEGIN") and seen[-1] == "COMMIT"
    if BACKEND == "postgres":
        assert len(seen) <= POSTGRES_MAX, "\n".join(s[:120] for s in seen)
        assert sum(1 for s in seen if "FOR UPDATE" in s) == 1  # the lock rides on the access read
        # Access and lock with BEGIN first; last, the writes, the reply's read and COMMIT together.
        assert len(trips) == ROUND_TRIPS[name], trips
        assert trips[0][0] == "BEGIN" and trips[-1][-2:] == ["SELECT", "COMMIT"], trips
    else:
        assert len(seen) <= CASES[name][1], "\n".join(s[:120] for s in seen)
    assert view.id == gid
