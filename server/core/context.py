"""What one update carries from step to step: the selected groups, the caller, and the reply."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from server.core.commands import Caller, UpdateCommand
from server.storage.models import Group, Organization, Project, User


@dataclass
class ActorView:
    type: str  # "user" or "team"
    id: int
    name: str
    email: str = ""


@dataclass
class UserView:
    id: int
    name: str
    username: str
    email: str


@dataclass
class CommitView:
    id: int
    key: str
    repository: str


@dataclass
class StatusDetailsView:
    in_next_release: bool = False
    in_release: str = ""
    in_commit: CommitView | None = None
    auto_resolved: bool = False
    ignore_count: int | None = None
    ignore_until: dt.datetime | None = None
    ignore_user_count: int | None = None
    ignore_user_window: int | None = None
    ignore_window: int | None = None
    ignore_until_escalating: bool = False
    actor: UserView | None = None


@dataclass
class MergeView:
    parent: int
    children: list[int]


@dataclass
class ActivityView:
    id: int
    type: int
    user: UserView | None
    data: dict[str, Any]
    date_created: dt.datetime


@dataclass
class AppliedDelta:
    """Sentry's bulk reply (§4.1): each member set only when the patch touched it."""

    status: str | None = None
    status_details: StatusDetailsView | None = None
    substatus: int | None = None
    inbox: str | None = None  # "added", "reviewed" or "removed"
    assigned_to_set: bool = False
    assigned_to: ActorView | None = None
    has_seen: bool | None = None
    is_bookmarked: bool | None = None
    is_subscribed: bool | None = None
    subscription_reason: str | None = None
    is_public: bool | None = None
    share_id: str | None = None
    merge: MergeView | None = None
    merge_echo: bool | None = None  # merge=true with one group: Sentry echoes the flag (§3.12)
    priority: int | None = None
    activities: list[ActivityView] = field(default_factory=list)
    discard: bool | None = None


@dataclass
class GroupOutcome:
    group_id: int
    outcome: str  # "changed", "unchanged" or "skipped"
    reason: str = ""


@dataclass
class BulkResult:
    applied: AppliedDelta
    matched_group_ids: list[int]
    matched_count: int
    outcomes: list[GroupOutcome]
    truncated: bool = False
    next_page_token: str = ""
    validate_only: bool = False


@dataclass
class UpdateContext:
    caller: Caller
    command: UpdateCommand
    organization: Organization
    groups: list[Group]  # selected, ordered by id, locked for the transaction
    projects: dict[int, Project]
    now: dt.datetime
    actor: User | None
    delta: AppliedDelta = field(default_factory=AppliedDelta)
    changed_ids: set[int] = field(default_factory=set)
    # Changed groups whose version a step already bumped in its own UPDATE (_finish skips them).
    versioned_ids: set[int] = field(default_factory=set)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    self_assign: bool = False  # set by resolution when the resolver's option asks for it
    self_assign_option: str | None = None  # the actor's self_assign_issue option, read with access
    _project_of: dict[int, int] = field(default_factory=dict, repr=False)

    @property
    def group_ids(self) -> list[int]:
        return [g.id for g in self.groups]

    @property
    def is_bulk(self) -> bool:
        return len(self.groups) > 1

    @property
    def actor_id(self) -> int | None:
        return self.actor.id if self.actor is not None else None

    def mark_changed(self, ids: list[int] | set[int]) -> None:
        self.changed_ids.update(ids)

    def notify(self, kind: str, *, group_id: int, **payload: Any) -> None:
        """Queue a notification event; it is written to the outbox in this transaction."""
        if not self._project_of:  # built once: a bulk of 1000 groups notifies 1000 times
            self._project_of.update((g.id, g.project_id) for g in self.groups)
        self.outbox.append(
            {
                "kind": kind,
                "group_id": group_id,
                "payload": payload,
                "organization_id": self.organization.id,
                "project_id": self._project_of[group_id],
                "actor_id": self.actor_id,
                "request_id": self.caller.request_id,
            }
        )
