"""Search selections past 1000 groups: never truncated silently, continued by keyset tokens."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from server.core import selection, update
from server.core.commands import Selection, UpdateCommand
from server.core.context import BulkResult
from server.core.errors import InvalidArgument
from server.core.search import paging
from server.storage.models import Group, Project, utcnow
from tests import factories as f
from tests.core.helpers import caller


@pytest.fixture()
def w(database: str) -> dict:
    return f.world()


def many_groups(p: Project, n: int, **kw: Any) -> list[int]:
    """n unresolved groups, last seen one second apart (newest first by id)."""
    base = utcnow()
    rows = [
        {
            "project": p.id, "status": 0, "substatus": 3, "title": f"Error {i}",
            "first_seen": base - dt.timedelta(days=1), "last_seen": base - dt.timedelta(seconds=i),
            **kw,
        }
        for i in range(n)
    ]  # fmt: skip
    for start in range(0, n, 500):
        Group.insert_many(rows[start : start + 500]).execute()
    return [g.id for g in Group.select(Group.id).where(Group.project == p.id)]


def call(w: dict, *, query: str | None = None, validate_only: bool = False, **spec: Any) -> BulkResult:
    return update.bulk_update(
        caller=caller(),
        selection_spec=Selection(organization_id=w["org"].id, query=query, **spec),
        command=UpdateCommand(status="resolved"),
        validate_only=validate_only,
    )


def test_a_query_matching_more_than_1000_reports_the_total_and_a_continuation(w: dict) -> None:
    ids = many_groups(w["project"], 1003)
    first = call(w, validate_only=True)
    assert (first.matched_count, first.truncated, len(first.matched_group_ids)) == (
        1003,
        True,
        1000,
    )
    assert first.next_page_token
    second = call(w, validate_only=True, page_token=first.next_page_token)
    assert (second.matched_count, second.truncated, second.next_page_token) == (1003, False, "")
    assert len(second.matched_group_ids) == 3
    assert set(first.matched_group_ids) | set(second.matched_group_ids) == set(ids)
    assert not set(first.matched_group_ids) & set(second.matched_group_ids)


def test_paging_resolves_a_whole_set_even_as_resolved_groups_leave_the_query(w: dict) -> None:
    many_groups(w["project"], 1002)
    first = call(w)  # is:unresolved; the 1000 resolved groups no longer match afterwards
    assert first.truncated
    late = f.group(w["project"], last_seen=utcnow() + dt.timedelta(hours=1))  # sorts before the cursor
    second = call(w, page_token=first.next_page_token)
    assert len(second.matched_group_ids) == 2 and not second.truncated
    left = {g.id for g in Group.select(Group.id).where(Group.status == 0)}
    assert left == {late.id}  # only the group added before the cursor after the walk began


@pytest.mark.parametrize(
    ("sort", "column"),
    [
        ("date", "last_seen"),
        ("new", "first_seen"),
        ("freq", "times_seen"),
        ("priority", "priority"),
    ],
)
def test_pages_follow_the_sort_key_then_id_both_descending(
    w: dict, monkeypatch: pytest.MonkeyPatch, sort: str, column: str
) -> None:
    monkeypatch.setattr(selection, "MAX_IDS", 2)
    base = utcnow()
    values = {
        "last_seen": [base, base, base - dt.timedelta(hours=1)] * 2,
        "first_seen": [base - dt.timedelta(days=d) for d in (3, 1, 1, 2, 5, 1)],
        "times_seen": [5, 7, 7, 1, 7, 2],
        "priority": [75, None, 25, 75, 50, None],
    }
    groups = [f.group(w["project"], **{column: v}) for v in values[column]]
    order: list[int] = []
    token = ""
    for _ in range(3):
        result = call(w, query="", sort=sort, page_token=token, validate_only=True)
        order += sorted(result.matched_group_ids, reverse=True, key=lambda i: _key(i, column))
        token = result.next_page_token
    assert token == ""
    assert order == [g.id for g in sorted(groups, key=lambda g: _key(g.id, column), reverse=True)]


def _key(group_id: int, column: str) -> tuple[Any, int]:
    value = getattr(Group.get_by_id(group_id), column)
    return (0 if value is None else value), group_id


def test_a_token_used_with_another_filter_is_an_invalid_cursor(w: dict) -> None:
    many_groups(w["project"], 1001)
    token = call(w, query="", validate_only=True).next_page_token
    for other in ({"query": "is:unresolved"}, {"query": "", "sort": "freq"},
                  {"query": "", "project_ids": (w["project"].id,)}):  # fmt: skip
        with pytest.raises(InvalidArgument) as caught:
            call(w, validate_only=True, page_token=token, **other)
        violation = caught.value.violations[0]
        assert (violation.field, violation.description) == (
            "page_token",
            "Invalid cursor parameter.",
        )


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "e30",
        paging.encode(paging.Cursor(5, 1), fingerprint="x"),
        "\u00e9",
        # nested past json's recursion limit: a RecursionError, not a ValueError
        base64.urlsafe_b64encode(b"[" * 1500).decode().rstrip("="),
    ],
)
def test_a_malformed_token_is_an_invalid_cursor(w: dict, token: str) -> None:
    f.group(w["project"])
    with pytest.raises(InvalidArgument) as caught:
        call(w, page_token=token)
    assert caught.value.violations[0].description == "Invalid cursor parameter."
    assert Group.select().where(Group.status == 1).count() == 0


def test_a_forged_token_with_out_of_range_values_is_an_invalid_cursor(w: dict) -> None:
    f.group(w["project"])
    bound = paging.fingerprint(Selection(organization_id=w["org"].id), query="is:unresolved")
    forged = [
        {"k": "2026-01-01T00:00:00", "i": 2**70, "f": bound},
        {"k": "2026-01-01T00:00:00+02:00", "i": 1, "f": bound},
        {"k": 5, "i": 1, "f": bound},
        {"k": "2026-01-01T00:00:00", "i": True, "f": bound},
    ]
    for raw in forged:
        token = base64.urlsafe_b64encode(json.dumps(raw).encode()).decode()
        with pytest.raises(InvalidArgument) as caught:
            call(w, page_token=token)
        assert caught.value.violations[0].description == "Invalid cursor parameter."
    good = {"k": "2999-01-01T00:00:00", "i": 2**62, "f": bound}
    token = base64.urlsafe_b64encode(json.dumps(good).encode()).decode()
    assert call(w, page_token=token, validate_only=True).matched_count == 1
