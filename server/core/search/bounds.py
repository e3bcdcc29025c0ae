"""What a search may turn into SQL: ASCII integers in a 64-bit column, dates a day away from the
calendar's ends, short free text and values, short lists. The parser refuses anything else with
the query's field violation, and the compiler checks again, so no value reaches the driver that
the database (or Python's datetime) cannot take."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sized

from server.core.errors import FieldViolation, InvalidArgument

# Sentry's reply to any search error (400 detail); the field violation says what was wrong.
INVALID_QUERY = "Invalid query. Error getting group ids and group list"
MAX_TERMS = 100
MAX_LIST = 100
MAX_INT = 2**63 - 1
# SQLite refuses a LIKE pattern over 50,000 bytes ("pattern too complex"); a character is at most
# 4 bytes and an escaped one 8, so 1000 characters keep every pattern far below that.
MAX_TEXT = 1000
MAX_VALUE = 256  # a release version, username, e-mail or environment name in a query
# "firstSeen:9999-12-31" must still have a next day; dates before 1900 match nothing anyway.
MIN_DATE = dt.datetime(1900, 1, 1)
MAX_DATE = dt.datetime(9999, 12, 30, 23, 59, 59, 999999)
_ASCII_INT = re.compile(r"[0-9]{1,19}")


class QueryError(InvalidArgument):
    """A query Sentry's search would reject; the violation names the token and its position."""

    reason = "INVALID_QUERY"

    def __init__(self, description: str) -> None:
        message = f"{INVALID_QUERY} ({description})"
        super().__init__(message, violations=[FieldViolation("query", message)])
        self.metadata = {"detail": INVALID_QUERY, "problem": description}


def ascii_int(text: str) -> int | None:
    """The value of a non-negative integer in ASCII digits that fits 64 bits, else None.

    str.isdigit() is true for "²" and int() reads "٣" as 3: neither is a number a query may hold.
    """
    if _ASCII_INT.fullmatch(text) is None:
        return None
    value = int(text)
    return value if value <= MAX_INT else None


def in_date_range(moment: dt.datetime) -> bool:
    return MIN_DATE <= moment <= MAX_DATE


def check_int(value: int) -> int:
    if not 0 <= value <= MAX_INT:
        raise QueryError(f"number {value} out of range")
    return value


def check_date(moment: dt.datetime) -> dt.datetime:
    if not in_date_range(moment):
        raise QueryError(f"date {moment.isoformat()} out of range ({MIN_DATE:%Y-%m-%d} to {MAX_DATE:%Y-%m-%d})")
    return moment


def check_text(text: str) -> str:
    if "\x00" in text:
        raise QueryError("invalid character NUL")
    if len(text) > MAX_TEXT:
        raise QueryError(f"free text of {len(text)} characters (at most {MAX_TEXT})")
    return text


def check_values(values: tuple[str, ...], *, where: str = "") -> tuple[str, ...]:
    if len(values) > MAX_LIST:
        raise QueryError(f"too many list items{where} (at most {MAX_LIST})")
    for value in values:
        if "\x00" in value or len(value) > MAX_VALUE:
            raise QueryError(f"value of {len(value)} characters{where} (at most {MAX_VALUE}, no NUL)")
    return values


def check_ids(ids: Sized, *, field: str, limit: int) -> None:
    """A list bound into one statement: PostgreSQL takes at most 65,535 parameters."""
    if len(ids) > limit:
        raise InvalidArgument.field(field, f"Ensure this field has no more than {limit} elements.")
