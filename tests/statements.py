"""Record the SQL statements the database runs (peewee's query_hooks), for statement-count guards."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from server.storage.models import db


@contextmanager
def recorded() -> Iterator[list[str]]:
    """Every statement this thread runs inside the block, in order. Other threads (a session
    server's event feed or health probe) run statements at any time; they are not the call's."""
    seen: list[str] = []
    me = threading.get_ident()

    def hook(event: Any) -> None:
        if threading.get_ident() == me:
            seen.append(event.sql)

    db.obj.query_hooks.append(hook)
    try:
        yield seen
    finally:
        db.obj.query_hooks.remove(hook)
