"""Issue subscriptions: insert-if-absent for implicit reasons, upsert for explicit (un)subscribe."""

from __future__ import annotations

from peewee import Tuple

from server.core.context import UpdateContext
from server.core.enums import SubscriptionReason
from server.core.errors import InvalidArgument
from server.models import Group, GroupSubscription

BATCH = 500


def subscribe_users(
    ctx: UpdateContext, *, groups: list[Group], user_ids: list[int], reason: SubscriptionReason
) -> None:
    """Subscribe each user to each group unless a row exists (an explicit unsubscribe stays)."""
    rows = [
        {
            "group": g.id,
            "project": g.project_id,
            "user": uid,
            "is_active": True,
            "reason": int(reason),
            "date_added": ctx.now,
        }
        for g in groups
        for uid in user_ids
    ]
    for start in range(0, len(rows), BATCH):
        GroupSubscription.insert_many(rows[start : start + BATCH]).on_conflict_ignore().execute()


def subscribe_actor(ctx: UpdateContext, *, groups: list[Group], reason: SubscriptionReason) -> None:
    if ctx.actor_id is not None:
        subscribe_users(ctx, groups=groups, user_ids=[ctx.actor_id], reason=reason)


def set_subscribed(ctx: UpdateContext, *, is_subscribed: bool) -> None:
    """Explicit (un)subscribe: create or update the row with reason unknown (§3.10)."""
    if ctx.actor_id is None:
        raise InvalidArgument.field("is_subscribed", "An acting user is required to subscribe.")
    rows = [
        {
            "group": g.id,
            "project": g.project_id,
            "user": ctx.actor_id,
            "is_active": is_subscribed,
            "reason": int(SubscriptionReason.UNKNOWN),
            "date_added": ctx.now,
        }
        for g in ctx.groups
    ]
    for start in range(0, len(rows), BATCH):
        GroupSubscription.insert_many(rows[start : start + BATCH]).on_conflict(
            conflict_target=[GroupSubscription.group, GroupSubscription.user],
            update={
                GroupSubscription.is_active: is_subscribed,
                GroupSubscription.reason: int(SubscriptionReason.UNKNOWN),
            },
        ).execute()
    ctx.mark_changed(ctx.group_ids)
    ctx.delta.is_subscribed = is_subscribed
    ctx.delta.subscription_reason = "unknown"


def unsubscribe_pairs(*, pairs: list[tuple[int, int]], reason: SubscriptionReason) -> None:
    """Delete the (group, user) subscriptions with this reason, in one statement per batch."""
    for start in range(0, len(pairs), BATCH):
        chunk = pairs[start : start + BATCH]
        GroupSubscription.delete().where(
            (GroupSubscription.reason == int(reason))
            & Tuple(GroupSubscription.group, GroupSubscription.user).in_(chunk)
        ).execute()
