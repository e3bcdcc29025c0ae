"""The reply reads only the columns it shows of the rows hanging off a group: a column it did
not read must fail loudly when read, never pass for a NULL."""

from __future__ import annotations

import pytest

from server.core.reply_sql import PARTS, READ
from server.core.sqltext import UnreadColumn, columns, hydrate, split, width
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
    with pytest.raises(UnreadColumn, match="group was not read"):
        _ = sub.group_id  # a foreign key's id goes through dict.get: refused too


def test_whole_rows_keep_reading_missing_fields_as_none() -> None:
    user = hydrate(User, (1, "ann", "a@example.com", "Ann", True))
    assert user.username == "ann" and user.__data__.get("nope") is None


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
