"""Replies carry one Timestamp per activity: the conversion is arithmetic, and must agree with
protobuf's own Timestamp.FromDatetime for every datetime the database can hand back."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf import timestamp_pb2

from server.transport.convert import timestamp_to_proto

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
