"""Parse Sentry's search syntax (`is:unresolved !assigned:me "two words"`) into a SearchFilter."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from server.core.enums import PriorityLevel
from server.core.search.bounds import (
    INVALID_QUERY,
    MAX_INT,
    MAX_LIST,
    MAX_TERMS,
    QueryError,
    ascii_int,
    check_date,
    check_text,
    check_values,
)
from server.core.search.filters import (
    Category,
    Compare,
    Not,
    OneOf,
    Related,
    SearchFilter,
    Term,
    Text,
)

DEFAULT_QUERY = "is:unresolved"
__all__ = ["INVALID_QUERY", "MAX_INT", "MAX_LIST", "MAX_TERMS", "QueryError", "parse"]

_KEY = re.compile(r"(!?)([A-Za-z_][A-Za-z0-9_.]*):")
_RELATIVE = re.compile(r"^([+-])([0-9]+)([smhdw])$")  # ASCII digits only
_COMPARISON = re.compile(r"^(>=|<=|>|<|=)?(.+)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Sentry's issue search has no boolean grammar: these are errors, never free text.
_BOOLEAN_OPERATORS = frozenset({"OR", "AND"})
_BOOLEAN_MESSAGE = 'Boolean statements containing "OR" or "AND" are not supported in this search'
_PARENTHESES = "()"

IS_VALUES: dict[str, Term] = {
    "unresolved": OneOf("status", (0,)),
    "resolved": OneOf("status", (1,)),
    "ignored": OneOf("status", (2,)),
    "archived": OneOf("status", (2,)),
    "muted": OneOf("status", (2,)),
    "assigned": Related("assignee"),
    "unassigned": Not(Related("assignee")),
    "for_review": Related("inbox"),
    "linked": Related("link"),
    "unlinked": Not(Related("link")),
    "bookmarked": Related("bookmark", ("me",)),
    "escalating": OneOf("substatus", (2,)),
    "ongoing": OneOf("substatus", (3,)),
    "regressed": OneOf("substatus", (6,)),
    "new": OneOf("substatus", (7,)),
    "archived_until_escalating": OneOf("substatus", (1,)),
    "archived_until_condition_met": OneOf("substatus", (4,)),
    "archived_forever": OneOf("substatus", (5,)),
}
PRIORITIES = {"high": PriorityLevel.HIGH, "medium": PriorityLevel.MEDIUM, "low": PriorityLevel.LOW}
LEVELS = {"sample": 0, "debug": 10, "info": 20, "warning": 30, "error": 40, "fatal": 50}
CATEGORIES = frozenset({"error", "performance", "cron", "replay", "feedback", "uptime"})


@dataclass(frozen=True)
class Token:
    key: str  # "" for free text
    values: tuple[str, ...]
    negated: bool
    position: int  # of the key (or of the free text), 0-based
    value_position: int


def parse(query: str, *, now: dt.datetime) -> SearchFilter:
    """Parse a whole query; raise QueryError naming the first bad token."""
    if "\x00" in query:
        raise QueryError(f"invalid character NUL at position {query.index(chr(0))}")
    tokens = _tokens(query)
    if len(tokens) > MAX_TERMS:
        raise QueryError(f"too many terms at position {tokens[MAX_TERMS].position} (at most {MAX_TERMS})")
    terms: list[Term] = []
    words: list[str] = []
    for token in tokens:
        if not token.key:
            words.append(token.values[0])
            continue
        check_values(token.values, where=f' for key "{token.key}" at position {token.value_position}')
        term = _term(token, now)
        terms.append(Not(term) if token.negated else term)
    if words:
        # Sentry joins all free text into one message search, so "a b" finds "a b" in order.
        terms.append(Text(check_text(" ".join(words))))
    return SearchFilter(tuple(terms))


def _tokens(query: str) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(query):
        if query[i].isspace():
            i += 1
            continue
        match = _KEY.match(query, i)
        if match is None:
            text, i_next = _read_value(query, i)
            if query[i] != '"' and text.upper() in _BOOLEAN_OPERATORS:
                raise QueryError(f'{_BOOLEAN_MESSAGE}: "{text}" at position {i}')
            out.append(Token("", (text,), False, i, i))
        else:
            start = match.end()
            if start >= len(query) or query[start].isspace():
                raise QueryError(f'missing value for key "{match.group(2)}" at position {start}')
            values, i_next = _read_values(query, start)
            out.append(Token(match.group(2), values, bool(match.group(1)), match.start(2), start))
        i = i_next
    return out


def _read_values(query: str, i: int) -> tuple[tuple[str, ...], int]:
    if query[i] != "[":
        value, end = _read_value(query, i)
        return (value,), end
    close = query.find("]", i)
    if close < 0:
        raise QueryError(f"unterminated list at position {i}")
    _refuse_parentheses(query, start=i + 1, end=close)
    items = tuple(item.strip().strip('"') for item in query[i + 1 : close].split(","))
    if not all(items):
        raise QueryError(f"empty list item at position {i}")
    if len(items) > MAX_LIST:
        raise QueryError(f"too many list items at position {i} (at most {MAX_LIST})")
    return items, close + 1


def _read_value(query: str, i: int) -> tuple[str, int]:
    if query[i] != '"':
        end = i
        while end < len(query) and not query[end].isspace():
            end += 1
        _refuse_parentheses(query, start=i, end=end)
        return query[i:end], end
    chars: list[str] = []
    j = i + 1
    while j < len(query):
        if query[j] == "\\" and j + 1 < len(query):
            chars.append(query[j + 1])
            j += 2
        elif query[j] == '"':
            return "".join(chars), j + 1
        else:
            chars.append(query[j])
            j += 1
    raise QueryError(f"unterminated quote at position {i}")


def _refuse_parentheses(query: str, *, start: int, end: int) -> None:
    """Parentheses group boolean terms in Sentry's grammar, which issue search refuses."""
    for j in range(start, end):
        if query[j] in _PARENTHESES:
            raise QueryError(f'parentheses are not supported in this search: "{query[j]}" at position {j}')


def _invalid(token: Token, value: str) -> QueryError:
    return QueryError(f'invalid value "{value}" for key "{token.key}" at position {token.value_position}')


def _choices(token: Token, table: dict[str, int]) -> tuple[int, ...]:
    unknown = [v for v in token.values if v.lower() not in table]
    if unknown:
        raise _invalid(token, unknown[0])
    return tuple(sorted({table[v.lower()] for v in token.values}))


def _is(token: Token, now: dt.datetime) -> Term:
    if len(token.values) != 1 or token.values[0].lower() not in IS_VALUES:
        raise _invalid(token, ",".join(token.values))
    return IS_VALUES[token.values[0].lower()]


def _priority(token: Token, now: dt.datetime) -> Term:
    return OneOf("priority", _choices(token, {k: int(v) for k, v in PRIORITIES.items()}))


def _level(token: Token, now: dt.datetime) -> Term:
    return OneOf("level", _choices(token, LEVELS))


def _category(token: Token, now: dt.datetime) -> Term:
    unknown = [v for v in token.values if v.lower() not in CATEGORIES]
    if unknown:
        raise _invalid(token, unknown[0])
    return Category(tuple(sorted({v.lower() for v in token.values})))


def _related(relation: str) -> Callable[[Token, dt.datetime], Term]:
    return lambda token, now: Related(relation, token.values)


def _times_seen(token: Token, now: dt.datetime) -> Term:
    value = _single(token)
    match = _COMPARISON.match(value)
    number = ascii_int(match.group(2)) if match is not None else None
    if match is None or number is None:
        raise _invalid(token, value)
    return Compare("times_seen", match.group(1) or "=", number)


def _date(column: str) -> Callable[[Token, dt.datetime], Term]:
    return lambda token, now: _date_term(token, column, now)


def _date_term(token: Token, column: str, now: dt.datetime) -> Term:
    value = _single(token)
    relative = _RELATIVE.match(value)
    if relative is not None:
        sign, amount, unit = relative.groups()
        number = ascii_int(amount)
        try:
            if number is None:
                raise QueryError("amount out of range")
            cutoff = check_date(now - dt.timedelta(**{_UNITS[unit]: number}))
        except (OverflowError, QueryError):
            raise _invalid(token, value) from None
        # "-24h": within the last 24 hours; "+1w": longer ago than a week.
        return Compare(column, ">=" if sign == "-" else "<=", cutoff)
    match = _COMPARISON.match(value)
    if match is None:  # an empty value: `firstSeen:""`
        raise _invalid(token, value)
    op, text = match.group(1), match.group(2)
    moment = _datetime(token, text)
    if op is None and "T" not in text and " " not in text:
        return Compare(column, "day", moment)
    return Compare(column, op or "=", moment)


def _datetime(token: Token, text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        check_date(moment)
    except (ValueError, OverflowError, QueryError):
        raise _invalid(token, text) from None
    return moment


def _single(token: Token) -> str:
    if len(token.values) != 1:
        raise _invalid(token, ",".join(token.values))
    return token.values[0]


KEYS: dict[str, Callable[[Token, dt.datetime], Term]] = {
    "is": _is,
    "assigned": _related("assignee"),
    "bookmarks": _related("bookmark"),
    "priority": _priority,
    "issue.priority": _priority,
    "release": _related("release"),
    "environment": _related("environment"),
    "firstSeen": _date("first_seen"),
    "first_seen": _date("first_seen"),
    "age": _date("first_seen"),
    "lastSeen": _date("last_seen"),
    "last_seen": _date("last_seen"),
    "timesSeen": _times_seen,
    "times_seen": _times_seen,
    "level": _level,
    "issue.category": _category,
}


def _term(token: Token, now: dt.datetime) -> Term:
    handler = KEYS.get(token.key)
    if handler is None:
        raise QueryError(f'unknown key "{token.key}" at position {token.position}')
    return handler(token, now)
