"""Keyset pages over a search: order by (sort key, id) descending; tokens bound to their filter."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from peewee import ColumnBase

from server.core.commands import Selection
from server.core.errors import InvalidArgument
from server.core.search.compile import priority_key
from server.storage.models import Group

INVALID_CURSOR = "Invalid cursor parameter."  # Sentry's message for a bad cursor
SORTS = ("date", "new", "freq", "priority")
Key = int | dt.datetime


@dataclass(frozen=True)
class Cursor:
    """The last group processed: its sort key and id. The next page starts strictly after it."""

    key: Key
    group_id: int


def sort_key(sort: str) -> Any:
    if sort == "new":
        return Group.first_seen
    if sort == "freq":
        return Group.times_seen
    if sort == "priority":
        return priority_key()
    return Group.last_seen  # "date", Sentry's default


def after(cursor: Cursor, *, sort: str) -> ColumnBase:
    """Rows after the cursor in (key desc, id desc) order; keyset, so inserts never shift pages."""
    key: ColumnBase = sort_key(sort)
    return (key < cursor.key) | ((key == cursor.key) & (Group.id < cursor.group_id))


def fingerprint(selection: Selection, *, query: str) -> str:
    """What a token is bound to: the same filter must be sent with it."""
    parts = [
        selection.organization_id,
        query,
        selection.sort,
        sorted(set(selection.project_ids)),
        sorted(set(selection.environments)),
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:24]


def encode(cursor: Cursor, *, fingerprint: str) -> str:
    key = cursor.key.isoformat() if isinstance(cursor.key, dt.datetime) else cursor.key
    raw = json.dumps({"k": key, "i": cursor.group_id, "f": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, *, fingerprint: str, sort: str) -> Cursor:
    """The cursor in a token; INVALID_ARGUMENT on page_token if malformed or of another filter."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        group_id, key, bound = raw["i"], raw["k"], raw["f"]
        if bound != fingerprint or not _is_int64(group_id):
            raise ValueError("cursor of another filter")
        return Cursor(_key(key, sort), group_id)
    # RecursionError: JSON nested past the parser's depth ("[[[[..."), a token we never wrote.
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidArgument.field("page_token", INVALID_CURSOR) from None


def _key(value: Any, sort: str) -> Key:
    if sort in ("date", "new"):
        if not isinstance(value, str):
            raise TypeError("date cursor must be a string")
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is not None:
            raise TypeError("date cursors are naive UTC")
        return moment
    if not _is_int64(value):
        raise TypeError("count cursor must be a 64-bit integer")
    return int(value)


def _is_int64(value: Any) -> bool:
    return type(value) is int and -(2**63) <= value < 2**63


def key_of(group: Any, sort: str) -> Key:
    """The sort key of a fetched row (selected as `sort_key` alongside the id)."""
    value = group.sort_key
    if sort in ("date", "new") and isinstance(value, str):
        return dt.datetime.fromisoformat(value)  # SQLite hands back text for an aliased column
    return value  # type: ignore[no-any-return]
