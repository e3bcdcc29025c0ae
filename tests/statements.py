"""Record the SQL statements the database runs (peewee's query_hooks), for statement-count guards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from server.storage.models import db


@contextmanager
def recorded() -> Iterator[list[str]]:
    """Every statement run inside the block, in order."""
    seen: list[str] = []

    def hook(event: Any) -> None:
        seen.append(event.sql)

    db.obj.query_hooks.append(hook)
    try:
        yield seen
    finally:
        db.obj.query_hooks.remove(hook)
