"""Which lock conflicts a call retries: the ones that failed fast, never one that waited out the
lock timeout (waiting again only multiplied the wait)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from peewee import OperationalError

from server.core import unit_of_work
from server.core.errors import Conflict
from server.core.unit_of_work import in_transaction

pytestmark = pytest.mark.db


def _conflict(sqlstate: str) -> OperationalError:
    error = OperationalError("could not obtain lock")
    error.orig = SimpleNamespace(sqlstate=sqlstate)  # type: ignore[attr-defined]  # as peewee wraps psycopg's
    return error


class _FailingFirst:
    """Raises `error` on its first `times` calls (after `wait` seconds each), then answers 42."""

    def __init__(self, error: Exception, *, times: int, wait: float = 0.0) -> None:
        self.error, self.times, self.wait, self.calls = error, times, wait, 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.times:
            time.sleep(self.wait)
            raise self.error
        return 42


@pytest.mark.parametrize("sqlstate", ["40001", "40P01", "55P03"])
def test_a_conflict_that_failed_fast_is_retried(database: str, sqlstate: str) -> None:
    body = _FailingFirst(_conflict(sqlstate), times=2)
    assert in_transaction(body) == 42
    assert body.calls == 3


def test_a_conflict_that_waited_out_the_lock_timeout_is_not_retried(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unit_of_work, "RETRY_WITHIN", 0.05)  # the lock timeout, scaled down
    body = _FailingFirst(_conflict("55P03"), times=1, wait=0.1)
    with pytest.raises(Conflict) as exc:
        in_transaction(body)
    assert exc.value.reason == "CONCURRENT_UPDATE"
    assert body.calls == 1


def test_fast_conflicts_stop_after_the_last_attempt(database: str) -> None:
    body = _FailingFirst(_conflict("40P01"), times=unit_of_work.ATTEMPTS)
    with pytest.raises(Conflict):
        in_transaction(body)
    assert body.calls == unit_of_work.ATTEMPTS
