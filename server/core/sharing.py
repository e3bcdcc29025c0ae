"""Public sharing (§3.10): true regenerates the share id every time; false removes it."""

from __future__ import annotations

import uuid

from server.core import activity
from server.core.context import UpdateContext
from server.core.enums import ActivityType
from server.models import GroupShare


def set_public(ctx: UpdateContext, *, is_public: bool) -> None:
    existing = {
        s.group_id
        for s in GroupShare.select(GroupShare.group).where(GroupShare.group.in_(ctx.group_ids))
    }
    if existing:
        GroupShare.delete().where(GroupShare.group.in_(list(existing))).execute()
        removed = [g for g in ctx.groups if g.id in existing]
        activity.record_activities(ctx, groups=removed, type=ActivityType.SET_PRIVATE, data={})
    ctx.delta.is_public = is_public
    ctx.delta.share_id = None
    if is_public:
        rows = [
            {"project": g.project_id, "group": g.id, "uuid": uuid.uuid4().hex, "user": ctx.actor_id,
             "date_added": ctx.now}
            for g in ctx.groups
        ]  # fmt: skip
        for start in range(0, len(rows), 500):
            GroupShare.insert_many(rows[start : start + 500]).execute()
        activity.record_activities(ctx, groups=ctx.groups, type=ActivityType.SET_PUBLIC, data={})
        ctx.delta.share_id = rows[-1]["uuid"]  # Sentry returns the last share created
    ctx.mark_changed(ctx.group_ids if is_public else list(existing))
