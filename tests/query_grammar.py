"""Grammar-aware search queries for fuzzing: real keys with values of the right shape most of the
time, and the values that broke the service before (issue 12): digits of other scripts, dates at
the calendar's ends, huge amounts and tokens, long lists, NUL, free text past SQLite's LIKE limit.
Drawn from a random.Random, so both fuzzers (core and gRPC) can use it."""

from __future__ import annotations

import random
from collections.abc import Sequence

from server.core.search.parser import IS_VALUES, KEYS, LEVELS, PRIORITIES

# Characters str.isdigit() accepts that are not ASCII digits (superscripts, Arabic-Indic,
# fullwidth, Devanagari, NKo) and letters of other scripts.
DIGITS = "0123456789" * 3 + "\u00b2\u00b3\u00b9\u0663\u06f5\uff10\uff11\u0967\u07c0"
LETTERS = "abcxyz_-.%" + "\u00e9\u00df\u0130\u4e2d\u0416\u03a9\U0001f600"
DATES = [
    "2026-01-01", "2026-01-01T10:00:00", "2026-01-01T10:00:00+05:00", "9999-12-31", "9999-12-30",
    "0001-01-01", "1900-01-01", "1899-12-31", "2026-13-01", "2026-02-30", "\u0662\u0660\u0662\u0666-01",
]  # fmt: skip
OPERATORS = ["", ">", ">=", "<", "<=", "=", "=>", "!"]
UNITS = "smhdwy"
EXTREMES = ["0", "9223372036854775807", "9223372036854775808", "9" * 30, "9" * 5000, "-1", "1e9"]


def number(rnd: random.Random) -> str:
    if rnd.random() < 0.3:
        return rnd.choice(EXTREMES)
    return "".join(rnd.choice(DIGITS) for _ in range(rnd.randint(1, 20)))


def word(rnd: random.Random, *, huge: bool = False) -> str:
    if huge:
        return rnd.choice(LETTERS) * rnd.choice([257, 1001, 50_001])
    return "".join(rnd.choice(LETTERS) for _ in range(rnd.randint(1, 12)))


def value(rnd: random.Random, key: str, names: Sequence[str]) -> str:
    roll = rnd.random()
    if roll < 0.05:
        return word(rnd, huge=True)
    if roll < 0.08:
        return rnd.choice(["\x00", "a\x00", '"quoted value"', '"unterminated', "[]", "[,]", "me"])
    if roll < 0.15:  # a list, sometimes longer than the parser allows
        size = rnd.choice([2, 3, 100, 101, 150])
        return "[" + ",".join(value(rnd, key, names) for _ in range(size)) + "]"
    if key in ("timesSeen", "times_seen"):
        return rnd.choice(OPERATORS) + number(rnd)
    if key in ("firstSeen", "first_seen", "lastSeen", "last_seen", "age"):
        if rnd.random() < 0.5:
            return rnd.choice("+-") + number(rnd) + rnd.choice(UNITS)
        return rnd.choice(OPERATORS) + rnd.choice(DATES)
    table = {"is": list(IS_VALUES), "priority": list(PRIORITIES), "level": list(LEVELS)}.get(key)
    if table is not None and rnd.random() < 0.8:
        return rnd.choice(table)
    return rnd.choice([*names, "me", "none", "my_teams", "#team", number(rnd), word(rnd)])


def query(rnd: random.Random, names: Sequence[str] = ()) -> str:
    """One query: mostly key:value terms (negated now and then) and some free text."""
    terms = []
    for _ in range(rnd.choice([0, 1, 1, 2, 3, 5, 101])):
        if rnd.random() < 0.2:
            terms.append(word(rnd, huge=rnd.random() < 0.05))
            continue
        key = rnd.choice([*KEYS, "foo", "is", "timesSeen", "firstSeen", "assigned"])
        terms.append(("!" if rnd.random() < 0.15 else "") + key + ":" + value(rnd, key, names))
    return " ".join(terms)
