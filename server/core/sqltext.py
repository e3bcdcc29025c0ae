"""Fixed SQL texts written once with named parameters (`:name`) and rendered per driver.

sqlite3 takes `:name` as is; psycopg wants `%(name)s` (and a literal `%` doubled). Texts are
rendered once per backend and cached by their callers, so a hot call pays no SQL building.

Their rows come back as records (`record_type`): plain objects with the model's column names,
which the core reads where it read model instances. Annotations keep the model's name (a
`Group` parameter takes a Group record); a record has no model behaviour, and what it does not
hold raises instead of reading as None or querying the database.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import make_dataclass
from functools import lru_cache
from typing import Any, ClassVar

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    Field,
    ForeignKeyField,
    IntegerField,
    JSONField,
    Model,
    TextField,
)

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


def fields(part: Part) -> list[Field]:
    """The part's fields, in the order its columns are read."""
    if isinstance(part, tuple):
        model, names = part
        return [_field(model, name) for name in names]
    return list(part._meta.sorted_fields)


def _field(model: type[Model], name: str) -> Field:
    """A field by its name, or a foreign key by its `_id` name (what its record calls it)."""
    found: Field | None = model._meta.fields.get(name)
    if found is None:
        keys = (f for f in model._meta.fields.values() if isinstance(f, ForeignKeyField))
        found = next(f for f in keys if f.object_id_name == name)
    return found


def columns(alias: str, part: Part) -> str:
    return ", ".join(f'{alias}."{f.column_name}"' for f in fields(part))


@lru_cache(maxsize=128)
def width(part: Part) -> int:
    return len(fields(part))


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


def attribute(field: Field) -> str:
    """What a record calls a column: the field's name, and for a foreign key its `_id` name (a
    record holds the related row's id, never the row; the model's `project` would query it)."""
    return str(field.object_id_name) if isinstance(field, ForeignKeyField) else str(field.name)


@lru_cache(maxsize=128)
def _plan(part: Part, *, from_json: bool = False) -> tuple[tuple[Any, type | None], ...]:
    """Per column: python_value, and the type that needs no conversion. from_json: the cells
    came out of a JSON array (reply_sql.Family), where a timestamp is ISO text and a JSON
    column's value is already parsed."""
    plan = []
    for f in fields(part):
        native = next((t for kind, t in _NATIVE if isinstance(f, kind)), None)
        if isinstance(f, ForeignKeyField) and not isinstance(f.rel_field, IntegerField):
            native = None
        convert = f.python_value
        if from_json and isinstance(f, DateTimeField):
            convert = functools.partial(_iso_datetime, fallback=f.python_value)
        elif from_json and isinstance(f, JSONField):
            convert = _as_is
        plan.append((convert, native))
    return tuple(plan)


def _iso_datetime(text: Any, *, fallback: Callable[[Any], Any]) -> Any:
    """A timestamp from a JSON array: PostgreSQL writes `YYYY-MM-DDTHH:MM:SS[.ffffff]`, which
    peewee's formats do not read (it would hand back the text); SQLite its stored text."""
    try:
        return dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return fallback(text)


def _as_is(value: Any) -> Any:
    return value


def hydrate(part: Part, cells: Sequence[Any]) -> Any:
    """A record (`record_type`) from its columns (columns(part)'s order); None for an unmatched
    join, or for a part that reads no column. Each cell converted by its field's python_value, as
    peewee's own row wrappers do."""
    return _hydrator(part)(cells)


@lru_cache(maxsize=128)
def _hydrator(part: Part, *, from_json: bool = False) -> Callable[[Sequence[Any]], Any]:
    """`hydrate` for one part: a function written for its columns, as dataclasses and named
    tuples write their __init__. Straight-line code: a loop over the columns with the checks
    looked up per cell cost three times as much for a Group's 24 (a GetGroup hydrates 17 parts)."""
    cls = record_type(part)
    names = [attribute(f) for f in fields(part)]
    if not names:
        return lambda cells: None
    scope: dict[str, Any] = {"new": object.__new__, "cls": cls}
    cells = [f"c{i}" for i in range(len(names))]
    body = [f"    {', '.join(cells)}, = row", "    if c0 is None:", "        return None", "    r = new(cls)"]
    for i, (name, (convert, native)) in enumerate(zip(names, _plan(part, from_json=from_json), strict=True)):
        scope[f"convert{i}"], scope[f"native{i}"] = convert, native
        cell = f"c{i}" if i == 0 else f"c{i} if c{i} is None or type(c{i}) is native{i} else convert{i}(c{i})"
        body.append(f"    r.{name} = {cell}")
    body.append("    return r")
    exec("def build(row):\n" + "\n".join(body), scope)  # the text holds field names only
    build: Callable[[Sequence[Any]], Any] = scope["build"]
    return build


class UnreadColumn(AttributeError, LookupError):
    """A column a record does not hold: not read by its statement, or not a column at all."""


class _Record:
    """Behaviour shared by every record type: equal and hashed by model and primary key, as
    peewee's model instances are."""

    __slots__ = ()
    _model: ClassVar[type[Model]]
    id: Any

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Record) and other._model is self._model and other.id == self.id

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((self._model, self.id))

    def __getattr__(self, name: str) -> Any:  # only for a name the record does not hold
        if name.startswith("__"):
            raise AttributeError(name)
        raise UnreadColumn(f"{name} was not read")


@lru_cache(maxsize=128)
def record_type(part: Part) -> Any:
    """A row of `part`'s columns: a slotted class whose attributes are the columns (`attribute`),
    read and written in C. A peewee instance reads each field through a Python descriptor and
    costs a dict and three attributes to build: a GetGroup builds 17 and reads ~40 fields, which
    took ~15 % of its server time. It is not a model: no save, no related rows; a column it does
    not hold raises UnreadColumn (reading) or AttributeError (writing). The core may update the
    columns it holds, as it did the model's, to keep a row in step with what it wrote."""
    model = model_of(part)
    names = [attribute(f) for f in fields(part)]
    cls: Any = make_dataclass(f"{model.__name__}Record", names, bases=(_Record,), slots=True, eq=False)
    cls._model = model
    return cls


def record(model: type[Model], **values: Any) -> Any:
    """A record of `model` holding these columns, the primary key first (tests build them)."""
    return record_type((model, tuple(values)))(*values.values())


def split(
    row: Sequence[Any], parts: Sequence[Part], *, start: int = 0, from_json: bool = False
) -> tuple[list[Any], int]:
    """Consecutive parts' columns from `row` at `start`; the records and where they ended. A part
    whose primary key is NULL (an unmatched join, most of a reply's) is None without its columns
    being sliced off or its hydrator called; so is a part that reads no column. from_json: the
    cells are a JSON array's (see _plan)."""
    layout, width_of_all = _layout(tuple(parts), from_json=from_json)
    return [
        None if build is None or row[start + at] is None else build(row[start + at : start + end])
        for at, end, build in layout
    ], start + width_of_all


_Slice = tuple[int, int, Callable[[Sequence[Any]], Any] | None]  # a part's columns (from, to) and its hydrator


@lru_cache(maxsize=32)
def _layout(parts: tuple[Part, ...], *, from_json: bool = False) -> tuple[tuple[_Slice, ...], int]:
    """Each part's columns (from, to) relative to the first part's, with its hydrator (None for a
    part that reads no column); the total."""
    layout: list[_Slice] = []
    at = 0
    for part in parts:
        layout.append((at, at + width(part), _hydrator(part, from_json=from_json) if width(part) else None))
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
