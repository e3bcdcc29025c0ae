"""Deadlines and cancellation: a call the client abandons before commit rolls back entirely.

The sync server never interrupts a handler thread, so the core asks `should_continue` (the
servicer passes `context.is_active`) after its last write and before commit. The slow step is
injected by wrapping the core entry point: it holds the call just before that check until the
server has seen the cancellation, which makes the tests deterministic rather than timed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from issues.v1 import issue_service_pb2 as pb

from server.core import update
from server.core.commands import Caller, Selection, UpdateCommand
from server.core.errors import Cancelled
from server.storage.models import Group, utcnow
from tests import factories as f
from tests.conftest import metadata
from tests.security.support import fingerprint

WAIT = 30.0  # generous upper bound for events; never an assertion about speed


@pytest.fixture()
def thousand(database: str) -> dict[str, Any]:
    w = f.world()
    now = utcnow()
    rows = [
        {"project": w["project"].id, "status": 0, "substatus": 3, "first_seen": now,
         "last_seen": now, "active_at": now, "title": "Error"}
        for _ in range(1000)
    ]  # fmt: skip
    Group.insert_many(rows).execute()
    ids = [g.id for g in Group.select(Group.id).order_by(Group.id)]
    return {"org": w["org"].id, "user": w["user"].id, "ids": ids}


class Probe:
    """Wraps update.bulk_update: optionally holds the call until the client is gone."""

    def __init__(self, *, hold: bool) -> None:
        self.hold = hold
        self.started = threading.Event()
        self.finished = threading.Event()
        self.outcome: BaseException | None = None
        self.checks = 0
        self._lock = threading.Lock()
        self._entered = False
        self._closed = False

    def close(self) -> None:
        """After the test: a late handler must not touch the next test's database."""
        with self._lock:
            self._closed = True
            entered = self._entered
        if entered:
            assert self.finished.wait(WAIT)

    def wrap(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def patched(**kw: Any) -> Any:
            with self._lock:
                if self._closed:
                    raise Cancelled("test over")
                self._entered = True
            inner = kw["should_continue"]

            def slow_should_continue() -> bool:
                self.checks += 1
                if self.checks == 1:  # the entry check: let the core do all its writes first
                    return bool(inner())
                self.started.set()  # the pre-commit check: every write of the call is done
                deadline = time.monotonic() + WAIT
                while self.hold and inner() and time.monotonic() < deadline:
                    time.sleep(0.01)
                return bool(inner())

            try:
                return real(**{**kw, "should_continue": slow_should_continue})
            except BaseException as exc:
                self.outcome = exc
                raise
            finally:
                self.finished.set()

        return patched


@pytest.fixture()
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Probe]]:
    made: list[Probe] = []

    def make(*, hold: bool) -> Probe:
        p = Probe(hold=hold)
        monkeypatch.setattr(update, "bulk_update", p.wrap(update.bulk_update))
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def resolve_all(t: dict[str, Any]) -> pb.BulkUpdateGroupsRequest:
    patch = pb.GroupPatch(status=pb.STATUS_UPDATE_RESOLVED, is_bookmarked=True)
    return pb.BulkUpdateGroupsRequest(organization_id=t["org"], group_ids=t["ids"], patch=patch)


def resolve_1000(t: dict[str, Any], should_continue: Callable[[], bool]) -> Any:
    return update.bulk_update(
        caller=Caller("t", frozenset({"event:write"}), t["user"]),
        selection_spec=Selection(organization_id=t["org"], group_ids=tuple(t["ids"])),
        command=UpdateCommand(status="resolved", is_bookmarked=True),
        should_continue=should_continue,
    )


def test_the_core_rolls_back_when_the_caller_leaves_during_the_work(
    thousand: dict[str, Any],
) -> None:
    answers = iter([True, False])  # alive at the start, gone by the pre-commit check
    before = fingerprint()
    with pytest.raises(Cancelled, match="nothing was changed"):
        resolve_1000(thousand, lambda: next(answers))
    assert fingerprint() == before


def test_a_chunked_update_stopped_after_a_chunk_says_that_chunk_stays_committed(thousand: dict[str, Any]) -> None:
    f.group(Group.get_by_id(thousand["ids"][0]).project)  # a second chunk: 1001 groups
    answers = iter([True, True, True, False])  # chunk 1: start, pre-commit; chunk 2: start, pre-commit
    chunks = update.bulk_update_chunks(
        caller=Caller("t", frozenset({"event:write"}), thousand["user"]),
        selection_spec=Selection(organization_id=thousand["org"], query="is:unresolved"),
        command=UpdateCommand(status="resolved"),
        should_continue=lambda: next(answers),
    )
    assert next(chunks).next_page_token  # the first 1000 committed; more to come
    assert Group.select().where(Group.status == 1).count() == 1000
    with pytest.raises(Cancelled, match="the chunks reported as committed stay committed") as exc:
        next(chunks)
    assert "nothing was changed" not in exc.value.message
    assert Group.select().where(Group.status == 1).count() == 1000


def test_a_call_already_gone_when_it_starts_does_no_work(thousand: dict[str, Any]) -> None:
    before = fingerprint()
    with pytest.raises(Cancelled):
        resolve_1000(thousand, lambda: False)
    assert fingerprint() == before


def test_a_live_caller_gets_the_update_committed_by_the_core(thousand: dict[str, Any]) -> None:
    result = resolve_1000(thousand, lambda: True)
    assert result.matched_count == 1000
    assert Group.select().where(Group.status == 1).count() == 1000


def test_a_cancelled_bulk_update_of_1000_groups_changes_nothing(
    stub: Any, thousand: dict[str, Any], probe: Callable[..., Probe]
) -> None:
    p = probe(hold=True)
    before = fingerprint()
    future = stub.BulkUpdateGroups.future(
        resolve_all(thousand), metadata=metadata(user_id=thousand["user"]), timeout=WAIT
    )
    assert p.started.wait(WAIT)
    future.cancel()
    assert p.finished.wait(WAIT)
    assert isinstance(p.outcome, Cancelled)
    assert p.checks == 2  # refused at the pre-commit check, after the core's writes
    assert future.cancelled()
    assert fingerprint() == before


def test_an_expired_deadline_rolls_the_update_back(
    stub: Any, thousand: dict[str, Any], probe: Callable[..., Probe]
) -> None:
    p = probe(hold=True)
    before = fingerprint()
    with pytest.raises(grpc.RpcError) as info:
        stub.BulkUpdateGroups(resolve_all(thousand), metadata=metadata(user_id=thousand["user"]), timeout=0.5)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert p.finished.wait(WAIT)
    assert isinstance(p.outcome, Cancelled)
    assert p.checks == 2
    assert fingerprint() == before


def test_a_tiny_deadline_leaves_the_bulk_all_done_or_not_done_at_all(
    stub: Any, thousand: dict[str, Any], probe: Callable[..., Probe]
) -> None:
    p = probe(hold=False)
    try:
        reply = stub.BulkUpdateGroups(resolve_all(thousand), metadata=metadata(user_id=thousand["user"]), timeout=0.05)
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    else:  # a fast machine finished inside the 50 ms (seen on SQLite, 2026-12-01): all done
        assert reply.matched_count == 1000
    # Read at any moment, the bulk is all or nothing; once the handler is done, it stays so.
    assert Group.select().where(Group.status == 1).count() in (0, 1000)
    p.close()
    assert Group.select().where(Group.status == 1).count() in (0, 1000)


def test_a_live_call_still_commits(stub: Any, thousand: dict[str, Any], probe: Callable[..., Probe]) -> None:
    p = probe(hold=False)
    reply = stub.BulkUpdateGroups(resolve_all(thousand), metadata=metadata(user_id=thousand["user"]), timeout=WAIT)
    assert p.outcome is None
    assert reply.matched_count == 1000
    assert Group.select().where(Group.status == 1).count() == 1000


def test_a_single_update_rolls_back_when_the_caller_leaves_during_the_work(
    thousand: dict[str, Any],
) -> None:
    answers = iter([True, False])
    before = fingerprint()
    with pytest.raises(Cancelled):
        update.update_group(
            caller=Caller("t", frozenset({"event:write"}), thousand["user"]),
            organization_id=thousand["org"],
            group_id=thousand["ids"][0],
            command=UpdateCommand(status="resolved", is_bookmarked=True, is_public=True),
            should_continue=lambda: next(answers),
        )
    assert fingerprint() == before
