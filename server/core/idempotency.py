"""Request ids: a retry with the same id and body gets the stored reply instead of a second apply.

The record is claimed before the update runs and filled in after it, all in the update's
transaction: a failed update leaves no record, and a concurrent call with the same id either
waits on the unique scope (PostgreSQL) or on the writer lock (SQLite), then replays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from peewee import IntegrityError

from server.core.errors import InvalidArgument
from server.core.unit_of_work import in_transaction
from server.storage.models import IdempotencyRecord, utcnow

T = TypeVar("T")
TTL = dt.timedelta(hours=24)
MAX_REQUEST_ID = 128
BODY_MISMATCH = "This request id was already used with a different request; use a new request id."


@dataclass(frozen=True)
class IdempotencyKey:
    scope: str  # token name + method + request id
    body_hash: str  # hash of the request without its request id (and of the acting user)


@dataclass(frozen=True)
class Replay:
    """The reply stored for an earlier call with the same key, as its encoder wrote it."""

    response: str


def key_for(*, token_name: str, method: str, request_id: str, body_hash: str) -> IdempotencyKey | None:
    """The key of a call; None when no request id was sent. Refuses ids too long to store."""
    if not request_id:
        return None
    if "\x00" in request_id:  # PostgreSQL text cannot hold NUL
        raise InvalidArgument.field("request_id", "Null characters are not allowed.")
    if len(request_id) > MAX_REQUEST_ID:
        raise InvalidArgument.field("request_id", f"Ensure this field has no more than {MAX_REQUEST_ID} characters.")
    return IdempotencyKey(scope=f"{token_name}/{method}/{request_id}", body_hash=body_hash)


def run(fn: Callable[[], T], key: IdempotencyKey | None, *, encode: Callable[[T], str]) -> T | Replay:
    """Run fn (itself transactional) once per key, in a transaction that also holds the record."""
    if key is None:
        return fn()
    try:
        return in_transaction(lambda: _guarded(fn, key, encode))
    except IntegrityError:
        # A concurrent call with the same key committed its claim first: replay its reply.
        return in_transaction(lambda: _guarded(fn, key, encode))


def _guarded(fn: Callable[[], T], key: IdempotencyKey, encode: Callable[[T], str]) -> T | Replay:
    now = utcnow()
    record = IdempotencyRecord.get_or_none(IdempotencyRecord.scope == key.scope)
    if record is not None and record.created_at > now - TTL:
        if record.body_hash != key.body_hash:
            raise InvalidArgument.field("request_id", BODY_MISMATCH)
        return Replay(record.response)
    _claim(key, now=now, expired=record)
    result = fn()
    IdempotencyRecord.update(response=encode(result)).where(IdempotencyRecord.scope == key.scope).execute()
    return result


def _claim(key: IdempotencyKey, *, now: dt.datetime, expired: IdempotencyRecord | None) -> None:
    """Take the key: a new row, or the expired row reused (its old reply no longer counts)."""
    # Expired records of other keys go too, so the table holds about one day of request ids.
    stale = (IdempotencyRecord.created_at <= now - TTL) & (IdempotencyRecord.scope != key.scope)
    IdempotencyRecord.delete().where(stale).execute()
    if expired is None:
        IdempotencyRecord.insert(scope=key.scope, body_hash=key.body_hash, response="", created_at=now).execute()
        return
    still_expired = (IdempotencyRecord.id == expired.id) & (IdempotencyRecord.created_at <= now - TTL)
    taken = (
        IdempotencyRecord.update(body_hash=key.body_hash, response="", created_at=now).where(still_expired).execute()
    )
    if not taken:
        # A concurrent call with this key reused the row first (this UPDATE waited on its lock,
        # then found it fresh): replay its reply, as for a new key (run). Without the check,
        # ten calls reusing an expired id all applied (an outside check, 2026-12-02).
        raise IntegrityError(f"request id {key.scope!r} was claimed by a concurrent call")
