"""Fixed SQL texts written once with named parameters (`:name`) and rendered per driver.

sqlite3 takes `:name` as is; psycopg wants `%(name)s` (and a literal `%` doubled). Texts are
rendered once per backend and cached by their callers, so a hot call pays no SQL building.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from peewee import Model

PARAMS = ("org", "uid", "gid", "limit")
_PARAM = re.compile(r"(?<![:\w]):(" + "|".join(PARAMS) + r")\b")


def render(text: str, *, postgres: bool) -> str:
    """`:name` placeholders as the driver wants them."""
    if not postgres:
        return text
    return _PARAM.sub(r"%(\1)s", text.replace("%", "%%"))


def columns(alias: str, model: type[Model]) -> str:
    return ", ".join(f'{alias}."{f.column_name}"' for f in model._meta.sorted_fields)


def table(model: type[Model]) -> str:
    return f'"{model._meta.table_name}"'


def hydrate(model: type[Model], cells: Sequence[Any]) -> Any:
    """A model instance from its columns in sorted_fields order; None for an unmatched join."""
    if cells[0] is None:  # every model's first column is its primary key
        return None
    obj = model(__no_default__=1)
    obj.__data__ = {
        f.name: (f.python_value(v) if v is not None else None)
        for f, v in zip(model._meta.sorted_fields, cells, strict=True)
    }
    return obj


def bare(model: type[Model], data: dict[str, Any]) -> Any:
    """A read-only instance holding `data` (field name -> python value), without Model.__init__
    (defaults, dirty tracking): ~10x cheaper, for rows hydrated by the hundred."""
    obj: Any = model.__new__(model)
    obj.__data__, obj.__rel__, obj._dirty = data, {}, set()
    return obj


def split(row: Sequence[Any], models: Sequence[type[Model]], *, start: int = 0) -> tuple[list[Any], int]:
    """Consecutive models' columns from `row` at `start`; the instances and where they ended."""
    found = []
    for model in models:
        width = len(model._meta.sorted_fields)
        found.append(hydrate(model, row[start : start + width]))
        start += width
    return found, start
