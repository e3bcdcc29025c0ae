"""The group as read back (§4.2): status label and details, per-user flags, activities."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from server.core import issue_types
from server.core.assignee import user_actor
from server.core.context import ActivityView, ActorView, CommitView, StatusDetailsView, UserView
from server.core.enums import (
    LEVEL_NAMES,
    SUBSCRIPTION_REASON_NAMES,
    ActivityType,
    GroupStatus,
    PriorityLevel,
    ResolutionType,
)
from server.core.errors import NotFound
from server.core.reads import Loaded, load_activities, load_group_with_commit
from server.core.reply_sql import ActivityRow
from server.core.snooze import user_view
from server.core.unit_of_work import in_transaction
from server.storage.models import (
    Commit,
    Group,
    GroupSnooze,
    Project,
    Repository,
    User,
)

ACTIVITIES_COUNT = 100
BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Sentry utils.numbers (Crockford)
STATUS_LABELS: dict[int, str] = {
    GroupStatus.RESOLVED: "resolved",
    GroupStatus.IGNORED: "ignored",
    GroupStatus.PENDING_DELETION: "pending_deletion",
    GroupStatus.DELETION_IN_PROGRESS: "pending_deletion",
    GroupStatus.PENDING_MERGE: "pending_merge",
    GroupStatus.REPROCESSING: "reprocessing",
}


@dataclass
class GroupView:
    id: int
    short_id: str
    title: str
    culprit: str
    logger: str
    level: str
    status: str
    status_details: StatusDetailsView
    substatus: int | None
    share_id: str
    platform: str
    project: Project
    issue_category: str
    issue_type: str
    num_comments: int
    assigned_to: ActorView | None
    is_bookmarked: bool
    is_subscribed: bool
    subscription_reason: str
    subscription_disabled: bool
    has_seen: bool
    priority: int | None
    priority_locked_at: dt.datetime | None
    count: int
    user_count: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    resolved_at: dt.datetime | None
    etag: str
    activities: list[ActivityView] = field(default_factory=list)


def etag_of(group: Group) -> str:
    return hashlib.sha256(f"{group.id}:{group.version}".encode()).hexdigest()[:16]


def short_id(project: Project, number: int | None) -> str:
    if number is None:
        return ""
    digits, n = "", number
    while True:
        n, r = divmod(n, 32)
        digits = BASE32[r] + digits
        if n == 0:
            break
    return f"{project.slug.upper()}-{digits}"


def commit_view(commit: Commit) -> CommitView:
    repo = Repository.get_by_id(commit.repository_id)
    return CommitView(id=commit.id, key=commit.key, repository=repo.name)


def snooze_is_valid(snooze: GroupSnooze, group: Group, now: dt.datetime) -> bool:
    if snooze.until is not None and snooze.until <= now:
        return False
    if snooze.count and not snooze.window:
        baseline = (snooze.state or {}).get("times_seen", 0)
        if group.times_seen - baseline >= snooze.count:
            return False
    return True


def _status(group: Group, project: Project, snooze: GroupSnooze | None, now: dt.datetime) -> tuple[str, bool]:
    """(label, auto_resolved) as Sentry's serializer derives them."""
    # An expired or exhausted snooze reads as unresolved.
    snoozed = snooze is not None and snooze_is_valid(snooze, group, now)
    if group.status == GroupStatus.IGNORED and snooze is not None and not snoozed:
        return "unresolved", False
    age = project.auto_resolve_age_hours
    stale = bool(age) and group.last_seen < now - dt.timedelta(hours=age or 0)
    if group.status == GroupStatus.UNRESOLVED and stale:
        return "resolved", True
    # IntEnum keys match the plain int: no GroupStatus(...) per reply (an enum call is ~4k
    # instructions, and raised on a status it does not know; such a one reads "unresolved").
    return STATUS_LABELS.get(group.status, "unresolved"), False


def _ignore_details(snooze: GroupSnooze, group: Group, actor: User | None) -> StatusDetailsView:
    state = snooze.state or {}
    count = snooze.count
    if count and not snooze.window:
        count = count - (group.times_seen - state.get("times_seen", 0))
    user_count = snooze.user_count
    if user_count and not snooze.user_window:
        user_count = user_count - (group.user_count - state.get("users_seen", 0))
    return StatusDetailsView(
        ignore_count=count,
        ignore_until=snooze.until,
        ignore_user_count=user_count,
        ignore_user_window=snooze.user_window,
        ignore_window=snooze.window,
        actor=user_view(actor),
    )


def _resolved_details(loaded: Loaded, commits: Mapping[int, CommitView] | None) -> StatusDetailsView:
    resolution = loaded.resolution
    if resolution is not None:
        actor = user_view(loaded.resolution_actor)
        if resolution.type in (None, ResolutionType.IN_NEXT_RELEASE):
            return StatusDetailsView(in_next_release=True, actor=actor)
        assert loaded.release is not None  # the foreign key cascades: a resolution has one
        return StatusDetailsView(in_release=loaded.release.version, actor=actor)
    if loaded.resolving_commit_id is not None and commits is not None:  # a page read them at once
        view = commits.get(loaded.resolving_commit_id)
        return StatusDetailsView(in_commit=view) if view is not None else StatusDetailsView()
    if loaded.resolving_commit_id is not None:
        # Its own connection when there is none: an update's reply is built after COMMIT, and
        # this read then answered INTERNAL for a change it had committed. Reading the commit in
        # the reply's statement instead cost every GetGroup ~28k PostgreSQL instructions (3 %),
        # for the few groups resolved in a commit.
        view = in_transaction(lambda: _commit_view(loaded.resolving_commit_id), write=False)
        if view is not None:
            return StatusDetailsView(in_commit=view)
    return StatusDetailsView()


def _commit_view(commit_id: int | None) -> CommitView | None:
    commit = Commit.get_or_none(Commit.id == commit_id)
    return None if commit is None else commit_view(commit)


def _details(loaded: Loaded, label: str, auto: bool, commits: Mapping[int, CommitView] | None) -> StatusDetailsView:
    group, snooze = loaded.group, loaded.snooze
    if auto:
        return StatusDetailsView(auto_resolved=True)
    if label == "ignored" and snooze is not None:
        return _ignore_details(snooze, group, loaded.snooze_actor)
    if label == "ignored" and group.substatus == 1:
        return StatusDetailsView(ignore_until_escalating=True)
    if label == "resolved":
        return _resolved_details(loaded, commits)
    return StatusDetailsView()


def _assignee_view(loaded: Loaded) -> ActorView | None:
    if loaded.assignee_user is not None:
        return user_actor(loaded.assignee_user)
    if loaded.assignee_team is not None:
        return ActorView(type="team", id=loaded.assignee_team.id, name=loaded.assignee_team.slug)
    return None


def _user_flags(loaded: Loaded) -> tuple[bool, str, bool, bool]:
    """(is_subscribed, reason, disabled, has_seen): the acting user's rows were joined on
    user_id; without a user none of them matched."""
    group, sub, seen = loaded.group, loaded.subscription, loaded.seen
    has_seen = seen is not None and seen.last_seen > (group.active_at or group.first_seen)
    if sub is None:
        return False, "", False, has_seen
    if not sub.is_active:
        return False, "", True, has_seen
    # IntEnum keys match the plain int (see _status); an unknown reason reads "unknown".
    return True, SUBSCRIPTION_REASON_NAMES.get(sub.reason, "unknown"), False, has_seen


def activities_for(group: Group, *, limit: int = ACTIVITIES_COUNT) -> list[ActivityView]:
    """Newest first, consecutive duplicates dropped (except notes), then the first-seen entry."""
    return activity_views(group, load_activities(group.id, limit=2 * limit), limit=limit)


def activity_views(
    group: Group, rows: list[tuple[ActivityRow, User | None]], *, limit: int = ACTIVITIES_COUNT
) -> list[ActivityView]:
    """The group's activity rows (newest first, 2 x limit of them) as the reply shows them."""
    views: list[ActivityView] = []
    previous: tuple[Any, ...] | None = None
    users: dict[int | None, UserView | None] = {}  # a group's activities come from a few users
    for r, actor in rows:
        if len(views) >= limit:
            break  # the rest could not make the cut: the reply keeps the first `limit`
        # Compared as Sentry compares them: data by equality (a dict's == ignores key order).
        key = (r.type, r.ident, r.user_id, r.data)
        if key == previous and r.type != ActivityType.NOTE:
            continue
        previous = key
        uid = actor.id if actor is not None else None
        if uid not in users:
            users[uid] = user_view(actor)
        views.append(ActivityView(r.id, r.type, users[uid], r.data or {}, r.datetime))
    priority = {"priority": _priority_name(_initial_priority(group))}
    first = ActivityView(0, int(ActivityType.FIRST_SEEN), None, priority, group.first_seen)
    return [*views, first][:limit]


def _initial_priority(group: Group) -> int | None:
    data = group.data or {}
    value = data.get("initial_priority") if isinstance(data, dict) else None
    return value if isinstance(value, int) else group.priority


_PRIORITY_NAMES: dict[int, str] = {int(level): level.name.lower() for level in PriorityLevel}


def _priority_name(value: int | None) -> str | None:
    """The level's name, None for no level or an unknown one (a dict: an enum call per reply
    cost ~5k instructions)."""
    return None if value is None else _PRIORITY_NAMES.get(value)


def group_view_with_commit(group: Group, *, user_id: int | None, now: dt.datetime) -> Callable[[], GroupView]:
    """The reply for one group: the row re-read with its related rows and activities in one
    statement, so an update's reply shows what its transaction wrote. The read is the
    transaction's last and travels with its COMMIT: call the result once it committed (outside
    a transaction, and on SQLite, it has read at once)."""
    pending = load_group_with_commit(group.id, user_id=user_id)

    def view() -> GroupView:
        loaded = pending()
        if loaded is None:  # the caller holds the row (locked on PostgreSQL); only a purge races here
            raise NotFound("Issue not found", reason="GROUP_NOT_FOUND", groupId=str(group.id))
        return view_of(loaded, now=now, activities=activity_views(loaded.group, loaded.activities))

    return view


def view_of(
    loaded: Loaded,
    *,
    now: dt.datetime,
    activities: list[ActivityView],
    commits: Mapping[int, CommitView] | None = None,
) -> GroupView:
    """The reply from rows already read; `commits` (by id) saves a page a read per commit."""
    group, project, snooze = loaded.group, loaded.project, loaded.snooze
    label, auto = _status(group, project, snooze, now)
    share = loaded.share
    is_subscribed, reason, disabled, has_seen = _user_flags(loaded)
    return GroupView(
        id=group.id,
        short_id=short_id(project, group.short_id),
        title=group.title or group.message,
        culprit=group.culprit or "",
        logger=group.logger or "",
        level=LEVEL_NAMES.get(group.level, "error"),
        status=label,
        status_details=_details(loaded, label, auto, commits),
        substatus=group.substatus,
        share_id=share.uuid if share else "",
        platform=group.platform or project.platform or "",
        project=project,
        issue_category=issue_types.category_name(group.type),
        issue_type=issue_types.issue_type(group.type).slug,
        num_comments=group.num_comments,
        assigned_to=_assignee_view(loaded),
        is_bookmarked=loaded.bookmarked,
        is_subscribed=is_subscribed,
        subscription_reason=reason,
        subscription_disabled=disabled,
        has_seen=has_seen,
        priority=group.priority,
        priority_locked_at=group.priority_locked_at,
        count=group.times_seen,
        user_count=group.user_count,
        first_seen=group.first_seen,
        last_seen=group.last_seen,
        resolved_at=group.resolved_at,
        etag=etag_of(group),
        activities=activities,
    )


def user_by_id(user_id: int | None) -> UserView | None:
    return user_view(User.get_or_none(User.id == user_id)) if user_id else None
