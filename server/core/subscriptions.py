"""Issue subscriptions: insert-if-absent for implicit reasons, upsert for explicit (un)subscribe."""

from __future__ import annotations

from peewee import Tuple

from server.core.batching import BATCH_ROWS
from server.core.bulk_sql import insert_rows
from server.core.context import UpdateContext
from server.core.enums import SubscriptionReason
from server.core.errors import InvalidArgument
from server.storage.models import Group, GroupSubscription

BATCH = BATCH_ROWS
# Per-user fields need an acting user; Sentry would write rows with a null user (§3.10).
ACTOR_REQUIRED = {
    "has_seen": "An acting user is required to mark issues seen.",
    "is_bookmarked": "An acting user is required to bookmark.",
    "is_subscribed": "An acting user is required to subscribe.",
}


def check_actor(ctx: UpdateContext) -> None:
    """Refuse per-user fields without an acting user, before anything is written."""
    for name, message in ACTOR_REQUIRED.items():
        if getattr(ctx.command, name) is not None and ctx.actor_id is None:
            raise InvalidArgument.field(name, message)


def actor_id_for(ctx: UpdateContext, *, field: str) -> int:
    if ctx.actor_id is None:
        raise InvalidArgument.field(field, ACTOR_REQUIRED[field])
    return ctx.actor_id


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
    insert_rows(GroupSubscription, rows, ignore=True)


def subscribe_actor(ctx: UpdateContext, *, groups: list[Group], reason: SubscriptionReason) -> None:
    if ctx.actor_id is not None:
        subscribe_users(ctx, groups=groups, user_ids=[ctx.actor_id], reason=reason)


def set_subscribed(ctx: UpdateContext, *, is_subscribed: bool) -> None:
    """Explicit (un)subscribe: create or update the row with reason unknown (§3.10)."""
    user_id = actor_id_for(ctx, field="is_subscribed")
    rows = [
        {
            "group": g.id,
            "project": g.project_id,
            "user": user_id,
            "is_active": is_subscribed,
            "reason": int(SubscriptionReason.UNKNOWN),
            "date_added": ctx.now,
        }
        for g in ctx.groups
    ]
    insert_rows(
        GroupSubscription,
        rows,
        conflict_target=["group", "user"],
        update={"is_active": is_subscribed, "reason": int(SubscriptionReason.UNKNOWN)},
    )
    ctx.mark_changed(ctx.group_ids)
    ctx.delta.is_subscribed = is_subscribed
    ctx.delta.subscription_reason = "unknown"


def unsubscribe_pairs(*, pairs: list[tuple[int, int]], reason: SubscriptionReason, teams: bool = False) -> None:
    """Delete the (group, user) -- or (group, team) -- subscriptions with this reason, in one
    statement per batch."""
    owner = GroupSubscription.team if teams else GroupSubscription.user
    for start in range(0, len(pairs), BATCH):
        chunk = pairs[start : start + BATCH]
        GroupSubscription.delete().where(
            (GroupSubscription.reason == int(reason)) & Tuple(GroupSubscription.group, owner).in_(chunk)
        ).execute()


def subscribe_team(ctx: UpdateContext, *, groups: list[Group], team_id: int, reason: SubscriptionReason) -> None:
    """The team itself subscribes (team-workflow-notifications feature), unless a row exists."""
    rows = [
        {"group": g.id, "project": g.project_id, "team": team_id, "is_active": True,
         "reason": int(reason), "date_added": ctx.now}
        for g in groups
    ]  # fmt: skip
    insert_rows(GroupSubscription, rows, ignore=True)
