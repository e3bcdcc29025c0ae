"""An outbox row as the event stream sees it, and the filter a watcher asks for."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from peewee import Expression

from server.storage.models import OutboxEvent


@dataclass(frozen=True)
class EventRecord:
    seq: int  # the public event id (commit sequence)
    kind: str  # the core's name, e.g. "issue.resolved"
    organization_id: int
    project_id: int
    group_id: int
    actor_id: int | None  # None: a system caller
    request_id: str | None
    occurred_at: dt.datetime
    payload: dict[str, Any]

    @classmethod
    def from_row(cls, row: OutboxEvent) -> EventRecord:
        return cls(
            seq=row.seq or 0,
            kind=row.kind,
            organization_id=row.organization_id or 0,
            project_id=row.project_id or 0,
            group_id=row.group_id or 0,
            actor_id=row.actor_id,
            request_id=row.request_id,
            occurred_at=row.created_at,
            payload=row.payload or {},
        )


@dataclass(frozen=True)
class EventFilter:
    """What one watcher may and wants to see; None project_ids means every project of the org."""

    organization_id: int
    project_ids: frozenset[int] | None = None
    group_ids: frozenset[int] = field(default_factory=frozenset)
    kinds: frozenset[str] = field(default_factory=frozenset)

    def matches(self, record: EventRecord) -> bool:
        return (
            record.organization_id == self.organization_id
            and (self.project_ids is None or record.project_id in self.project_ids)
            and (not self.group_ids or record.group_id in self.group_ids)
            and (not self.kinds or record.kind in self.kinds)
        )

    def where(self) -> Expression:
        """The same test in SQL (catch-up reads it from the database)."""
        clause = OutboxEvent.organization_id == self.organization_id
        if self.project_ids is not None:
            clause &= OutboxEvent.project_id.in_(sorted(self.project_ids) or [0])
        if self.group_ids:
            clause &= OutboxEvent.group_id.in_(sorted(self.group_ids))
        if self.kinds:
            clause &= OutboxEvent.kind.in_(sorted(self.kinds))
        return clause
