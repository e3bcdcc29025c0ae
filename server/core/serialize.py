"""The group as read back (§4.2): derived status label, status details, per-user flags, activities."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

from server.core.assignee import user_actor
from server.core.context import ActivityView, ActorView, CommitView, StatusDetailsView, UserView
from server.core.enums import (
    LEVEL_NAMES,
    SUBSCRIPTION_REASON_NAMES,
    ActivityType,
    GroupStatus,
    LinkRelationship,
    LinkType,
    PriorityLevel,
    ResolutionType,
    SubscriptionReason,
)
from server.core.snooze import user_view
from server.models import (
    Activity,
    Commit,
    Group,
    GroupAssignee,
    GroupBookmark,
    GroupLink,
    GroupResolution,
    GroupSeen,
    GroupShare,
    GroupSnooze,
    Project,
    Release,
    Repository,
    Team,
    User,
)

ACTIVITIES_COUNT = 100
BASE32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Sentry utils.numbers (Crockford)
STATUS_LABELS = {
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


def _status(
    group: Group, project: Project, snooze: GroupSnooze | None, now: dt.datetime
) -> tuple[str, bool]:
    """(label, auto_resolved) as Sentry's serializer derives them."""
    # An expired or exhausted snooze reads as unresolved.
    snoozed = snooze is not None and snooze_is_valid(snooze, group, now)
    if group.status == GroupStatus.IGNORED and snooze is not None and not snoozed:
        return "unresolved", False
    age = project.auto_resolve_age_hours
    stale = bool(age) and group.last_seen < now - dt.timedelta(hours=age or 0)
    if group.status == GroupStatus.UNRESOLVED and stale:
        return "resolved", True
    return STATUS_LABELS.get(GroupStatus(group.status), "unresolved"), False


def _ignore_details(snooze: GroupSnooze, group: Group) -> StatusDetailsView:
    state = snooze.state or {}
    count = snooze.count
    if count and not snooze.window:
        count = count - (group.times_seen - state.get("times_seen", 0))
    user_count = snooze.user_count
    if user_count and not snooze.user_window:
        user_count = user_count - (group.user_count - state.get("users_seen", 0))
    actor = User.get_or_none(User.id == snooze.actor_id) if snooze.actor_id else None
    return StatusDetailsView(
        ignore_count=count,
        ignore_until=snooze.until,
        ignore_user_count=user_count,
        ignore_user_window=snooze.user_window,
        ignore_window=snooze.window,
        actor=user_view(actor),
    )


def _resolved_details(group: Group) -> StatusDetailsView:
    resolution = GroupResolution.get_or_none(GroupResolution.group == group.id)
    if resolution is not None:
        actor = user_by_id(resolution.actor_id)
        if resolution.type in (None, ResolutionType.IN_NEXT_RELEASE):
            return StatusDetailsView(in_next_release=True, actor=actor)
        release = Release.get_by_id(resolution.release_id)
        return StatusDetailsView(in_release=release.version, actor=actor)
    link = (
        GroupLink.select()
        .where(
            (GroupLink.group == group.id)
            & (GroupLink.linked_type == int(LinkType.COMMIT))
            & (GroupLink.relationship == int(LinkRelationship.RESOLVES))
        )
        .order_by(GroupLink.datetime.desc())
        .first()
    )
    if link is not None:
        commit = Commit.get_or_none(Commit.id == link.linked_id)
        if commit is not None:
            return StatusDetailsView(in_commit=commit_view(commit))
    return StatusDetailsView()


def _details(group: Group, label: str, auto: bool, snooze: GroupSnooze | None) -> StatusDetailsView:
    if auto:
        return StatusDetailsView(auto_resolved=True)
    if label == "ignored" and snooze is not None:
        return _ignore_details(snooze, group)
    if label == "ignored" and group.substatus == 1:
        return StatusDetailsView(ignore_until_escalating=True)
    if label == "resolved":
        return _resolved_details(group)
    return StatusDetailsView()


def assignee_view(group_id: int) -> ActorView | None:
    row = GroupAssignee.get_or_none(GroupAssignee.group == group_id)
    if row is None:
        return None
    if row.user_id is not None:
        return user_actor(User.get_by_id(row.user_id))
    team = Team.get_by_id(row.team_id)
    return ActorView(type="team", id=team.id, name=team.slug)


def _user_flags(group: Group, user_id: int | None) -> dict[str, Any]:
    from server.models import GroupSubscription

    if user_id is None:
        return {"is_bookmarked": False, "is_subscribed": False, "reason": "", "disabled": False, "has_seen": False}
    bookmarked = GroupBookmark.select().where((GroupBookmark.group == group.id) & (GroupBookmark.user == user_id)).exists()
    sub = GroupSubscription.get_or_none((GroupSubscription.group == group.id) & (GroupSubscription.user == user_id))
    seen = GroupSeen.get_or_none((GroupSeen.group == group.id) & (GroupSeen.user == user_id))
    since = group.active_at or group.first_seen
    reason = ""
    if sub is not None:
        reason = SUBSCRIPTION_REASON_NAMES.get(SubscriptionReason(sub.reason), "unknown") if sub.is_active else ""
    return {
        "is_bookmarked": bool(bookmarked),
        "is_subscribed": bool(sub is not None and sub.is_active),
        "reason": reason,
        "disabled": bool(sub is not None and not sub.is_active),
        "has_seen": bool(seen is not None and seen.last_seen > since),
    }


def activities_for(group: Group, *, limit: int = ACTIVITIES_COUNT) -> list[ActivityView]:
    """Newest first, consecutive duplicates dropped (except notes), then the first-seen entry."""
    rows = list(
        Activity.select().where(Activity.group == group.id).order_by(Activity.datetime.desc(), Activity.id.desc()).limit(2 * limit)
    )
    users = {u.id: u for u in User.select().where(User.id.in_({r.user_id for r in rows if r.user_id}))}
    views: list[ActivityView] = []
    previous: tuple[Any, ...] | None = None
    for r in rows:
        key = (r.type, r.ident, r.user_id, repr(r.data))
        if key == previous and r.type != ActivityType.NOTE:
            continue
        previous = key
        actor = users.get(r.user_id) if r.user_id is not None else None
        views.append(ActivityView(r.id, r.type, user_view(actor), r.data or {}, r.datetime))
    first = ActivityView(0, int(ActivityType.FIRST_SEEN), None, {"priority": _priority_name(_initial_priority(group))}, group.first_seen)
    return [*views, first][:limit]


def _initial_priority(group: Group) -> int | None:
    data = group.data or {}
    value = data.get("initial_priority") if isinstance(data, dict) else None
    return value if isinstance(value, int) else group.priority


def _priority_name(value: int | None) -> str | None:
    try:
        return PriorityLevel(value).name.lower() if value is not None else None
    except ValueError:
        return None


def group_view(group: Group, *, user_id: int | None, now: dt.datetime) -> GroupView:
    project = Project.get_by_id(group.project_id)
    snooze = GroupSnooze.get_or_none(GroupSnooze.group == group.id)
    label, auto = _status(group, project, snooze, now)
    share = GroupShare.get_or_none(GroupShare.group == group.id)
    flags = _user_flags(group, user_id)
    return GroupView(
        id=group.id, short_id=short_id(project, group.short_id), title=group.title or group.message,
        culprit=group.culprit or "", logger=group.logger or "", level=LEVEL_NAMES.get(group.level, "error"),
        status=label, status_details=_details(group, label, auto, snooze), substatus=group.substatus,
        share_id=share.uuid if share else "", platform=group.platform or project.platform or "",
        project=project, issue_category="error" if group.type == 1 else "other",
        issue_type="error" if group.type == 1 else f"type_{group.type}", num_comments=group.num_comments,
        assigned_to=assignee_view(group.id), is_bookmarked=flags["is_bookmarked"],
        is_subscribed=flags["is_subscribed"], subscription_reason=flags["reason"],
        subscription_disabled=flags["disabled"], has_seen=flags["has_seen"], priority=group.priority,
        priority_locked_at=group.priority_locked_at, count=group.times_seen, user_count=group.user_count,
        first_seen=group.first_seen, last_seen=group.last_seen, resolved_at=group.resolved_at,
        etag=etag_of(group), activities=activities_for(group),
    )  # fmt: skip


def user_by_id(user_id: int | None) -> UserView | None:
    return user_view(User.get_or_none(User.id == user_id)) if user_id else None
