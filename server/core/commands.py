"""Frozen inputs of the core: the caller, the patch and the selection. None means "not sent"."""

from __future__ import annotations

from dataclasses import dataclass, field

READ_SCOPES = frozenset({"event:read", "event:write", "event:admin"})
WRITE_SCOPES = frozenset({"event:write", "event:admin"})
ADMIN_SCOPES = frozenset({"event:admin"})


@dataclass(frozen=True)
class Caller:
    token_name: str
    scopes: frozenset[str]
    user_id: int | None = None
    # Organizations the token is limited to; None means any.
    organization_ids: frozenset[int] | None = None
    # The call's x-request-id (the one the server echoes); written into the outbox events.
    request_id: str | None = None

    # Every call makes one or two of these: built directly, as dataclasses.replace (which reads
    # the class's fields each time) cost ~3 us apiece.
    def with_request_id(self, request_id: str | None) -> Caller:
        return Caller(self.token_name, self.scopes, self.user_id, self.organization_ids, request_id)

    def with_scopes(self, scopes: frozenset[str]) -> Caller:
        return Caller(self.token_name, scopes, self.user_id, self.organization_ids, self.request_id)


@dataclass(frozen=True)
class InCommit:
    commit: str
    repository: str


@dataclass(frozen=True)
class IgnoreConditions:
    duration: int | None = None
    count: int | None = None
    window: int | None = None
    user_count: int | None = None
    user_window: int | None = None

    def any_sent(self) -> bool:
        """Sentry's IGNORED_CONDITION_FIELDS test: any field not null (0 counts as sent)."""
        values = (self.duration, self.count, self.window, self.user_count, self.user_window)
        return any(v is not None for v in values)


@dataclass(frozen=True)
class StatusDetails:
    in_release: str | None = None
    in_next_release: bool | None = None
    in_commit: InCommit | None = None
    ignore: IgnoreConditions = field(default_factory=IgnoreConditions)


@dataclass(frozen=True)
class Assignee:
    """Whom to assign. kind: user_id, team_id, username, email, unassign or actor (Sentry string)."""

    kind: str
    value: int | str | None = None


@dataclass(frozen=True)
class UpdateCommand:
    status: str | None = None  # resolved, unresolved, ignored, resolvedInNextRelease, muted
    substatus: int | None = None
    status_details: StatusDetails | None = None
    top_level_ignore: IgnoreConditions = field(default_factory=IgnoreConditions)
    assigned_to: Assignee | None = None
    has_seen: bool | None = None
    is_bookmarked: bool | None = None
    is_subscribed: bool | None = None
    is_public: bool | None = None
    merge: bool | None = None
    discard: bool | None = None
    priority: int | None = None
    inbox: bool | None = None
    integration: str | None = None
    merge_primary_group_id: int | None = None

    def sent_fields(self) -> list[str]:
        names = [
            "status", "substatus", "status_details", "assigned_to", "has_seen", "is_bookmarked",
            "is_subscribed", "is_public", "merge", "discard", "priority", "inbox", "integration",
            "merge_primary_group_id",
        ]  # fmt: skip
        sent = [n for n in names if getattr(self, n) is not None]
        if self.top_level_ignore.any_sent():
            sent.append("ignore_*")
        return sent

    def ignore_conditions(self) -> IgnoreConditions:
        """statusDetails wins; without it the top-level fields are used (§5 item 12)."""
        if self.status_details is not None:
            return self.status_details.ignore
        return self.top_level_ignore


@dataclass(frozen=True)
class Selection:
    organization_id: int
    project_ids: tuple[int, ...] = ()
    group_ids: tuple[int, ...] = ()
    query: str | None = None
    environments: tuple[str, ...] = ()
    sort: str = "date"
    page_token: str = ""
