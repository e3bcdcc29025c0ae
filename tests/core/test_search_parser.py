"""The search parser alone: Sentry's syntax to typed terms, and precise errors (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from server.core.search.filters import Category, Compare, Not, OneOf, Related, SearchFilter, Text
from server.core.search.parser import INVALID_QUERY, QueryError, parse

NOW = dt.datetime(2026, 3, 1, 12, 0, 0)


def terms(query: str) -> tuple:
    return parse(query, now=NOW).terms


def problem(query: str) -> str:
    with pytest.raises(QueryError) as caught:
        parse(query, now=NOW)
    violation = caught.value.violations[0]
    assert violation.field == "query"
    assert violation.description.startswith(INVALID_QUERY)
    return caught.value.metadata["problem"]


def test_empty_query_is_a_filter_with_no_terms() -> None:
    assert parse("", now=NOW) == SearchFilter(())
    assert parse("   ", now=NOW) == SearchFilter(())


def test_is_values_map_to_statuses_and_relations() -> None:
    assert terms("is:unresolved") == (OneOf("status", (0,)),)
    assert terms("is:resolved is:archived") == (OneOf("status", (1,)), OneOf("status", (2,)))
    assert terms("is:unassigned") == (Not(Related("assignee")),)
    assert terms("is:for_review is:linked") == (Related("inbox"), Related("link"))
    assert terms("is:bookmarked") == (Related("bookmark", ("me",)),)


def test_negation_wraps_the_term() -> None:
    assert terms("!is:resolved") == (Not(OneOf("status", (1,))),)
    assert terms("!assigned:me") == (Not(Related("assignee", ("me",))),)


def test_lists_and_quoted_values_are_read_whole() -> None:
    assert terms("priority:[high, medium]") == (OneOf("priority", (50, 75)),)
    assert terms('release:"api@1.0 beta"') == (Related("release", ("api@1.0 beta",)),)
    assert terms("assigned:#backend") == (Related("assignee", ("#backend",)),)
    assert terms("level:[error,fatal]") == (OneOf("level", (40, 50)),)
    assert terms("issue.category:error") == (Category(("error",)),)


def test_free_text_is_joined_into_one_substring_after_the_keyed_terms() -> None:
    assert terms('db "two words" is:resolved timeout') == (
        OneOf("status", (1,)),
        Text("db two words timeout"),
    )


def test_relative_dates_count_back_from_now() -> None:
    assert terms("firstSeen:-24h") == (Compare("first_seen", ">=", NOW - dt.timedelta(hours=24)),)
    assert terms("lastSeen:+1w") == (Compare("last_seen", "<=", NOW - dt.timedelta(weeks=1)),)
    assert terms("age:-7d") == (Compare("first_seen", ">=", NOW - dt.timedelta(days=7)),)


def test_absolute_dates_take_an_operator_or_mean_the_whole_day() -> None:
    assert terms("firstSeen:>2026-01-01") == (Compare("first_seen", ">", dt.datetime(2026, 1, 1)),)
    assert terms("lastSeen:<=2026-01-01T10:00:00") == (Compare("last_seen", "<=", dt.datetime(2026, 1, 1, 10)),)
    assert terms("lastSeen:2026-01-02") == (Compare("last_seen", "day", dt.datetime(2026, 1, 2)),)
    assert terms("lastSeen:>=2026-01-01T10:00:00+02:00") == (Compare("last_seen", ">=", dt.datetime(2026, 1, 1, 8)),)


def test_times_seen_takes_comparisons_or_an_exact_count() -> None:
    assert terms("timesSeen:>10") == (Compare("times_seen", ">", 10),)
    assert terms("timesSeen:<=5") == (Compare("times_seen", "<=", 5),)
    assert terms("timesSeen:100") == (Compare("times_seen", "=", 100),)


def test_unknown_key_names_the_key_and_its_position() -> None:
    assert problem("assigned:me foo:bar") == 'unknown key "foo" at position 12'


def test_bad_values_name_the_value_and_its_position() -> None:
    assert problem("is:sleeping") == 'invalid value "sleeping" for key "is" at position 3'
    assert problem("priority:[high,urgent]") == 'invalid value "urgent" for key "priority" at position 9'
    assert problem("timesSeen:>ten") == 'invalid value ">ten" for key "timesSeen" at position 10'
    assert problem("firstSeen:yesterday") == 'invalid value "yesterday" for key "firstSeen" at position 10'
    assert problem("level:loud") == 'invalid value "loud" for key "level" at position 6'


def test_unterminated_quotes_lists_and_missing_values_are_refused() -> None:
    assert problem('release:"api@1.0') == "unterminated quote at position 8"
    assert problem("priority:[high") == "unterminated list at position 9"
    assert problem("is: resolved") == 'missing value for key "is" at position 3'


def test_numbers_and_dates_out_of_range_are_invalid_values_not_crashes() -> None:
    assert problem("timesSeen:>99999999999999999999") == (
        'invalid value ">99999999999999999999" for key "timesSeen" at position 10'
    )
    assert problem("firstSeen:-99999999999999w").startswith('invalid value "-99999999999999w"')
    assert problem("lastSeen:>0001-01-01T00:00:00+05:00").startswith("invalid value")


def test_an_empty_quoted_date_or_count_is_an_invalid_value() -> None:
    # Found by the search fuzzer: `firstSeen:""` hit an assertion (INTERNAL through gRPC).
    assert problem('firstSeen:""').startswith('invalid value "" for key "firstSeen"')
    assert problem('timesSeen:""').startswith('invalid value "" for key "timesSeen"')


def test_nul_characters_and_oversized_queries_are_refused() -> None:
    assert problem("is:resolved \x00") == "invalid character NUL at position 12"
    assert problem(" ".join(["is:resolved"] * 101)).startswith("too many terms at position 1200")
    items = ",".join(["a"] * 101)
    assert problem(f"release:[{items}]") == "too many list items at position 8 (at most 100)"


def test_boolean_operators_are_refused_naming_the_operator_and_its_position() -> None:
    boolean = 'Boolean statements containing "OR" or "AND" are not supported in this search'
    assert problem("is:unresolved OR is:ignored") == f'{boolean}: "OR" at position 14'
    assert problem("is:unresolved and assigned:me") == f'{boolean}: "and" at position 14'
    assert problem("AND") == f'{boolean}: "AND" at position 0'


def test_parentheses_are_refused_naming_the_parenthesis_and_its_position() -> None:
    assert problem("(is:unresolved") == 'parentheses are not supported in this search: "(" at position 0'
    assert problem("is:unresolved (") == 'parentheses are not supported in this search: "(" at position 14'
    assert problem("is:unresolved)") == 'parentheses are not supported in this search: ")" at position 13'
    assert problem("release:[a,(b]") == 'parentheses are not supported in this search: "(" at position 11'


def test_quoted_operators_and_parentheses_stay_free_text() -> None:
    assert terms('"OR" "(x)"') == (Text("OR (x)"),)
    assert terms("ORDER ANDROID") == (Text("ORDER ANDROID"),)
