"""Replies carry one Timestamp per activity: the conversion is arithmetic, and must agree with
protobuf's own Timestamp.FromDatetime for every datetime the database can hand back. Activities
are built in place in the reply, and must be the bytes building each one apart gave."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf import struct_pb2, timestamp_pb2
from issues.v1 import group_pb2

from server.core.context import ActivityView, UserView
from server.transport.convert import add_activities, timestamp_to_proto

CASES = [
    dt.datetime(2026, 12, 1, 1, 2, 3, 456789),
    dt.datetime(1970, 1, 1),
    dt.datetime(1969, 12, 31, 23, 59, 59, 1),  # before the epoch: negative seconds, positive nanos
    dt.datetime(1, 1, 1),
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC),
]


@pytest.mark.parametrize("value", CASES, ids=str)
def test_timestamp_matches_protobufs_conversion(value: dt.datetime) -> None:
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value)
    assert timestamp_to_proto(value) == expected


def test_no_timestamp_for_none() -> None:
    assert timestamp_to_proto(None) is None


def _one_by_one(view: ActivityView) -> group_pb2.Activity:
    """The plain construction add_activities replaces: each submessage built, then copied in."""
    data = struct_pb2.Struct()
    data.update(view.data)
    user = None
    if view.user is not None:
        u = view.user
        user = group_pb2.User(id=u.id, name=u.name, username=u.username, email=u.email)
    return group_pb2.Activity(id=view.id, type=view.type, user=user, data=data,  # type: ignore[arg-type]
                              date_created=timestamp_to_proto(view.date_created))  # fmt: skip


def test_activities_built_in_place_are_the_same_bytes() -> None:
    ann = UserView(id=7, name="Ann", username="ann", email="ann@example.com")
    bob = UserView(id=8, name="", username="bob", email="")
    nested = {"version": "1.0", "count": 3, "flags": [True, None], "inner": {"a": "b"}}
    views = [ActivityView(id=i + 1, type=i % 5, user=(ann, bob, None)[i % 3], data=({}, nested)[i % 2],
                          date_created=CASES[i % len(CASES)]) for i in range(12)]  # fmt: skip
    built = group_pb2.Group()
    add_activities(built.activities, views)
    expected = group_pb2.Group(activities=[_one_by_one(v) for v in views])
    assert built.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    assert all(a.HasField("data") and a.HasField("date_created") for a in built.activities)
