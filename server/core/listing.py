"""ListGroups: a page of issues found with the bulk update's search (same parser, compiler and
keyset tokens), each serialized as GetGroup serializes it; a fixed number of statements."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from server.core import page_reads, permissions, selection
from server.core.commands import READ_SCOPES, Caller, Selection
from server.core.errors import InvalidArgument, PermissionDenied
from server.core.serialize import ACTIVITIES_COUNT, GroupView, activity_views, view_of
from server.core.unit_of_work import in_transaction
from server.storage.models import utcnow

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class ListRequest:
    selection: Selection  # group_ids unused: a listing is always a search
    page_size: int = 0  # 0: DEFAULT_PAGE_SIZE
    include_activities: bool = False


@dataclass
class ListResult:
    groups: list[GroupView]
    next_page_token: str
    total_size: int


def page_size(requested: int) -> int:
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise InvalidArgument.field(
            "page_size", f"Must be between 1 and {MAX_PAGE_SIZE} (0 means {DEFAULT_PAGE_SIZE})."
        )
    return requested


def list_groups(*, caller: Caller, request: ListRequest) -> ListResult:
    """Read-only, in one transaction; the same access rules as GetGroup."""
    if not (caller.scopes & READ_SCOPES):
        raise PermissionDenied("Token lacks a scope to read issues (needs event:read)", reason="MISSING_SCOPE")
    size = page_size(request.page_size)

    def read() -> ListResult:
        spec = request.selection
        row = selection.organization(caller=caller, organization_id=spec.organization_id, user_id=caller.user_id)
        org = row.org
        assert org is not None  # selection.organization refused a missing one
        access = permissions.authorize(caller=caller, row=row, needs=READ_SCOPES, what="read issues")
        spec = permissions.scope_selection(access=access, spec=spec)
        scope = selection.scope_of(org=org, selection=spec, actor_id=caller.user_id)
        now = utcnow()
        page = selection.search(spec, scope=scope, now=now, size=size)
        views = _views(page.ids, user_id=caller.user_id, now=now, include_activities=request.include_activities)
        return ListResult(views, page.next_page_token, page.matched_count)

    return in_transaction(read, write=False)


def _views(ids: list[int], *, user_id: int | None, now: dt.datetime, include_activities: bool) -> list[GroupView]:
    """The page's reply rows in one statement, its commits and activities in one more each."""
    loaded = page_reads.load_groups(ids, user_id=user_id)
    commit_ids = [x.resolving_commit_id for x in loaded.values() if x.resolving_commit_id is not None]
    commits = page_reads.load_commits(commit_ids)
    activities = page_reads.load_activities(ids, limit=2 * ACTIVITIES_COUNT) if include_activities else {}
    return [
        view_of(
            loaded[i],
            now=now,
            activities=activity_views(loaded[i].group, activities[i]) if include_activities else [],
            commits=commits,
        )
        for i in ids
        if i in loaded  # a row purged between the two statements is left out
    ]
