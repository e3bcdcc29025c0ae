"""Request ids at the core tier: claim, replay, mismatch and expiry, in the update's transaction."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

import pytest

from server.core import idempotency
from server.core.errors import InvalidArgument, NotFound
from server.core.idempotency import IdempotencyKey, Replay
from server.core.unit_of_work import in_transaction
from server.storage.models import Group, IdempotencyRecord, utcnow
from tests import factories as f


@pytest.fixture()
def g(database: str) -> Group:
    return f.group(f.project(f.org()))


def bump(group_id: int) -> int:
    """A transactional change that is visible when repeated: times_seen + 1."""

    def run() -> int:
        Group.update(times_seen=Group.times_seen + 1).where(Group.id == group_id).execute()
        return int(Group.get_by_id(group_id).times_seen)

    return in_transaction(run)


def test_no_request_id_means_no_key() -> None:
    assert idempotency.key_for(token_name="t", method="M", request_id="", body_hash="h") is None


def test_a_request_id_is_scoped_to_token_and_method() -> None:
    key = idempotency.key_for(token_name="ci", method="BulkUpdateGroups", request_id="r1", body_hash="h")
    assert key == IdempotencyKey(scope="ci/BulkUpdateGroups/r1", body_hash="h")


def test_a_repeated_key_replays_the_stored_reply_without_running_again(g: Group) -> None:
    key = IdempotencyKey("t/M/1", "body")
    first = idempotency.run(lambda: bump(g.id), key, encode=str)
    second = idempotency.run(lambda: bump(g.id), key, encode=str)
    assert (first, second) == (2, Replay("2"))
    assert Group.get_by_id(g.id).times_seen == 2


def test_a_repeated_key_with_another_body_is_refused(g: Group) -> None:
    idempotency.run(lambda: bump(g.id), IdempotencyKey("t/M/1", "body"), encode=str)
    with pytest.raises(InvalidArgument) as caught:
        idempotency.run(lambda: bump(g.id), IdempotencyKey("t/M/1", "other"), encode=str)
    assert caught.value.violations[0].field == "request_id"
    assert Group.get_by_id(g.id).times_seen == 2


def test_a_failed_call_leaves_no_record_so_a_retry_runs(g: Group) -> None:
    key = IdempotencyKey("t/M/1", "body")

    def fail() -> int:
        bump(g.id)
        raise NotFound("gone")

    with pytest.raises(NotFound):
        idempotency.run(fail, key, encode=str)
    assert IdempotencyRecord.select().count() == 0
    assert Group.get_by_id(g.id).times_seen == 1  # the failed call's change was rolled back too
    assert idempotency.run(lambda: bump(g.id), key, encode=str) == 2


def test_a_record_older_than_a_day_no_longer_counts(g: Group) -> None:
    key = IdempotencyKey("t/M/1", "body")
    idempotency.run(lambda: bump(g.id), key, encode=str)
    IdempotencyRecord.update(created_at=utcnow() - dt.timedelta(hours=24, minutes=1)).execute()
    assert idempotency.run(lambda: bump(g.id), IdempotencyKey("t/M/1", "new"), encode=str) == 3
    record = IdempotencyRecord.get()
    assert (record.body_hash, record.response) == ("new", "3")


def test_claiming_a_key_purges_expired_records_of_other_keys(g: Group) -> None:
    idempotency.run(lambda: bump(g.id), IdempotencyKey("t/M/old", "body"), encode=str)
    idempotency.run(lambda: bump(g.id), IdempotencyKey("t/M/recent", "body"), encode=str)
    IdempotencyRecord.update(created_at=utcnow() - dt.timedelta(days=2)).where(
        IdempotencyRecord.scope == "t/M/old"
    ).execute()
    idempotency.run(lambda: bump(g.id), IdempotencyKey("t/M/new", "body"), encode=str)
    assert {r.scope for r in IdempotencyRecord.select()} == {"t/M/recent", "t/M/new"}


def _race(callers: int, key: IdempotencyKey, body: Callable[[], int]) -> list[object]:
    """idempotency.run(body, key) from `callers` threads released at once; their results."""
    start = threading.Barrier(callers)
    results: list[object] = []

    def call() -> None:
        start.wait()
        results.append(idempotency.run(body, key, encode=str))

    threads = [threading.Thread(target=call) for _ in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_calls_with_one_key_apply_once_and_the_rest_replay(g: Group) -> None:
    results = _race(4, IdempotencyKey("t/M/race", "body"), lambda: bump(g.id))
    assert sorted(map(repr, results)) == sorted([repr(2)] + [repr(Replay("2"))] * 3)
    assert Group.get_by_id(g.id).times_seen == 2


def test_concurrent_calls_reusing_an_expired_key_apply_once_and_the_rest_replay(g: Group) -> None:
    key = IdempotencyKey("t/M/expired-race", "body")
    idempotency.run(lambda: bump(g.id), key, encode=str)  # times_seen 2
    IdempotencyRecord.update(created_at=utcnow() - dt.timedelta(hours=25)).execute()

    def slow_bump() -> int:
        time.sleep(0.2)  # holds the reused record's row lock while the others reach it
        return bump(g.id)

    results = _race(6, key, slow_bump)
    assert sorted(map(repr, results)) == sorted([repr(3)] + [repr(Replay("3"))] * 5)
    assert Group.get_by_id(g.id).times_seen == 3
