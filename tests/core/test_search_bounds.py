"""What a search may turn into SQL (server/core/search/bounds.py): the parser refuses it, and the
compiler refuses it again when a filter is built by hand (no database needed for either)."""

from __future__ import annotations

import datetime as dt

import pytest

from server.core.errors import InvalidArgument
from server.core.search import bounds
from server.core.search.compile import Scope, compile_term, conditions
from server.core.search.filters import Compare, Related, SearchFilter, Text
from server.core.search.parser import QueryError, parse

NOW = dt.datetime(2026, 3, 1, 12, 0, 0)
SCOPE = Scope(organization_id=1, actor_id=1)


@pytest.mark.parametrize("text", ["²", "٣", "\uff11\uff12", "1²", "", "-1", "+1", " 1", "9" * 20, "1_000"])
def test_only_ascii_digits_that_fit_64_bits_are_numbers(text: str) -> None:
    assert bounds.ascii_int(text) is None


def test_the_largest_64_bit_number_is_one() -> None:
    assert bounds.ascii_int("9223372036854775807") == 2**63 - 1
    assert bounds.ascii_int("007") == 7


@pytest.mark.parametrize(
    "query",
    ["timesSeen:²", "timesSeen:<=٣", "age:-٣d", "lastSeen:+\uff11w", "firstSeen:9999-12-31", "age:+99999999w",
     "firstSeen:<1899-12-31T23:59:59", "lastSeen:0001-01-01", "release:" + "v" * 257,
     "x" * 1001, " ".join(["word"] * 201)],
)  # fmt: skip
def test_the_parser_refuses_values_the_database_cannot_take(query: str) -> None:
    with pytest.raises(QueryError):
        parse(query, now=NOW)


def test_the_edges_of_the_ranges_parse() -> None:
    parse("firstSeen:9999-12-30 lastSeen:1900-01-01 timesSeen:9223372036854775807", now=NOW)
    parse("x" * 1000 + " release:" + "v" * 256, now=NOW)


@pytest.mark.parametrize(
    "term",
    [
        Compare("first_seen", "day", dt.datetime(9999, 12, 31)),
        Compare("last_seen", ">", dt.datetime(1, 1, 1)),
        Compare("times_seen", ">", 2**63),
        Compare("times_seen", "=", -1),
        Text("x" * 1001),
        Text("a\x00"),
        Related("release", tuple(f"v{i}" for i in range(101))),
        Related("environment", ("e" * 257,)),
    ],
)
def test_the_compiler_refuses_a_hand_built_term_out_of_range(term: object) -> None:
    with pytest.raises(QueryError):
        compile_term(term, scope=SCOPE)  # type: ignore[arg-type]


def test_a_user_named_by_non_ascii_digits_is_a_name_not_an_id() -> None:
    sql = str(compile_term(Related("assignee", ("²",)), scope=SCOPE))
    assert "²" not in sql  # bound as a parameter, and no int("²") was attempted


@pytest.mark.parametrize(("field", "scope"), [
    ("project_ids", Scope(1, project_ids=tuple(range(1001)))),
    ("environments", Scope(1, environment_ids=tuple(range(101)))),
])  # fmt: skip
def test_the_compiler_refuses_more_ids_than_one_statement_should_bind(field: str, scope: Scope) -> None:
    with pytest.raises(InvalidArgument) as caught:
        conditions(SearchFilter(()), scope=scope)
    assert [v.field for v in caught.value.violations] == [field]


def test_a_release_version_with_non_ascii_digits_is_not_semver() -> None:
    from server.core.releases import parse_semver

    assert parse_semver("api@1.2.3") is not None
    assert parse_semver("api@\u0663.0") is None  # int() would have read it as 3


def test_a_repeated_term_is_one_condition() -> None:
    scope = Scope(organization_id=1)
    once = conditions(parse("is:for_review release:1.0", now=dt.datetime(2026, 12, 2)), scope=scope)
    many = conditions(parse(" ".join(["is:for_review release:1.0"] * 50), now=dt.datetime(2026, 12, 2)), scope=scope)
    assert len(many) == len(once)
