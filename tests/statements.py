"""Record the SQL statements the database runs (peewee's query_hooks), for statement-count guards."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from server.storage.models import db


@contextmanager
def recorded() -> Iterator[list[str]]:
    """Every statement this thread runs inside the block, in order. Other threads (a session
    server's event feed or health probe) run statements at any time; they are not the call's."""
    seen: list[str] = []
    with _hooked(lambda event: seen.append(event.sql)):
        yield seen


@contextmanager
def captured() -> Iterator[list[tuple[str, Any]]]:
    """As recorded(), with each statement's parameters: (sql, params)."""
    seen: list[tuple[str, Any]] = []
    with _hooked(lambda event: seen.append((event.sql, event.params))):
        yield seen


@contextmanager
def round_trips() -> Iterator[list[list[str]]]:
    """The first word of each statement, per network round trip, that this thread sends inside
    the block (PostgreSQL; SQLite has no round trips, and its BEGIN and COMMIT bypass these)."""
    trips: list[list[str]] = []
    database: Any = db.obj
    pipeline, run = database._pipeline, database._run
    me = threading.get_ident()

    def pipelined(statements: list[tuple[str, Any]]) -> Any:
        if threading.get_ident() == me:
            trips.append([sql.split()[0] for sql, _ in statements])
        return pipeline(statements)

    def alone(sql: str, params: Any) -> Any:
        if threading.get_ident() == me:
            trips.append([sql.split()[0]])
        return run(sql, params)

    database._pipeline, database._run = pipelined, alone  # this instance only
    try:
        yield trips
    finally:
        del database._pipeline, database._run


@contextmanager
def _hooked(record: Callable[[Any], None]) -> Iterator[None]:
    me = threading.get_ident()

    def hook(event: Any) -> None:
        if threading.get_ident() == me:
            record(event)

    db.obj.query_hooks.append(hook)
    try:
        yield
    finally:
        db.obj.query_hooks.remove(hook)
