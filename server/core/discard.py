"""Discard (§3.11): tombstone the groups so their future events are dropped, then delete them."""

from __future__ import annotations

from server.core import issue_types, settings
from server.core.bulk_sql import insert_rows, where_id_in
from server.core.context import UpdateContext
from server.core.enums import GroupStatus
from server.core.errors import FailedPrecondition, InvalidArgument
from server.storage.models import Group, GroupHash, GroupInbox, GroupTombstone

FEATURE = "projects:discard-groups"
DELETING = (int(GroupStatus.PENDING_DELETION), int(GroupStatus.DELETION_IN_PROGRESS))


def check(ctx: UpdateContext) -> None:
    """Feature first, then the issue category, as Sentry; nothing is written before both pass."""
    if not settings.feature_enabled(ctx.organization, FEATURE):
        raise FailedPrecondition("You do not have that feature enabled", reason="FEATURE_DISABLED", feature=FEATURE)
    if not all(issue_types.is_error(g.type) for g in ctx.groups):
        raise InvalidArgument.field("discard", "Only error issues can be discarded.")


def discard(ctx: UpdateContext) -> None:
    check(ctx)
    ctx.delta.discard = True
    ids = ctx.group_ids
    known = GroupTombstone.select(GroupTombstone.previous_group_id)
    tombstoned = {t.previous_group_id for t in known.where(GroupTombstone.previous_group_id.in_(ids))}
    groups = [g for g in ctx.groups if g.id not in tombstoned]  # Sentry skips these entirely
    if not groups:
        return
    _tombstone(ctx, groups=groups)
    _delete(ctx, ids=[g.id for g in groups])


def _tombstone(ctx: UpdateContext, *, groups: list[Group]) -> None:
    """One tombstone per group, then its hashes point at the tombstone instead of the group."""
    rows = [
        {"previous_group_id": g.id, "project": g.project_id, "level": g.level, "message": g.message,
         "culprit": g.culprit, "data": g.data, "actor_id": ctx.actor_id}
        for g in groups
    ]  # fmt: skip
    insert_rows(GroupTombstone, rows)
    ids = [g.id for g in groups]
    # SET expressions see the row before the update, so the subquery still reads the old group id.
    tombstone_id = GroupTombstone.select(GroupTombstone.id).where(GroupTombstone.previous_group_id == GroupHash.group)
    GroupHash.update(group_tombstone_id=tombstone_id, group=None).where(where_id_in(GroupHash.group, ids)).execute()


def _delete(ctx: UpdateContext, *, ids: list[int]) -> None:
    """Sentry's delete path, minus the async task: pending deletion, out of the inbox, announced."""
    Group.update(status=int(GroupStatus.PENDING_DELETION), substatus=None).where(
        where_id_in(Group.id, ids) & Group.status.not_in(DELETING)
    ).execute()
    GroupInbox.delete().where(where_id_in(GroupInbox.group, ids)).execute()
    ctx.mark_changed(ids)
    for gid in ids:
        ctx.notify("issue.deleted", group_id=gid, delete_type="discard")
