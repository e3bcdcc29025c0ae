"""The update core's entry points: one transaction per call, steps in Sentry's order (§3.2, §3.13)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from server.core import (
    assignee,
    assignment,
    bookmarks,
    discard,
    inbox,
    merge,
    permissions,
    priority,
    resolution,
    seen,
    selection,
    sharing,
    status,
    subscriptions,
    validation,
)
from server.core.access_sql import AccessRow
from server.core.bulk_sql import insert_rows
from server.core.commands import READ_SCOPES, WRITE_SCOPES, Caller, Selection, UpdateCommand
from server.core.context import BulkResult, GroupOutcome, UpdateContext
from server.core.errors import Cancelled, Conflict, NotFound, PermissionDenied
from server.core.serialize import GroupView, activity_views, etag_of, group_view_with_commit, view_of
from server.core.unit_of_work import cap_lock_wait, in_transaction
from server.core.write_sql import update_in
from server.storage import outbox_signal
from server.storage.models import Group, Organization, OutboxEvent, utcnow

RESOLVE_STATUSES = ("resolved", "resolvedInNextRelease")


class _Rollback(Exception):
    """Raised to roll back a validate_only run while keeping its result."""

    def __init__(self, result: BulkResult) -> None:
        self.result = result


def _require(caller: Caller, scopes: frozenset[str], what: str) -> None:
    if not (caller.scopes & scopes):
        needed = " or ".join(sorted(scopes))
        raise PermissionDenied(f"Token lacks a scope to {what} (needs {needed})", reason="MISSING_SCOPE")


def get_group(*, caller: Caller, organization_id: int, group_id: int) -> GroupView:
    _require(caller, READ_SCOPES, "read issues")

    def read() -> GroupView:
        # One statement: access, the group and its reply rows see one snapshot.
        row = selection.organization(caller=caller, organization_id=organization_id, user_id=caller.user_id,
                                     group_id=group_id, group="reply")  # fmt: skip
        access = permissions.authorize(caller=caller, row=row, needs=READ_SCOPES, what="read issues")
        group = selection.found_group(row, group_id=group_id)
        permissions.check_group(access=access, group=group, group_id=group_id)
        assert row.loaded is not None  # found_group: the group was read with its reply rows
        return view_of(row.loaded, now=utcnow(), activities=activity_views(group, row.loaded.activities))

    return in_transaction(read, write=False)


def update_group(  # noqa: PLR0913 - keyword-only; the request's fields plus the liveness probe
    *, caller: Caller, organization_id: int, group_id: int, command: UpdateCommand, etag: str = "",
    should_continue: Callable[[], bool] = lambda: True, time_left: Callable[[], float | None] = lambda: None,
) -> GroupView:  # fmt: skip
    _require(caller, WRITE_SCOPES, "update issues")

    def run() -> Callable[[], GroupView]:
        _check_still_wanted(should_continue)  # a call that expired in the queue does no work
        cap_lock_wait(time_left())
        row = selection.organization(caller=caller, organization_id=organization_id, user_id=caller.user_id,
                                     group_id=group_id, group="lock")  # fmt: skip
        org = row.org
        assert org is not None  # selection.organization refused a missing one
        access = permissions.authorize(caller=caller, row=row, needs=WRITE_SCOPES, what="update issues")
        group = selection.found_group(row, group_id=group_id)
        permissions.check_group(access=access, group=group, group_id=group_id)
        if etag and etag != etag_of(group):
            raise Conflict("The issue changed since it was read (etag mismatch)", reason="ETAG_MISMATCH")
        ctx = _context(access=access, command=command, org=org, groups=[group], row=row)
        _apply(ctx)
        _check_still_wanted(should_continue)
        # The reply re-reads the row with what the transaction wrote; the read travels with COMMIT.
        return group_view_with_commit(group, user_id=caller.user_id, now=ctx.now)

    return in_transaction(run)()


def bulk_update(  # noqa: PLR0913 - keyword-only; the request's fields plus the call's liveness and deadline
    *, caller: Caller, selection_spec: Selection, command: UpdateCommand,
    validate_only: bool = False, should_continue: Callable[[], bool] = lambda: True,
    time_left: Callable[[], float | None] = lambda: None,
) -> BulkResult:  # fmt: skip
    """One page (at most 1000 groups) in one transaction; validate_only rolls everything back.
    time_left: seconds until the caller's deadline (None: none), which caps row-lock waits."""
    _require(caller, WRITE_SCOPES, "update issues")

    def run() -> BulkResult:
        _check_still_wanted(should_continue)  # a call that expired in the queue does no work
        cap_lock_wait(time_left())
        row = selection.organization(caller=caller, organization_id=selection_spec.organization_id,
                                     user_id=caller.user_id)  # fmt: skip
        org = row.org
        assert org is not None  # selection.organization refused a missing one
        access = permissions.authorize(caller=caller, row=row, needs=WRITE_SCOPES, what="update issues")
        spec = permissions.scope_selection(access=access, spec=selection_spec)
        picked = selection.bulk(org=org, selection=spec, actor_id=caller.user_id, now=utcnow())
        ctx = _context(access=access, command=command, org=org, groups=picked.groups, row=row)
        if picked.groups:  # every explicit id may be pending deletion or merge: nothing to apply
            _apply(ctx)
        result = _bulk_result(ctx, picked=picked, validate_only=validate_only)
        _check_still_wanted(should_continue)
        if validate_only:
            raise _Rollback(result)
        return result

    try:
        return in_transaction(run)
    except _Rollback as rollback:
        return rollback.result


def bulk_update_chunks(  # noqa: PLR0913 - as bulk_update
    *,
    caller: Caller,
    selection_spec: Selection,
    command: UpdateCommand,
    validate_only: bool = False,
    should_continue: Callable[[], bool] = lambda: True,
    time_left: Callable[[], float | None] = lambda: None,
) -> Iterator[BulkResult]:
    """The whole selection, page after page, each page committed before it is yielded.

    A consumer that stops iterating stops before the next page starts; what was yielded is
    committed (or, with validate_only, rolled back like every page).
    """
    spec = selection_spec
    first = True
    while True:
        try:
            result = bulk_update(
                caller=caller, selection_spec=spec, command=command, validate_only=validate_only,
                should_continue=should_continue, time_left=time_left,
            )  # fmt: skip
        except NotFound as exc:
            if first or exc.reason != "NO_GROUPS_FOUND":
                raise
            return  # the rest of the selection stopped matching since the last page
        except Cancelled as exc:
            if first:
                raise
            # "Nothing was changed" is false once a chunk committed: say which part stands.
            raise Cancelled(
                "The call was cancelled or its deadline expired; the chunks reported as committed "
                "stay committed, the one in progress was rolled back",
                reason=exc.reason,
            ) from exc
        yield result
        if not result.next_page_token:
            return
        spec, first = replace(spec, page_token=result.next_page_token), False


def _check_still_wanted(should_continue: Callable[[], bool]) -> None:
    """Last look before commit: a cancelled or expired call rolls back instead of committing."""
    if not should_continue():
        raise Cancelled("The call was cancelled or its deadline expired; nothing was changed",
                        reason="CALL_CANCELLED")  # fmt: skip


def _context(
    *, access: permissions.Access, command: UpdateCommand, org: Organization, groups: list[Group], row: AccessRow
) -> UpdateContext:
    # The acting user was loaded (and checked active) with the access row; no second lookup.
    # A single group's project came with its lock; a bulk selection reads its projects once.
    if row.project is not None and len(groups) == 1 and groups[0].project_id == row.project.id:
        projects = {row.project.id: row.project}
    else:
        projects = selection.projects_of(groups)
    return UpdateContext(
        caller=access.caller,
        command=command,
        organization=org,
        groups=groups,
        projects=projects,
        now=utcnow(),
        actor=access.user,
        self_assign_option=row.self_assign_option,
    )


def _apply(ctx: UpdateContext) -> None:
    """Validate everything, then write in Sentry's order; nothing is written before validation."""
    cmd = ctx.command
    validated = validation.validate(ctx)
    if cmd.discard:
        discard.discard(ctx)
        _finish(ctx)  # the outbox carries issue.deleted
        return
    plan = resolution.plan(ctx, validated=validated) if cmd.status in RESOLVE_STATUSES else None
    subscriptions.check_actor(ctx)
    merge.check(ctx)
    if cmd.priority is not None:
        priority.set_priority(ctx, priority=cmd.priority)
    if plan is not None:
        resolution.resolve(ctx, resolution=plan)
    elif cmd.status is not None:
        status.change_status(ctx, status=cmd.status)
    _apply_user_fields(ctx, validated=validated)
    if cmd.merge:
        merge.merge(ctx)
    if cmd.inbox is not None and ctx.delta.inbox is None:
        inbox.set_inbox(ctx, inbox=cmd.inbox)
    _finish(ctx)


def _apply_user_fields(ctx: UpdateContext, *, validated: validation.Validated) -> None:
    cmd = ctx.command
    if ctx.self_assign and ctx.actor is not None:
        assignment.apply(ctx, assignee=assignee.user_actor(ctx.actor))
    elif validated.assignee_set:
        assignment.apply(ctx, assignee=validated.assignee)
    if cmd.has_seen is not None:
        seen.set_seen(ctx, has_seen=cmd.has_seen)
    if cmd.is_bookmarked is not None:
        bookmarks.set_bookmarked(ctx, is_bookmarked=cmd.is_bookmarked)
    if cmd.is_subscribed is not None:
        subscriptions.set_subscribed(ctx, is_subscribed=cmd.is_subscribed)
    if cmd.is_public is not None:
        sharing.set_public(ctx, is_public=cmd.is_public)


def _finish(ctx: UpdateContext) -> None:
    """Bump versions of changed groups and write the notification outbox, in this transaction."""
    changed = sorted(ctx.changed_ids - ctx.versioned_ids)
    if changed:
        update_in(Group, changed, values={}, bump_version=True)
    insert_rows(OutboxEvent, [{**event, "created_at": ctx.now} for event in ctx.outbox])
    if ctx.outbox:
        outbox_signal.mark()  # announced once the transaction has committed (unit_of_work)


def _bulk_result(ctx: UpdateContext, *, picked: selection.Selected, validate_only: bool) -> BulkResult:
    outcomes = [
        GroupOutcome(group_id=gid, outcome="changed" if gid in ctx.changed_ids else "unchanged")
        for gid in ctx.group_ids
    ]
    outcomes = sorted(outcomes + picked.skipped, key=lambda o: o.group_id)
    if ctx.delta.status is None and ctx.command.status is not None and picked.groups:
        ctx.delta.status = ctx.command.status
    if ctx.command.substatus is not None and picked.groups:
        ctx.delta.substatus = ctx.command.substatus
    return BulkResult(
        applied=ctx.delta,
        matched_group_ids=[o.group_id for o in outcomes],
        matched_count=picked.matched_count,
        outcomes=outcomes,
        truncated=picked.truncated,
        next_page_token=picked.next_page_token,
        validate_only=validate_only,
    )
