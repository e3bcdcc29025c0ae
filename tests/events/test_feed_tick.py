"""The feed's tick (no reads while nobody watches; a stop ends it between pages), and shutdown
leaving the pool open while the feed still holds a connection."""

from __future__ import annotations

from typing import Any

import pytest

from server.events import store
from server.events.feed import EventFeed
from server.events.listener import Wakeups
from server.events.records import EventFilter
from server.events.watcher import Watcher
from server.transport import shutdown as shutdown_module


class Reads:
    def __init__(self, pages: int) -> None:
        self.calls = 0
        self.pages = pages

    def __call__(self, cursor: int, *, limit: int, **_: Any) -> list[Any]:
        self.calls += 1
        if self.calls > self.pages:
            return []
        first = cursor + 1
        return [_record(seq) for seq in range(first, first + limit)]  # a full page: there is more


def _record(seq: int) -> Any:
    return type("Record", (), {"seq": seq, "organization_id": 1})()


@pytest.fixture()
def fake_store(monkeypatch: pytest.MonkeyPatch) -> Reads:
    reads = Reads(pages=1_000)
    monkeypatch.setattr(store, "stamp_batch", lambda **_: store.Stamped(count=0, head=12_345))
    monkeypatch.setattr(store, "read_after", reads)
    return reads


def test_without_watchers_a_tick_reads_no_event_and_moves_head_to_the_stamped_head(fake_store: Reads) -> None:
    feed = EventFeed(wakeups=Wakeups(interval=60.0))
    feed.tick()
    assert fake_store.calls == 0
    assert feed.head == 12_345


def test_with_a_watcher_a_tick_reads_and_a_stop_ends_it_between_pages(
    fake_store: Reads, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = EventFeed(wakeups=Wakeups(interval=60.0))
    watcher = Watcher(where=EventFilter(organization_id=1), cursor=0, capacity=10)
    feed._watchers.add(watcher)  # a catching-up watcher: pushes are dropped, reads still happen
    pages_before_stop = 3
    real_read = fake_store.__call__

    def read_then_stop(cursor: int, *, limit: int, **kw: Any) -> list[Any]:
        page = real_read(cursor, limit=limit, **kw)
        if fake_store.calls == pages_before_stop:
            feed._stop.set()  # as stop() does, from the shutdown thread
        return page

    monkeypatch.setattr(store, "read_after", read_then_stop)
    feed.tick()
    assert fake_store.calls == pages_before_stop  # not the 1,000 pages of the backlog


class StuckFeedServer:
    """What shutdown() needs of a server whose handlers drained but whose feed did not stop."""

    def __init__(self) -> None:
        from concurrent import futures

        self.executor = futures.ThreadPoolExecutor(max_workers=1)
        self.feed_stopped = False

    def enter_not_serving(self) -> None: ...

    def stop_accepting(self, grace: float) -> None: ...

    def stop_background(self) -> None: ...


def test_shutdown_leaves_the_pool_open_while_the_feed_still_holds_a_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    closed: list[bool] = []
    monkeypatch.setattr(shutdown_module, "_close_pool", lambda: closed.append(True))
    assert shutdown_module.shutdown(StuckFeedServer(), pre_stop_delay=0, grace=0) is False
    assert closed == []  # closing it under the feed's statement is what crashed SQLite (-11)


def test_a_tick_after_one_that_stamped_skips_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a stream of commits the probe would find work every time: one round trip fewer."""
    probes: list[bool] = []
    counts = iter([3, 0, 0])

    def stamp_batch(*, probe: bool = True) -> store.Stamped:
        probes.append(probe)
        return store.Stamped(count=next(counts), head=7)

    monkeypatch.setattr(store, "stamp_batch", stamp_batch)
    feed = EventFeed(wakeups=Wakeups(interval=60.0))
    for _ in range(3):
        feed.tick()
    assert probes == [True, False, True]
