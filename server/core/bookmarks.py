"""Bookmarks (§3.10): bookmarking subscribes; un-bookmarking drops all the user's subscriptions."""

from __future__ import annotations

from server.core import subscriptions
from server.core.bulk_sql import insert_rows, where_id_in, write
from server.core.context import UpdateContext
from server.core.enums import SubscriptionReason
from server.storage.models import GroupBookmark, GroupSubscription


def set_bookmarked(ctx: UpdateContext, *, is_bookmarked: bool) -> None:
    user_id = subscriptions.actor_id_for(ctx, field="is_bookmarked")
    ctx.delta.is_bookmarked = is_bookmarked
    mine = (GroupBookmark.user == user_id) & where_id_in(GroupBookmark.group, ctx.group_ids)
    had = {b.group_id for b in GroupBookmark.select(GroupBookmark.group).where(mine)}
    if is_bookmarked:
        _bookmark(ctx, user_id=user_id)
        ctx.mark_changed([g.id for g in ctx.groups if g.id not in had])
        return
    write(GroupBookmark.delete().where(mine))
    # Sentry removes all of the user's subscriptions here, whatever their reason (§5 item 15).
    write(
        GroupSubscription.delete().where(
            (GroupSubscription.user == user_id) & where_id_in(GroupSubscription.group, ctx.group_ids)
        )
    )
    ctx.mark_changed(had)


def _bookmark(ctx: UpdateContext, *, user_id: int) -> None:
    rows = [{"project": g.project_id, "group": g.id, "user": user_id, "date_added": ctx.now} for g in ctx.groups]
    insert_rows(GroupBookmark, rows, ignore=True)
    subscriptions.subscribe_users(ctx, groups=ctx.groups, user_ids=[user_id], reason=SubscriptionReason.BOOKMARK)
