"""Per-statement telemetry from peewee's query hooks: counts per RPC, and a span per statement.

Query hooks run inside `Database.execute_sql`, the one path every statement takes: model
queries and the fixed-text SQL of the hot paths alike. A span names the statement's kind and
table only; neither the SQL text nor a parameter value is ever recorded.
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from server.storage.db import is_postgres
from server.storage.models import db

COUNT_QUERIES_ENV = "ISSUES_COUNT_QUERIES"
_sql = threading.local()
_counting = threading.Event()  # set once counting is on; read by every access log line

_KIND = re.compile(r"\s*(\w+)")
_NAME = r'"?([A-Za-z_][\w.]*+)"?(?!\s*\()'  # an identifier, not a function call such as json_each(?)
_TABLE = {
    "INSERT": re.compile(r"\bINSERT\s+(?:OR\s+\w+\s+)?INTO\s+" + _NAME, re.I),
    "UPDATE": re.compile(r"\bUPDATE\s+" + _NAME, re.I),
    "DELETE": re.compile(r"\bDELETE\s+FROM\s+" + _NAME, re.I),
    "SELECT": re.compile(r"\bFROM\s+" + _NAME, re.I),
}


def query_counting_requested() -> bool:
    return os.environ.get(COUNT_QUERIES_ENV, "") not in ("", "0")


def _count_query(event: Any) -> None:
    _sql.count = getattr(_sql, "count", 0) + 1
    _sql.seconds = getattr(_sql, "seconds", 0.0) + event.duration


def enable_query_counting() -> None:
    """Count the statements each RPC runs; the access log line then carries them."""
    hooks = db.obj.query_hooks
    if _count_query not in hooks:
        hooks.append(_count_query)
    _counting.set()


def reset_counts() -> None:
    _sql.count, _sql.seconds = 0, 0.0


def counts() -> tuple[int, float] | None:
    """(statements, seconds) of this thread's call so far, or None when counting is off."""
    if not _counting.is_set():
        return None
    return getattr(_sql, "count", 0), getattr(_sql, "seconds", 0.0)


def describe(sql: str) -> tuple[str, str | None]:
    """The statement's kind (SELECT, INSERT, ...) and main table, read from its text."""
    match = _KIND.match(sql)
    kind = match.group(1).upper() if match else "SQL"
    if kind == "WITH":  # a CTE: the statement is the (first) data-changing one, else a SELECT
        writes = [(m.start(), k) for k in ("INSERT", "UPDATE", "DELETE") if (m := _TABLE[k].search(sql))]
        kind = min(writes)[1] if writes else "SELECT"
    pattern = _TABLE.get(kind)
    found = pattern.search(sql) if pattern else None
    return kind, found.group(1) if found else None


class _StatementSpans:
    """A query hook: a finished span per statement, under the span current in this thread (none
    without one)."""

    def __init__(self, provider: Any, system: str) -> None:
        self.tracer = trace.get_tracer("issue_service.sql", tracer_provider=provider)
        self.system = system

    def __call__(self, event: Any) -> None:
        if not trace.get_current_span().get_span_context().is_valid:
            return  # outside any traced call (health probes, start-up): a trace of one statement is noise
        end = time.time_ns()
        kind, table = describe(event.sql)
        attributes = {"db.system.name": self.system, "db.operation.name": kind}
        if table:
            attributes["db.collection.name"] = table
        name = f"{kind} {table}" if table else kind
        start = end - int(event.duration * 1e9)
        span = self.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes, start_time=start)
        if event.exception is not None:  # the type only: driver messages can quote values
            span.set_attribute("error.type", type(event.exception).__name__)
            span.set_status(Status(StatusCode.ERROR))
        span.end(end_time=end)


def enable_statement_spans(provider: Any) -> None:
    """From now on every statement of the bound database is a span of `provider`'s tracer."""
    hooks = db.obj.query_hooks
    hooks[:] = [h for h in hooks if not isinstance(h, _StatementSpans)]
    hooks.append(_StatementSpans(provider, "postgresql" if is_postgres() else "sqlite"))
