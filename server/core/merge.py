"""Merge (§3.12): children become PENDING_MERGE and redirect to the primary; set-based."""

from __future__ import annotations

from typing import Any

from peewee import fn

from server.core import activity, issue_types, settings
from server.core.bulk_sql import insert_rows, where_id_in
from server.core.context import MergeView, UpdateContext
from server.core.enums import HIDDEN_STATUSES, ActivityType, GroupStatus
from server.core.errors import InvalidArgument
from server.storage.models import (
    Activity,
    Group,
    GroupBookmark,
    GroupHash,
    GroupRedirect,
    GroupSubscription,
)

ACROSS_PROJECTS = "Merging across multiple projects is not supported"
NOT_ERRORS = "Only error issues can be merged."
TOO_MANY_EVENTS = "Merging issues seen more than {limit} times is temporarily restricted."


def _candidates(ctx: UpdateContext) -> list[Group]:
    """Groups already deleting or merged away take no part in a merge."""
    return [g for g in ctx.groups if g.status not in HIDDEN_STATUSES]


def check(ctx: UpdateContext) -> None:
    """Merge preconditions, checked before any write (Sentry checks after some writes)."""
    cmd = ctx.command
    if cmd.merge_primary_group_id is not None and not cmd.merge:
        raise InvalidArgument.field("merge_primary_group_id", "Only allowed together with merge=true.")
    if not cmd.merge:
        return
    groups = _candidates(ctx)
    if cmd.merge_primary_group_id is not None and cmd.merge_primary_group_id not in {g.id for g in groups}:
        raise InvalidArgument.field("merge_primary_group_id", "Must be one of the selected issues.")
    if len(groups) < 2:
        return  # with one group the flag is only echoed (§3.12)
    if len({g.project_id for g in groups}) > 1:
        raise InvalidArgument.field("merge", ACROSS_PROJECTS)
    if not all(issue_types.is_error(g.type) for g in groups):
        raise InvalidArgument.field("merge", NOT_ERRORS)
    _check_times_seen(groups)


def _check_times_seen(groups: list[Group]) -> None:
    """Server option issues.merge-unmerge.max-group-times-seen (0: no limit); at it is allowed."""
    limit = settings.option(settings.MAX_GROUP_TIMES_SEEN)
    if limit > 0 and any(g.times_seen > limit for g in groups):
        raise InvalidArgument.field("merge", TOO_MANY_EVENTS.format(limit=limit))


def _primary(ctx: UpdateContext, groups: list[Group]) -> Group:
    """The named group, else the earliest first seen (ties: most events, then lowest id)."""
    wanted = ctx.command.merge_primary_group_id
    if wanted is not None:
        return next(g for g in groups if g.id == wanted)
    return min(groups, key=lambda g: (g.first_seen, -g.times_seen, g.id))


def merge(ctx: UpdateContext) -> None:
    check(ctx)
    groups = _candidates(ctx)
    if len(groups) < 2:
        ctx.delta.merge_echo = True  # one group: nothing merges, the flag is echoed (§3.12)
        return
    primary = _primary(ctx, groups)
    children = [g for g in groups if g.id != primary.id]
    child_ids = [g.id for g in children]
    Group.update(status=int(GroupStatus.PENDING_MERGE), substatus=None).where(
        where_id_in(Group.id, child_ids)
    ).execute()
    for g in children:  # later steps (inbox) must see the new status
        g.status, g.substatus = int(GroupStatus.PENDING_MERGE), None
    _move_rows(primary_id=primary.id, child_ids=child_ids)
    _redirect(ctx, primary_id=primary.id, child_ids=child_ids)
    activity.record_activities(
        ctx,
        groups=[primary],
        type=ActivityType.MERGE,
        data={"issues": [{"id": cid} for cid in child_ids]},
    )
    ctx.delta.merge = MergeView(parent=primary.id, children=child_ids)
    ctx.mark_changed([g.id for g in groups])
    ctx.notify("issue.merged", group_id=primary.id, children=child_ids)


def _move_rows(*, primary_id: int, child_ids: list[int]) -> None:
    """What Sentry's merge task moves, at once: hashes, activities, subscriptions, bookmarks."""
    GroupHash.update(group=primary_id).where(where_id_in(GroupHash.group, child_ids)).execute()
    Activity.update(group=primary_id).where(where_id_in(Activity.group, child_ids)).execute()
    _move_unique(GroupSubscription, GroupSubscription.user, primary_id=primary_id, child_ids=child_ids)
    _move_unique(GroupSubscription, GroupSubscription.team, primary_id=primary_id, child_ids=child_ids)
    _move_unique(GroupBookmark, GroupBookmark.user, primary_id=primary_id, child_ids=child_ids)


def _move_unique(model: Any, owner: Any, *, primary_id: int, child_ids: list[int]) -> None:
    """Move rows unique per (group, owner): first drop child rows whose owner already has one on
    the primary or on a child row with a lower id, then re-point the rest."""
    other = model.alias()
    on_primary = other.select(getattr(other, owner.name)).where(
        (other.group == primary_id) & getattr(other, owner.name).is_null(False)
    )
    model.delete().where(model.group.in_(child_ids) & owner.in_(on_primary)).execute()
    earlier = other.select(other.id).where(
        other.group.in_(child_ids) & (getattr(other, owner.name) == owner) & (other.id < model.id)
    )
    model.delete().where(model.group.in_(child_ids) & owner.is_null(False) & fn.EXISTS(earlier)).execute()
    model.update(group=primary_id).where(model.group.in_(child_ids) & owner.is_null(False)).execute()


def _redirect(ctx: UpdateContext, *, primary_id: int, child_ids: list[int]) -> None:
    """Later calls on a child id (or on ids merged into a child before) reach the primary."""
    GroupRedirect.update(group_id=primary_id).where(where_id_in(GroupRedirect.group_id, child_ids)).execute()
    rows = [
        {"organization": ctx.organization.id, "group_id": primary_id, "previous_group_id": cid} for cid in child_ids
    ]
    insert_rows(GroupRedirect, rows, conflict_target=["previous_group_id"], update={"group_id": primary_id})
