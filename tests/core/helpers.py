"""Calling the core directly, as the servicer does."""

from __future__ import annotations

from typing import Any

from server.core import update
from server.core.commands import Caller, Selection, UpdateCommand
from server.core.context import BulkResult
from server.core.serialize import GroupView

WRITER = frozenset({"event:read", "event:write"})


def caller(user_id: int | None = None, scopes: frozenset[str] = WRITER) -> Caller:
    return Caller("test", scopes, user_id)


def bulk(org_id: int, ids: list[int], *, user_id: int | None = None, validate_only: bool = False,
         **patch: Any) -> BulkResult:  # fmt: skip
    return update.bulk_update(
        caller=caller(user_id),
        selection_spec=Selection(organization_id=org_id, group_ids=tuple(ids)),
        command=UpdateCommand(**patch),
        validate_only=validate_only,
    )


def single(org_id: int, group_id: int, *, user_id: int | None = None, **patch: Any) -> GroupView:
    return update.update_group(
        caller=caller(user_id), organization_id=org_id, group_id=group_id, command=UpdateCommand(**patch)
    )
