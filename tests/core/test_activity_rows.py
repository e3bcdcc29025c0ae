"""A group's activities read the three ways the service reads them give the same rows: the
single reply's JSON column (GetGroup, UpdateGroup), a group by rows, a page of groups by rows."""

from __future__ import annotations

import datetime as dt

import pytest

from server.core import page_reads, reads
from server.core.sqltext import UnreadColumn
from server.storage.models import Activity
from tests import factories as f

pytestmark = pytest.mark.db


def _as_compared(pairs: list) -> list:  # type: ignore[type-arg]
    return [(a, None if u is None else (u.id, u.username, u.email, u.name)) for a, u in pairs]


def test_the_reply_a_group_and_a_page_read_the_same_activities(database: str) -> None:
    w = f.world()
    other = f.user(name="")
    g = f.group(w["project"])
    at = dt.datetime(2026, 3, 1, 12, 0, 0, 250000)
    rows = [(w["user"], {"a": [1, "x"]}), (other, None), (None, {}), (w["user"], {"b": 2})]
    for i, (user, data) in enumerate(rows):
        Activity.create(
            project=w["project"].id, group=g.id, type=i + 1, ident=f"i{i}" if i % 2 else None,
            user_id=None if user is None else user.id, datetime=at + dt.timedelta(seconds=i), data=data,
        )  # fmt: skip
    reply = reads.load_group_with_commit(g.id, user_id=w["user"].id)()
    assert reply is not None
    by_reply = _as_compared(reply.activities)
    assert len(by_reply) == 4 and by_reply[0][0].type == 4  # newest first
    assert by_reply[0][0].datetime == at + dt.timedelta(seconds=3) and by_reply[0][0].data == {"b": 2}
    assert _as_compared(reads.load_activities(g.id, limit=10)) == by_reply
    assert _as_compared(page_reads.load_activities([g.id], limit=10)[g.id]) == by_reply


def test_an_activity_user_column_not_read_raises(database: str) -> None:
    w = f.world()
    g = f.group(w["project"])
    Activity.create(project=w["project"].id, group=g.id, type=1, user_id=w["user"].id)
    ((_, user),) = page_reads.load_activities([g.id], limit=10)[g.id]
    with pytest.raises(UnreadColumn):
        _ = user.is_active
