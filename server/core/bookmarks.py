"""Bookmarks (§3.10): bookmarking subscribes; un-bookmarking drops every subscription of the user."""

from __future__ import annotations

from server.core import subscriptions
from server.core.context import UpdateContext
from server.core.enums import SubscriptionReason
from server.core.errors import InvalidArgument
from server.models import GroupBookmark, GroupSubscription


def set_bookmarked(ctx: UpdateContext, *, is_bookmarked: bool) -> None:
    if ctx.actor_id is None:
        raise InvalidArgument.field("is_bookmarked", "An acting user is required to bookmark.")
    ctx.delta.is_bookmarked = is_bookmarked
    if is_bookmarked:
        rows = [
            {"project": g.project_id, "group": g.id, "user": ctx.actor_id, "date_added": ctx.now}
            for g in ctx.groups
        ]
        for start in range(0, len(rows), 500):
            GroupBookmark.insert_many(rows[start : start + 500]).on_conflict_ignore().execute()
        subscriptions.subscribe_users(
            ctx, groups=ctx.groups, user_ids=[ctx.actor_id], reason=SubscriptionReason.BOOKMARK
        )
        return
    GroupBookmark.delete().where(
        (GroupBookmark.user == ctx.actor_id) & GroupBookmark.group.in_(ctx.group_ids)
    ).execute()
    # Sentry removes all of the user's subscriptions here, whatever their reason (§5 item 15).
    GroupSubscription.delete().where(
        (GroupSubscription.user == ctx.actor_id) & GroupSubscription.group.in_(ctx.group_ids)
    ).execute()
