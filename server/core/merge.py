"""Merge (§3.12). Not implemented yet: refused loudly, never silently ignored."""

from __future__ import annotations

from server.core.context import UpdateContext
from server.core.errors import Unimplemented


def check(ctx: UpdateContext) -> None:
    """Merge preconditions, checked before anything is written."""
    if ctx.command.merge and ctx.is_bulk:
        raise Unimplemented("merge is not implemented yet", reason="FIELD_UNIMPLEMENTED", field="merge")


def merge(ctx: UpdateContext) -> None:
    check(ctx)
