"""Resolution (§3.4): now, in a release, in the next release, in a commit; set-based."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from peewee import EXCLUDED, fn

from server.core import activity, releases, snooze, subscriptions
from server.core.context import CommitView, StatusDetailsView, UpdateContext
from server.core.enums import (
    ActivityType,
    GroupHistoryStatus,
    GroupStatus,
    LinkRelationship,
    LinkType,
    ResolutionStatus,
    ResolutionType,
    SubscriptionReason,
)
from server.core.errors import InvalidArgument
from server.core.validation import Validated
from server.models import (
    Commit,
    Group,
    GroupAssignee,
    GroupInbox,
    GroupLink,
    GroupResolution,
    GroupSnooze,
    Release,
    ReleaseCommit,
    Repository,
    UserOption,
)

MULTI_PROJECT = "Cannot set resolved for multiple projects."
HISTORY = {
    ActivityType.SET_RESOLVED: GroupHistoryStatus.RESOLVED,
    ActivityType.SET_RESOLVED_IN_RELEASE: GroupHistoryStatus.SET_RESOLVED_IN_RELEASE,
    ActivityType.SET_RESOLVED_IN_COMMIT: GroupHistoryStatus.SET_RESOLVED_IN_COMMIT,
}


@dataclass
class Plan:
    """The resolution kind picked once per request (§3.4 step 2)."""

    kind: str  # next_release, in_release, in_commit, now
    release: Release | None = None
    commit: Commit | None = None
    activity_type: ActivityType = ActivityType.SET_RESOLVED
    activity_data: dict[str, Any] = field(default_factory=dict)
    details: StatusDetailsView = field(default_factory=StatusDetailsView)


def plan(ctx: UpdateContext, *, validated: Validated) -> Plan:
    """Pick the kind; refuse release and commit kinds across projects before any write."""
    cmd = ctx.command
    details = cmd.status_details
    actor = snooze.user_view(ctx.actor)
    if cmd.status == "resolvedInNextRelease" or (details and details.in_next_release is not None):
        result = Plan("next_release", release=validated.release or _default_next(ctx))
        result.activity_type, result.activity_data = ActivityType.SET_RESOLVED_IN_RELEASE, {"version": ""}
        result.details = StatusDetailsView(in_next_release=True, actor=actor)
    elif details and details.in_release is not None:
        release = validated.release
        assert release is not None
        result = Plan("in_release", release=release)
        result.activity_type = ActivityType.SET_RESOLVED_IN_RELEASE
        result.activity_data = {"version": release.version}
        result.details = StatusDetailsView(in_release=release.version, actor=actor)
    elif details and details.in_commit is not None:
        commit = validated.commit
        assert commit is not None
        result = Plan("in_commit", commit=commit, release=_release_with_commit(ctx, commit))
        result.activity_type, result.activity_data = ActivityType.SET_RESOLVED_IN_COMMIT, {"commit": commit.id}
        result.details = StatusDetailsView(in_commit=commit_view(commit), actor=actor)
    else:
        return Plan("now")
    if len(ctx.projects) > 1:
        raise InvalidArgument(MULTI_PROJECT, reason="MULTIPLE_PROJECTS")
    return result


def _default_next(ctx: UpdateContext) -> Release | None:
    if len(ctx.projects) != 1:
        return None
    project_id = next(iter(ctx.projects))
    if releases.follows_semver(project_id=project_id):
        return releases.greatest_semver_release(project_id=project_id)
    return releases.most_recent_release(project_id=project_id)


def _release_with_commit(ctx: UpdateContext, commit: Commit) -> Release | None:
    return (
        Release.select()
        .join(ReleaseCommit, on=(ReleaseCommit.release == Release.id))
        .where((ReleaseCommit.commit == commit.id) & (Release.organization == ctx.organization.id))
        .order_by(fn.COALESCE(Release.date_released, Release.date_added).desc(), Release.id.desc())
        .first()
    )


def commit_view(commit: Commit) -> CommitView:
    repo = Repository.get_by_id(commit.repository_id)
    return CommitView(id=commit.id, key=commit.key, repository=repo.name)


def resolve(ctx: UpdateContext, *, resolution: Plan) -> None:
    """Resolve every selected group that is not resolved yet; resolved ones are skipped (§3.3)."""
    ctx.delta.status = "resolved"
    ctx.delta.status_details = resolution.details
    ctx.delta.inbox = "removed"
    targets = [g for g in ctx.groups if g.status != GroupStatus.RESOLVED]
    if not targets:
        return
    ids = [g.id for g in targets]
    created, per_group_data, idents = _write_resolutions(ctx, targets=targets, resolution=resolution)
    if resolution.commit is not None:
        _link_commit(ctx, targets=targets, commit=resolution.commit)
    Group.update(status=int(GroupStatus.RESOLVED), resolved_at=ctx.now, substatus=None).where(
        Group.id.in_(ids)
    ).execute()
    GroupInbox.delete().where(GroupInbox.group.in_(ids)).execute()
    GroupSnooze.delete().where(GroupSnooze.group.in_(ids)).execute()
    subscriptions.subscribe_actor(ctx, groups=targets, reason=SubscriptionReason.STATUS_CHANGE)
    _maybe_self_assign(ctx, targets=targets)
    ctx.mark_changed(ids)
    _record(ctx, groups=[g for g in targets if g.id in created], resolution=resolution,
            per_group_data=per_group_data, idents=idents)  # fmt: skip


def _record(
    ctx: UpdateContext,
    *,
    groups: list[Group],
    resolution: Plan,
    per_group_data: dict[int, dict[str, Any]],
    idents: dict[int, str],
) -> None:
    for g in groups:
        g.status, g.substatus = int(GroupStatus.RESOLVED), None
    activity.record_activities(ctx, groups=groups, type=resolution.activity_type,
                               data=resolution.activity_data, per_group_data=per_group_data,
                               idents=idents)  # fmt: skip
    release_id = resolution.release.id if resolution.release is not None else None
    activity.record_history(ctx, groups=groups, status=HISTORY[resolution.activity_type],
                            release_id=release_id)  # fmt: skip
    for g in groups:
        ctx.notify("issue.resolved", group_id=g.id, resolution_type=resolution.kind)
    if not ctx.is_bulk and groups:
        ctx.notify("activity.notification", group_id=groups[0].id,
                   activity_type=int(resolution.activity_type))  # fmt: skip


def _write_resolutions(
    ctx: UpdateContext, *, targets: list[Group], resolution: Plan
) -> tuple[set[int], dict[int, dict[str, Any]], dict[int, str]]:
    """Upsert GroupResolution rows; returns the groups whose row is new, data and idents."""
    ids = [g.id for g in targets]
    if resolution.release is None:
        return set(ids), {}, {}
    existing = {r.group_id for r in GroupResolution.select(GroupResolution.group).where(GroupResolution.group.in_(ids))}
    rows, per_group_data = _resolution_rows(ctx, targets=targets, resolution=resolution)
    update = {getattr(GroupResolution, f): getattr(EXCLUDED, f) for f in _ROW_FIELDS}
    for start in range(0, len(rows), 500):
        GroupResolution.insert_many(rows[start : start + 500]).on_conflict(
            conflict_target=[GroupResolution.group], update=update
        ).execute()
    idents = {
        r.group_id: str(r.id)
        for r in GroupResolution.select(GroupResolution.id, GroupResolution.group).where(GroupResolution.group.in_(ids))
    }
    return set(ids) - existing, per_group_data, idents


_ROW_FIELDS = ("release", "current_release_version", "type", "status", "actor_id", "datetime")


def _resolution_rows(
    ctx: UpdateContext, *, targets: list[Group], resolution: Plan
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    release = resolution.release
    assert release is not None
    base = {"release": release.id, "actor_id": ctx.actor_id, "datetime": ctx.now,
            "current_release_version": None}  # fmt: skip
    if resolution.kind != "next_release":
        base.update(type=int(ResolutionType.IN_RELEASE), status=int(ResolutionStatus.RESOLVED))
        return [{**base, "group": g.id} for g in targets], {}
    base.update(type=int(ResolutionType.IN_NEXT_RELEASE), status=int(ResolutionStatus.PENDING))
    return _next_release_rows(ctx, targets=targets, base=base, resolution=resolution)


def _next_release_rows(
    ctx: UpdateContext, *, targets: list[Group], base: dict[str, Any], resolution: Plan
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """§3.4 a: semver resolves at once past the greatest version; date order jumps ahead if it can."""
    release = resolution.release
    assert release is not None
    project_id = targets[0].project_id
    semver = releases.follows_semver(project_id=project_id, release_version=release.version)
    rows: list[dict[str, Any]] = []
    data: dict[int, dict[str, Any]] = {}
    if semver:
        greatest = releases.greatest_semver_release(project_id=project_id)
        current = greatest.version if greatest is not None else None
        for g in targets:
            row = {**base, "group": g.id, "current_release_version": current}
            if current is not None:
                row.update(type=int(ResolutionType.IN_RELEASE), status=int(ResolutionStatus.RESOLVED))
                data[g.id] = {**resolution.activity_data, "current_release_version": current}
            rows.append(row)
        return rows, data
    last = releases.last_release_versions([g.id for g in targets])
    following: dict[str, Release | None] = {}
    for g in targets:
        current = last.get(g.id)
        row = {**base, "group": g.id, "current_release_version": current}
        if current is not None:
            if current not in following:
                following[current] = releases.first_release_after(
                    organization_id=ctx.organization.id, project_id=project_id, version=current
                )
            nxt = following[current]
            if nxt is not None:
                row.update(release=nxt.id, type=int(ResolutionType.IN_RELEASE),
                           status=int(ResolutionStatus.RESOLVED))  # fmt: skip
                data[g.id] = {**resolution.activity_data, "version": nxt.version}
        rows.append(row)
    return rows, data


def _link_commit(ctx: UpdateContext, *, targets: list[Group], commit: Commit) -> None:
    """GroupLink (commit, resolves); a second resolve in the same commit is not an error here."""
    rows = [
        {
            "group": g.id,
            "project": g.project_id,
            "linked_type": int(LinkType.COMMIT),
            "linked_id": commit.id,
            "relationship": int(LinkRelationship.RESOLVES),
            "data": {},
            "datetime": ctx.now,
        }
        for g in targets
    ]
    update = {GroupLink.relationship: int(LinkRelationship.RESOLVES), GroupLink.datetime: ctx.now}
    for start in range(0, len(rows), 500):
        GroupLink.insert_many(rows[start : start + 500]).on_conflict(
            conflict_target=[GroupLink.group, GroupLink.linked_type, GroupLink.linked_id],
            update=update,
        ).execute()


def _maybe_self_assign(ctx: UpdateContext, *, targets: list[Group]) -> None:
    """User option self_assign_issue="1": assign every selected group to the resolver (§5 item 17)."""
    if ctx.actor is None:
        return
    option = UserOption.get_or_none((UserOption.user == ctx.actor.id) & (UserOption.key == "self_assign_issue"))
    if option is None or option.value != "1":
        return
    assigned = {
        a.group_id for a in GroupAssignee.select(GroupAssignee.group).where(GroupAssignee.group.in_([g.id for g in targets]))
    }
    if any(g.id not in assigned for g in targets):
        ctx.self_assign = True
