"""A parsed search query: frozen terms that are ANDed together; no database access here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

# Group columns a comparison may name, and the operators it may use.
COMPARABLE = frozenset({"first_seen", "last_seen", "times_seen"})
OPERATORS = frozenset({"=", ">", ">=", "<", "<="})


@dataclass(frozen=True)
class Compare:
    """A Group column compared with a value, e.g. times_seen > 10."""

    column: str
    op: str  # one of OPERATORS, or "day" (the whole UTC day starting at value)
    value: int | dt.datetime


@dataclass(frozen=True)
class OneOf:
    """A Group column equal to any of the values; null priority compares as 0 (none)."""

    column: str  # status, substatus, priority, level
    values: tuple[int, ...]


@dataclass(frozen=True)
class Category:
    """Issue category by name (error, performance, cron, ...), matched on Group.type."""

    names: tuple[str, ...]


@dataclass(frozen=True)
class Related:
    """A related row exists: assignee, bookmark, release, inbox, link or environment.

    values are what the relation is matched against (usernames, versions, ...); empty means
    "any row".
    """

    relation: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Text:
    """Case-insensitive substring of the title, culprit or message."""

    text: str


@dataclass(frozen=True)
class Not:
    term: Term


Term = Compare | OneOf | Category | Related | Text | Not


@dataclass(frozen=True)
class SearchFilter:
    terms: tuple[Term, ...] = ()
