"""The reply reads only the columns it shows of the rows hanging off a group: a column it did
not read must fail loudly when read, never pass for a NULL."""

from __future__ import annotations

import pytest

from server.core.reply_sql import PARTS, READ
from server.core.sqltext import UnreadColumn, columns, hydrate, record, split, width
from server.storage.models import Group, GroupSubscription, User


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
    for _alias, part, _join in PARTS:
        if isinstance(part, tuple) and part[1]:
            model, names = part
            assert names[0] == model._meta.primary_key.name, part  # type: ignore[union-attr]
    assert READ[0] is Group  # the group and its project are whole rows: the core reads them
