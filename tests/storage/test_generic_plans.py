"""An UpdateGroup's statements keep their generic plan once prepared: PostgreSQL plans each of them
once per connection, not on every call.

PostgreSQL's plan cache runs a prepared statement's first five executions with custom plans, then
keeps the generic plan unless the custom plans cost less. A statement whose estimated cost depends
on a parameter's value (the length of an id array) can lose that comparison for ever and be
planned again on every execution: the write statement of a resolve was (server/core/bulk_sql.py,
ids_in). These tests replay each case's statements, with their parameters, on one connection as
prepared statements, and read pg_prepared_statements.
"""

from __future__ import annotations

import psycopg
import pytest

from server.storage.db import SESSION_OPTIONS
from tests import factories as f
from tests.conftest import BACKEND
from tests.core.helpers import single
from tests.core.test_update_statements import CASES, prepared_case
from tests.statements import captured

pytestmark = pytest.mark.db

# Five custom plans, the choice between custom and generic, then a few more to see it kept.
ROUNDS = 12
OWN_QUERY = "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"


@pytest.mark.parametrize("name", sorted(CASES))
def test_update_statements_keep_a_generic_plan(database: str, name: str) -> None:
    if BACKEND != "postgres":
        pytest.skip("PostgreSQL's plan cache (TEST_BACKEND=postgres)")
    w = f.world()
    gid, patch = prepared_case(w, name)
    with captured() as seen:
        single(w["org"].id, gid, user_id=w["user"].id, **patch)
    statements = [(sql, params) for sql, params in seen if not sql.startswith(("BEGIN", "COMMIT"))]
    assert len(statements) >= 2  # the access read and the reply at least
    with psycopg.connect(database, prepare_threshold=0, options=SESSION_OPTIONS) as conn:
        for _ in range(ROUNDS):  # one transaction: psycopg forgets its prepared statements on rollback
            for sql, params in statements:
                conn.execute(sql, params or None)
        plans = [row for row in conn.execute(OWN_QUERY).fetchall() if row[0] != OWN_QUERY]
        conn.rollback()
    assert len(plans) == len({sql for sql, _ in statements})
    replanned = [(sql[:90], custom) for sql, generic, custom in plans if generic == 0]
    assert not replanned, f"planned on every execution: {replanned}"
