"""The reply reads only the columns it shows of the rows hanging off a group: a column it did
not read must fail loudly when read, never pass for a NULL."""

from __future__ import annotations

import datetime as dt

import pytest

from server.core.reads import USER_JOINS
from server.core.reply_sql import ACTIVITY_USER_PART, FAMILIES, WHOLE, columns_and_joins
from server.core.sqltext import UnreadColumn, columns, hydrate, record, split, width
from server.storage.models import Group, GroupSeen, GroupSnooze, GroupSubscription, User


def test_a_narrow_part_reads_its_columns_in_order() -> None:
    part = (GroupSubscription, ("id", "is_active", "reason"))
    assert columns("gs", part) == 'gs."id", gs."is_active", gs."reason"'
    assert width(part) == 3
    sub = hydrate(part, (5, True, 4))
    assert (sub.id, sub.is_active, sub.reason) == (5, True, 4)


def test_a_column_not_read_raises_instead_of_reading_as_null() -> None:
    sub = hydrate((GroupSubscription, ("id", "is_active")), (5, False))
    with pytest.raises(UnreadColumn, match="reason was not read"):
        _ = sub.reason
    with pytest.raises(UnreadColumn, match="group_id was not read"):
        _ = sub.group_id


def test_a_record_holds_a_foreign_key_as_its_id_never_as_the_related_row() -> None:
    sub = hydrate((GroupSubscription, ("id", "group")), (3, 7))
    assert sub.group_id == 7
    with pytest.raises(UnreadColumn, match="group was not read"):
        _ = sub.group  # a model would query the group here


def test_whole_rows_hold_every_column_and_nothing_else() -> None:
    user = hydrate(User, (1, "ann", "a@example.com", "Ann", True))
    assert (user.id, user.username, user.is_active) == (1, "ann", True)
    with pytest.raises(UnreadColumn):
        _ = user.nope
    with pytest.raises(AttributeError):
        user.nope = 1  # nor takes one: a model would have kept it silently


def test_records_are_equal_and_hashed_by_model_and_primary_key_as_model_instances_are() -> None:
    whole = hydrate(User, (1, "ann", "a@example.com", "Ann", True))
    narrow = record(User, id=1, username="ann")
    group = record(Group, id=1, data={"a": [1]})
    assert whole == narrow and hash(whole) == hash(narrow) and whole != record(User, id=2)
    assert group != whole and len({group, record(Group, id=1, data={})}) == 1


def test_an_unmatched_join_and_a_part_read_only_for_its_join_are_none() -> None:
    parts = [(User, ("id", "username")), (GroupSubscription, ()), (User, ("id", "name"))]
    found, end = split((None, None, 3, "Bob"), parts)
    assert found[0] is None and found[1] is None and found[2].name == "Bob" and end == 4


def test_every_narrow_reply_part_starts_with_its_primary_key() -> None:
    # hydrate tells a missing row by its first cell being NULL
    for family in FAMILIES:
        for part in family.read:
            assert isinstance(part, tuple) and part[1], part  # a family reads only what it shows
            model, names = part
            assert names[0] == model._meta.primary_key.name, part  # type: ignore[union-attr]
    assert WHOLE[0] is Group  # the group and its project are whole rows: the core reads them


def test_a_family_cell_reads_timestamps_as_either_backend_writes_them_into_json() -> None:
    part = (GroupSeen, ("id", "last_seen"))
    when = dt.datetime(2026, 12, 1, 20, 19, 2, 101585)
    (postgres,), _ = split([4, "2026-12-01T20:19:02.101585"], [part], from_json=True)  # json_build_array
    (sqlite,), _ = split([4, "2026-12-01 20:19:02.101585"], [part], from_json=True)  # its stored text
    (whole_second,), _ = split([4, "2026-12-01T20:19:02"], [part], from_json=True)
    assert postgres.last_seen == sqlite.last_seen == when
    assert whole_second.last_seen == when.replace(microsecond=0)


def test_a_family_cell_keeps_a_json_column_as_parsed_and_a_missing_row_as_none() -> None:
    parts = [(GroupSnooze, ("id", "state")), ACTIVITY_USER_PART]
    (found, user), _ = split([9, {"times_seen": 3}, None, None, None, None], parts, from_json=True)
    assert found.state == {"times_seen": 3} and user is None


def test_the_reply_joins_only_the_project_and_reads_the_rest_by_subquery() -> None:
    # Each joined row widened every level of the join: PostgreSQL's executor start-up, column by
    # column per level, was half of GetGroup's backend instructions (BENCHMARKS.md, ninth session).
    for postgres in (True, False):
        text = columns_and_joins(uid=":uid", postgres=postgres)
        select, _, source = text.partition(' FROM "group" g ')
        assert source == 'JOIN "project" p ON p."id" = g."project_id"'
        assert select.count("(SELECT json_build_array(" if postgres else "(SELECT json_array(") == len(FAMILIES)
        assert select.count(":uid") == USER_JOINS
