"""Fixed SQL texts written once with named parameters (`:name`) and rendered per driver.

sqlite3 takes `:name` as is; psycopg wants `%(name)s` (and a literal `%` doubled). Texts are
rendered once per backend and cached by their callers, so a hot call pays no SQL building.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from peewee import BooleanField, CharField, DateTimeField, Field, ForeignKeyField, IntegerField, Model, TextField

PARAMS = ("org", "uid", "gid", "limit")
_PARAM = re.compile(r"(?<![:\w]):(" + "|".join(PARAMS) + r")\b")


def render(text: str, *, postgres: bool) -> str:
    """`:name` placeholders as the driver wants them."""
    if not postgres:
        return text
    return _PARAM.sub(r"%(\1)s", text.replace("%", "%%"))


# A model's columns in a fixed statement: all of them (sorted_fields order), or only the named
# fields, primary key first (a reply reads what it shows, not every column of every joined row).
Part = type[Model] | tuple[type[Model], tuple[str, ...]]


def model_of(part: Part) -> type[Model]:
    return part[0] if isinstance(part, tuple) else part


def _fields(part: Part) -> list[Field]:
    if isinstance(part, tuple):
        model, names = part
        return [model._meta.fields[name] for name in names]
    return list(part._meta.sorted_fields)


def columns(alias: str, part: Part) -> str:
    return ", ".join(f'{alias}."{f.column_name}"' for f in _fields(part))


@lru_cache(maxsize=128)
def width(part: Part) -> int:
    return len(_fields(part))


def table(model: type[Model]) -> str:
    return f'"{model._meta.table_name}"'


# A cell already of its field's Python type passes through python_value unchanged (int(int),
# str passthrough, a datetime that is no string, bool(bool)): skip the call. The driver types
# most cells (psycopg: all of these), so most cells of a wide row skip it.
_NATIVE: tuple[tuple[type[Field], type], ...] = (
    (IntegerField, int),
    (ForeignKeyField, int),
    (CharField, str),
    (TextField, str),
    (DateTimeField, dt.datetime),
    (BooleanField, bool),
)


@lru_cache(maxsize=128)
def _plan(part: Part) -> tuple[tuple[str, Any, type | None], ...]:
    """Per column: field name, python_value, and the type that needs no conversion."""
    plan = []
    for f in _fields(part):
        native = next((t for kind, t in _NATIVE if isinstance(f, kind)), None)
        if isinstance(f, ForeignKeyField) and not isinstance(f.rel_field, IntegerField):
            native = None
        plan.append((f.name, f.python_value, native))
    return tuple(plan)


def hydrate(part: Part, cells: Sequence[Any]) -> Any:
    """A model instance from its columns (columns(part)'s order); None for an unmatched join, or
    for a part that reads no column. Each cell converted by its field's python_value, as peewee's
    own row wrappers do."""
    return _hydrator(part)(cells)


@lru_cache(maxsize=128)
def _hydrator(part: Part) -> Callable[[Sequence[Any]], Any]:
    """`hydrate` for one part, with what it needs looked up once (a GetGroup hydrates 17 parts)."""
    plan = _plan(part)
    model, partial = model_of(part), isinstance(part, tuple)

    def build(cells: Sequence[Any]) -> Any:
        if not cells or cells[0] is None:  # a part's first column is its primary key
            return None
        data = {
            name: v if v is None or type(v) is native else convert(v)
            for (name, convert, native), v in zip(plan, cells, strict=True)
        }
        return bare(model, Selected(data) if partial else data)

    return build


class UnreadColumn(LookupError):
    """A field of a row read with only some of its columns, and not among them."""


class Selected(dict[str, Any]):
    """The data of a row read with only some of its columns: reading another one is a bug in
    the statement, not a NULL, so it raises (peewee's accessors turn a KeyError into None)."""

    def __missing__(self, name: str) -> Any:
        raise UnreadColumn(f"{name} was not read")

    def get(self, name: str, default: Any = None) -> Any:
        return self[name]


def bare(model: type[Model], data: dict[str, Any]) -> Any:
    """A read-only instance holding `data` (field name -> python value), without Model.__init__
    (defaults, dirty tracking): ~10x cheaper, for rows hydrated by the hundred."""
    obj: Any = model.__new__(model)
    obj.__data__, obj.__rel__, obj._dirty = data, {}, set()
    return obj


def split(row: Sequence[Any], parts: Sequence[Part], *, start: int = 0) -> tuple[list[Any], int]:
    """Consecutive parts' columns from `row` at `start`; the instances and where they ended."""
    layout, width_of_all = _layout(tuple(parts))
    return [build(row[start + at : start + end]) for at, end, build in layout], start + width_of_all


@lru_cache(maxsize=32)
def _layout(parts: tuple[Part, ...]) -> tuple[tuple[tuple[int, int, Callable[[Sequence[Any]], Any]], ...], int]:
    """Each part's columns (from, to) relative to the first part's, with its hydrator; the total."""
    layout, at = [], 0
    for part in parts:
        layout.append((at, at + width(part), _hydrator(part)))
        at += width(part)
    return tuple(layout), at


def ids_in(postgres: bool) -> str:
    """`IN ids` for one id-list parameter (id_list).

    On PostgreSQL the array goes through a sub-select so that no plan sees how many ids it holds.
    With a bare `= ANY($1)`, a custom plan costs the one id of an UpdateGroup below the generic
    plan's guess of ten, so PostgreSQL's plan cache chose a custom plan on every execution and
    planned the write statement (seven data-modifying CTEs) on every call. With the count hidden
    both cost the same and the prepared statement keeps its generic plan: an index scan by id,
    the same plan a custom one would pick for 1 or 1000 ids (tests/storage/test_generic_plans.py).
    """
    return "= ANY(ARRAY(SELECT unnest(%s::bigint[])))" if postgres else "IN (SELECT value FROM json_each(?))"


def id_list(ids: Sequence[int], *, postgres: bool) -> str:
    """One parameter holding every id: an array literal that the statement casts (`::bigint[]`)
    on PostgreSQL, a JSON array on SQLite. Text, not a Python list: psycopg's list dumper
    inspects the list on every call (~8 us for one id, ~470 us for 1000; the text ~0.3 and ~90)."""
    values = [int(i) for i in ids]  # ints only: nothing else can reach the SQL text
    if postgres:
        return "{" + ",".join(map(str, values)) + "}"
    return json.dumps(values)
