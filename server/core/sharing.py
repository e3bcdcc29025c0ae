"""Public sharing (§3.10): true regenerates the share id every time; false removes it."""

from __future__ import annotations

import uuid

from server.core import activity
from server.core.bulk_sql import insert_rows, where_id_in
from server.core.context import UpdateContext
from server.core.enums import ActivityType
from server.core.write_sql import delete_in
from server.storage.models import GroupShare


def set_public(ctx: UpdateContext, *, is_public: bool) -> None:
    shared = GroupShare.select(GroupShare.group).where(where_id_in(GroupShare.group, ctx.group_ids))
    existing = {s.group_id for s in shared}
    if existing:
        delete_in(GroupShare, list(existing))
        removed = [g for g in ctx.groups if g.id in existing]
        activity.record_activities(ctx, groups=removed, type=ActivityType.SET_PRIVATE, data={})
        if not is_public:
            for g in removed:
                ctx.notify("issue.unshared", group_id=g.id)
    ctx.delta.is_public = is_public
    ctx.delta.share_id = _share(ctx) if is_public else None
    ctx.mark_changed(ctx.group_ids if is_public else list(existing))


def _share(ctx: UpdateContext) -> str:
    """A new share per group; the reply carries the last one created, as Sentry's does."""
    uuids = [uuid.uuid4().hex for _ in ctx.groups]
    rows = [
        {"project": g.project_id, "group": g.id, "uuid": share_id, "user": ctx.actor_id,
         "date_added": ctx.now}
        for g, share_id in zip(ctx.groups, uuids, strict=True)
    ]  # fmt: skip
    insert_rows(GroupShare, rows)
    activity.record_activities(ctx, groups=ctx.groups, type=ActivityType.SET_PUBLIC, data={})
    for g in ctx.groups:
        ctx.notify("issue.shared", group_id=g.id)
    return uuids[-1]
