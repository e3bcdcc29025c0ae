"""Any query string is either a filter that runs on the database or a precise INVALID_ARGUMENT."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.core import update
from server.core.commands import Selection, UpdateCommand
from server.core.errors import InvalidArgument, NotFound
from tests import factories as f
from tests import query_grammar
from tests.core.helpers import caller

PIECES = st.sampled_from([
    "is:", "!", "assigned:", "bookmarks:", "priority:", "release:", "firstSeen:", "lastSeen:",
    "timesSeen:", "level:", "issue.category:", "environment:", "age:", "foo:", "me", "none",
    "#team", "[", "]", ",", '"', "\\", " ", ">", "<=", "=", "-24h", "+1w", "2026-01-01",
    "T10:00:00", "high", "error", "unresolved", "for_review", "linked", "%", "_", "99999999999",
    "\x00", "é", ":",
])  # fmt: skip
QUERIES = st.lists(PIECES, max_size=12).map("".join) | st.text(max_size=40)


@pytest.fixture()
def w(database: str) -> dict:
    world = f.world()
    f.group(world["project"], title="Error 100% _x_", priority=75)
    return world


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERIES)
def test_any_query_runs_or_is_refused_on_the_query_field(w: dict, query: str) -> None:
    spec = Selection(organization_id=w["org"].id, query=query)
    try:
        update.bulk_update(
            caller=caller(w["user"].id), selection_spec=spec,
            command=UpdateCommand(status="resolved"), validate_only=True,
        )  # fmt: skip
    except NotFound:
        pass
    except InvalidArgument as exc:
        assert [v.field for v in exc.violations] == ["query"]


GRAMMAR = st.randoms(use_true_random=False).map(lambda rnd: query_grammar.query(rnd, NAMES))
NAMES = ("1.0.0", "production", "alice", "alice@example.com", "#backend")
EXAMPLES = int(os.environ.get("FUZZ_SEARCH_EXAMPLES", "150"))  # `make fuzz` raises it


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(query=GRAMMAR)
def test_any_grammar_query_runs_on_the_database_or_is_refused_on_the_query_field(w: dict, query: str) -> None:
    test_any_query_runs_or_is_refused_on_the_query_field.hypothesis.inner_test(w, query)  # type: ignore[attr-defined]
