"""WatchIssueEvents' core: authorize like a read, then the backlog, then live events and heartbeats."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from server.core import permissions, selection
from server.core.commands import READ_SCOPES, Caller
from server.core.errors import OutOfRange, PermissionDenied
from server.core.unit_of_work import in_transaction
from server.events import store
from server.events.feed import EventFeed
from server.events.records import EventFilter, EventRecord
from server.events.watcher import Watcher
from server.storage.models import utcnow

CATCH_UP_PAGE = 500


@dataclass(frozen=True)
class WatchRequest:
    organization_id: int
    project_ids: frozenset[int] = frozenset()
    group_ids: frozenset[int] = frozenset()
    kinds: frozenset[str] = frozenset()
    after_event_id: int = 0
    batch: int = 1  # events per delivered batch (1: one at a time)


@dataclass(frozen=True)
class Heartbeat:
    head_event_id: int
    sent_at: dt.datetime


def authorize(*, caller: Caller, request: WatchRequest) -> EventFilter:
    """Same scopes, membership, project access and organization isolation as GetGroup, and a
    cursor that names an event that was given out and not pruned."""
    where = access_filter(caller=caller, request=request)
    _check_cursor(request.after_event_id)
    return where


def _check_cursor(cursor: int) -> None:
    """Not before what was pruned (0: from the oldest event kept), and not past the newest: an
    id is given out only once stamped and committed, so one past the committed head was never an
    event here (another database, one restored from an older backup, a made-up id). Accepted, the
    stream would stay silent: every new event's id is below it."""
    pruned, head = store.cursor_bounds()
    if 0 < cursor < pruned:
        raise OutOfRange(f"Events up to {pruned} were pruned; resume from a later cursor", reason="CURSOR_PRUNED")
    if cursor > head:
        raise OutOfRange(
            f"after_event_id {cursor} is past the newest event ({head}); resume from an event id this server gave",
            reason="CURSOR_AHEAD",
        )


def _check_not_pruned_behind(cursor: int) -> None:
    """A stream reading the database from its cursor (it fell behind, or it is catching up)
    ends OUT_OF_RANGE when events after that cursor were pruned, before or while it read: it
    would otherwise skip them without a word, as a resume from that cursor would be refused
    (a slow watcher lost 4,595 events to a relay's pruning, 2026-12-02). Read after the page:
    a prune that raced the read counts too."""
    pruned, _head = store.cursor_bounds()
    if 0 < cursor < pruned:
        raise OutOfRange(
            f"Events after {cursor} up to {pruned} were pruned while this stream was behind; "
            "resume from a later cursor",
            reason="CURSOR_PRUNED",
        )


def access_filter(*, caller: Caller, request: WatchRequest) -> EventFilter:
    """What the caller may see of what it asked for, as of now (one read-only statement)."""
    if not (caller.scopes & READ_SCOPES):
        raise PermissionDenied("Token lacks a scope to read issues (needs event:read)", reason="MISSING_SCOPE")

    def check() -> EventFilter:
        row = selection.organization(caller=caller, organization_id=request.organization_id, user_id=caller.user_id)
        access = permissions.authorize(caller=caller, row=row, needs=READ_SCOPES, what="read issues")
        assert row.org is not None  # selection.organization refused a missing one
        permissions.check_requested_projects(access=access, organization_id=row.org.id, project_ids=request.project_ids)
        return EventFilter(
            organization_id=row.org.id,
            project_ids=_projects(access=access, wanted=request.project_ids),
            group_ids=request.group_ids,
            kinds=request.kinds,
        )

    return in_transaction(check, write=False)


def _projects(*, access: permissions.Access, wanted: frozenset[int]) -> frozenset[int] | None:
    """The projects to stream (None: all of the organization); `wanted` was checked already."""
    if access.project_ids is None:
        return wanted or None
    return wanted or access.project_ids


@dataclass(frozen=True)
class Recheck:
    """Access is read again every `every` seconds while a stream lasts: a member removed from a
    team (or the organization) stops receiving its events within that time, not at reconnect."""

    access: Callable[[], EventFilter]  # raises PermissionDenied (and ends the stream) when gone
    every: float


def watch(  # noqa: PLR0913 - keyword-only
    *, feed: EventFeed, where: EventFilter, after: int, heartbeat: float, should_continue: Callable[[], bool],
    batch: int = 1, recheck: Recheck | None = None,
) -> Iterator[list[EventRecord] | Heartbeat]:  # fmt: skip
    """Events after `after` in seq order, in lists of at most `batch`, for as long as the caller wants them.

    A list holds what was ready together; with batch 1 every list is one event.
    """
    watcher = Watcher(where=where, cursor=after, capacity=feed.queue_size)
    with feed.watching(watcher):
        quiet_since = checked_at = time.monotonic()
        while should_continue() and not watcher.closed:
            if recheck is not None and time.monotonic() - checked_at >= recheck.every:
                watcher.refilter(recheck.access())
                checked_at = time.monotonic()
            if watcher.live:
                wait = max(0.0, min(1.0, quiet_since + heartbeat - time.monotonic()))
                records = watcher.take(timeout=wait, limit=batch)
            else:
                records = _catch_up(feed=feed, watcher=watcher)
            for start in range(0, len(records), batch):
                yield records[start : start + batch]
            if records:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= heartbeat:
                with feed.lock:
                    position = watcher.idle_position(feed_head=feed.head)
                yield Heartbeat(head_event_id=position, sent_at=utcnow())
                quiet_since = time.monotonic()


def _catch_up(*, feed: EventFeed, watcher: Watcher) -> list[EventRecord]:
    """One page from the database; when it was the last, try to switch to live."""
    start = watcher.cursor
    through = store.head()  # read first: every seq up to it is committed and visible
    page = store.read_after(start, limit=CATCH_UP_PAGE, through=through, where=watcher.where)
    _check_not_pruned_behind(start)
    if page:
        watcher.cursor = page[-1].seq
    if len(page) < CATCH_UP_PAGE:
        watcher.cursor = max(watcher.cursor, through)  # nothing else matched up to `through`
        with feed.lock:
            watcher.go_live(feed_head=feed.head)
    return page
