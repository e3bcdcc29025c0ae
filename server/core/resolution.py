"""Resolution (§3.4): now, in a release, in the next release, in a commit; set-based."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from peewee import fn

from server.core import activity, issue_types, releases, snooze, subscriptions
from server.core.bulk_sql import EXCLUDED, insert_rows, where_id_in
from server.core.commands import StatusDetails
from server.core.context import StatusDetailsView, UpdateContext, UserView
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
from server.core.errors import FieldViolation, InvalidArgument
from server.core.serialize import activities_for, commit_view
from server.core.validation import Validated
from server.core.write_sql import delete_in, update_in
from server.storage.models import (
    Commit,
    Group,
    GroupAssignee,
    GroupInbox,
    GroupLink,
    GroupResolution,
    GroupSnooze,
    Release,
    ReleaseCommit,
)

MULTI_PROJECT = "Cannot set resolved for multiple projects."
MANUAL_RESOLUTION = "Cannot manually resolve one or more issues."
HISTORY = {
    ActivityType.SET_RESOLVED: GroupHistoryStatus.RESOLVED,
    ActivityType.SET_RESOLVED_IN_RELEASE: GroupHistoryStatus.SET_RESOLVED_IN_RELEASE,
    ActivityType.SET_RESOLVED_IN_COMMIT: GroupHistoryStatus.SET_RESOLVED_IN_COMMIT,
}
# §3.13 item 1: only these kinds put the group's activities in a single-group bulk reply.
KINDS_WITH_ACTIVITIES = frozenset({"in_next_release", "in_release"})
_ROW_FIELDS = ("release", "current_release_version", "type", "status", "actor_id", "datetime")

# Per-group refinements of the resolution row and of the activity data.
Rows = list[dict[str, Any]]
DataByGroup = dict[int, dict[str, Any]]


@dataclass
class Plan:
    """The resolution kind picked once per request (§3.4 step 2); kind is Sentry's
    resolution_type string: now, in_release, in_next_release or in_commit."""

    kind: str
    release: Release | None = None
    commit: Commit | None = None
    activity_type: ActivityType = ActivityType.SET_RESOLVED
    activity_data: dict[str, Any] = field(default_factory=dict)
    details: StatusDetailsView = field(default_factory=StatusDetailsView)


def plan(ctx: UpdateContext, *, validated: Validated) -> Plan:
    """Pick the kind (first match wins); refuse release and commit kinds across projects
    before anything is written."""
    _check_manual_resolution(ctx)
    details = ctx.command.status_details or StatusDetails()
    actor = snooze.user_view(ctx.actor)
    if ctx.command.status == "resolvedInNextRelease" or details.in_next_release is not None:
        # Only an in_next_release detail names the release; other details are not used here.
        named = details.in_next_release is not None
        result = _next_release_plan(validated.release if named else _default_next(ctx), actor)
    elif details.in_release is not None:
        assert validated.release is not None  # validation looked it up or refused the call
        result = _in_release_plan(validated.release, actor)
    elif details.in_commit is not None:
        assert validated.commit is not None
        result = _in_commit_plan(ctx, validated.commit, actor)
    else:
        return Plan("now")
    if len(ctx.projects) > 1:
        # Sentry's message, and the field that asked for a release or commit resolution.
        asked_by = "status" if ctx.command.status == "resolvedInNextRelease" else "status_details"
        raise InvalidArgument(MULTI_PROJECT, violations=[FieldViolation(asked_by, "Only for issues of one project.")],
                              reason="MULTIPLE_PROJECTS", detail=True)  # fmt: skip
    return result


def _check_manual_resolution(ctx: UpdateContext) -> None:
    """Issues whose status a detector manages (metric issues) are never resolved by hand: the
    whole call is refused when it would resolve any of them."""
    pending = [g for g in ctx.groups if g.status != GroupStatus.RESOLVED]
    if not all(issue_types.manual_resolution_allowed(g.type) for g in pending):
        # Sentry's bare 400 detail as the message; the field at fault as a violation too.
        raise InvalidArgument(
            MANUAL_RESOLUTION,
            violations=[FieldViolation("status", MANUAL_RESOLUTION)],
            detail=True,
            reason="MANUAL_RESOLUTION_NOT_ALLOWED",
        )


def _next_release_plan(release: Release | None, actor: UserView | None) -> Plan:
    return Plan(
        "in_next_release",
        release=release,
        activity_type=ActivityType.SET_RESOLVED_IN_RELEASE,
        activity_data={"version": ""},
        details=StatusDetailsView(in_next_release=True, actor=actor),
    )


def _in_release_plan(release: Release, actor: UserView | None) -> Plan:
    return Plan(
        "in_release",
        release=release,
        activity_type=ActivityType.SET_RESOLVED_IN_RELEASE,
        activity_data={"version": release.version},
        details=StatusDetailsView(in_release=release.version, actor=actor),
    )


def _in_commit_plan(ctx: UpdateContext, commit: Commit, actor: UserView | None) -> Plan:
    return Plan(
        "in_commit",
        release=_release_with_commit(ctx, commit),
        commit=commit,
        activity_type=ActivityType.SET_RESOLVED_IN_COMMIT,
        activity_data={"commit": commit.id},
        details=StatusDetailsView(in_commit=commit_view(commit), actor=actor),
    )


def _default_next(ctx: UpdateContext) -> Release | None:
    """resolvedInNextRelease without details: greatest semver release, else the most recent."""
    if len(ctx.projects) != 1:
        return None  # refused by plan() anyway
    project_id = next(iter(ctx.projects))
    if releases.follows_semver(project_id=project_id):
        return releases.greatest_semver_release(project_id=project_id)
    return releases.most_recent_release(project_id=project_id)


def _release_with_commit(ctx: UpdateContext, commit: Commit) -> Release | None:
    """The newest release of the organization that contains the commit, if any."""
    found: Release | None = (
        Release.select()
        .join(ReleaseCommit, on=(ReleaseCommit.release == Release.id))
        .where((ReleaseCommit.commit == commit.id) & (Release.organization == ctx.organization.id))
        .order_by(fn.COALESCE(Release.date_released, Release.date_added).desc(), Release.id.desc())
        .first()
    )
    return found


def resolve(ctx: UpdateContext, *, resolution: Plan) -> None:
    """Resolve every selected group that is not resolved yet; resolved ones are skipped (§3.3)."""
    ctx.delta.status = "resolved"
    ctx.delta.status_details = resolution.details
    targets = [g for g in ctx.groups if g.status != GroupStatus.RESOLVED]
    if targets:
        # §3.4 3.d: only groups actually resolved leave the inbox; all skipped, no inbox claim.
        ctx.delta.inbox = "removed"
        _resolve_groups(ctx, targets=targets, resolution=resolution)
    if len(ctx.groups) == 1 and stored_kind(resolution) in KINDS_WITH_ACTIVITIES:
        ctx.delta.activities = activities_for(ctx.groups[0])


def stored_kind(resolution: Plan) -> str:
    """The resolution type as stored (§3.13 step 1 reads it, not the request's kind): a commit
    that belongs to a release is stored as in_release."""
    if resolution.kind == "in_commit" and resolution.release is not None:
        return "in_release"
    return resolution.kind


def _resolve_groups(ctx: UpdateContext, *, targets: list[Group], resolution: Plan) -> None:
    ids = [g.id for g in targets]
    _maybe_self_assign(ctx, targets=targets)  # reads assignees before anything changes them
    created, per_group_data, idents = _write_resolutions(ctx, targets=targets, resolution=resolution)
    if resolution.commit is not None:
        _link_commit(ctx, targets=targets, commit=resolution.commit)
    # The version bump rides on this UPDATE instead of a second one over the same rows.
    update_in(
        Group, ids, values={"status": int(GroupStatus.RESOLVED), "resolved_at": ctx.now, "substatus": None},
        bump_version=True,
    )  # fmt: skip
    ctx.versioned_ids.update(ids)
    delete_in(GroupInbox, ids)
    # Sentry drops the snooze in an issue-resolved receiver; here it is the same transaction.
    delete_in(GroupSnooze, ids)
    subscriptions.subscribe_actor(ctx, groups=targets, reason=SubscriptionReason.STATUS_CHANGE)
    ctx.mark_changed(ids)
    for g in targets:
        g.status, g.substatus = int(GroupStatus.RESOLVED), None
    recorded = [g for g in targets if g.id in created]
    _record(ctx, groups=recorded, resolution=resolution, per_group_data=per_group_data, idents=idents)


def _record(
    ctx: UpdateContext,
    *,
    groups: list[Group],
    resolution: Plan,
    per_group_data: DataByGroup,
    idents: dict[int, str],
) -> None:
    """Activity, history and notifications, only for groups whose resolution is new (§3.4 g)."""
    activity.record_activities(
        ctx,
        groups=groups,
        type=resolution.activity_type,
        data=resolution.activity_data,
        per_group_data=per_group_data,
        idents=idents,
    )
    release_id = resolution.release.id if resolution.release is not None else None
    history = HISTORY[resolution.activity_type]
    activity.record_history(ctx, groups=groups, status=history, release_id=release_id)
    for g in groups:
        ctx.notify("issue.resolved", group_id=g.id, resolution_type=resolution.kind)
    if not ctx.is_bulk and groups:
        kind = int(resolution.activity_type)
        ctx.notify("activity.notification", group_id=groups[0].id, activity_type=kind)


def _write_resolutions(
    ctx: UpdateContext, *, targets: list[Group], resolution: Plan
) -> tuple[set[int], DataByGroup, dict[int, str]]:
    """Upsert GroupResolution rows; returns the groups whose row is new, data and idents."""
    ids = [g.id for g in targets]
    if resolution.release is None:
        return set(ids), {}, {}
    existing = {
        r.group_id for r in GroupResolution.select(GroupResolution.group).where(where_id_in(GroupResolution.group, ids))
    }
    rows, per_group_data = _resolution_rows(ctx, targets=targets, resolution=resolution)
    # EXCLUDED names columns, so the release foreign key is EXCLUDED.release_id.
    update = dict.fromkeys(_ROW_FIELDS, EXCLUDED)
    insert_rows(GroupResolution, rows, conflict_target=["group"], update=update)
    query = GroupResolution.select(GroupResolution.id, GroupResolution.group)
    idents = {r.group_id: str(r.id) for r in query.where(where_id_in(GroupResolution.group, ids))}
    return set(ids) - existing, per_group_data, idents


def _resolution_rows(ctx: UpdateContext, *, targets: list[Group], resolution: Plan) -> tuple[Rows, DataByGroup]:
    release = resolution.release
    assert release is not None
    base: dict[str, Any] = {
        "release": release.id,
        "actor_id": ctx.actor_id,
        "datetime": ctx.now,
        "current_release_version": None,
    }
    if resolution.kind != "in_next_release":
        base.update(_resolved_now())
        return [{**base, "group": g.id} for g in targets], {}
    base.update(type=int(ResolutionType.IN_NEXT_RELEASE), status=int(ResolutionStatus.PENDING))
    project_id = targets[0].project_id
    if releases.follows_semver(project_id=project_id, release_version=release.version):
        return _semver_rows(targets=targets, base=base, resolution=resolution)
    return _date_rows(targets=targets, base=base, resolution=resolution)


def _resolved_now() -> dict[str, int]:
    return {"type": int(ResolutionType.IN_RELEASE), "status": int(ResolutionStatus.RESOLVED)}


def _semver_rows(*, targets: list[Group], base: dict[str, Any], resolution: Plan) -> tuple[Rows, DataByGroup]:
    """Semver projects resolve at once: "resolved in every version after the greatest one"."""
    greatest = releases.greatest_semver_release(project_id=targets[0].project_id)
    if greatest is None:
        return [{**base, "group": g.id} for g in targets], {}
    row = {**base, **_resolved_now(), "current_release_version": greatest.version}
    data = {**resolution.activity_data, "current_release_version": greatest.version}
    # A fresh dict per group: Sentry's shared activity dict leaks refinements across groups.
    return [{**row, "group": g.id} for g in targets], {g.id: dict(data) for g in targets}


def _date_rows(*, targets: list[Group], base: dict[str, Any], resolution: Plan) -> tuple[Rows, DataByGroup]:
    """Date-ordered projects jump to the first release added after the group's last release;
    without one the row stays pending (Sentry fills it in when a release is created)."""
    last = releases.last_releases([g.id for g in targets])
    bases = list({r.id: r for r in last.values()}.values())
    following = releases.first_releases_after(project_id=targets[0].project_id, bases=bases)
    rows: Rows = []
    data: DataByGroup = {}
    for g in targets:
        current = last.get(g.id)
        row = {**base, "group": g.id, "current_release_version": _version(current)}
        nxt = following.get(current.id) if current is not None else None
        if nxt is not None:
            row.update(release=nxt.id, **_resolved_now())
            data[g.id] = {**resolution.activity_data, "version": nxt.version}
        rows.append(row)
    return rows, data


def _version(release: Release | None) -> str | None:
    return release.version if release is not None else None


def _link_commit(ctx: UpdateContext, *, targets: list[Group], commit: Commit) -> None:
    """GroupLink (commit, resolves). Re-resolving in the same commit after an unresolve is an
    upsert here, where Sentry hits the unique constraint (§5 item 22)."""
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
    update = {"relationship": int(LinkRelationship.RESOLVES), "datetime": ctx.now}
    target = ["group", "linked_type", "linked_id"]
    insert_rows(GroupLink, rows, conflict_target=target, update=update)


def _maybe_self_assign(ctx: UpdateContext, *, targets: list[Group]) -> None:
    """Option self_assign_issue="1": once any resolved group lacks an assignee, every selected
    group goes to the resolver, overriding an assigned_to in the same patch (§5 item 17)."""
    if ctx.actor is None:
        return
    if ctx.self_assign_option != "1":  # read with the caller's access (access_sql)
        return
    ids = [g.id for g in targets]
    assigned = GroupAssignee.select(GroupAssignee.group).where(where_id_in(GroupAssignee.group, ids))
    if len({a.group_id for a in assigned}) < len(ids):
        ctx.self_assign = True
