"""Discard (§3.11). Not implemented yet: refused loudly, never silently ignored."""

from __future__ import annotations

from server.core.context import UpdateContext
from server.core.errors import Unimplemented


def discard(ctx: UpdateContext) -> None:
    raise Unimplemented("discard is not implemented yet", reason="FIELD_UNIMPLEMENTED", field="discard")
