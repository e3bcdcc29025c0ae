"""Set-based writes with a short, constant SQL text whatever the number of rows.

Peewee compiles a multi-row INSERT value by value (one AST node per cell) and psycopg re-parses
every distinct long statement; for 1000 groups that was most of a bulk call. Here all rows
travel as one JSON parameter (an array of row arrays, made by json.dumps): PostgreSQL reads it
with jsonb_array_elements and casts each column, SQLite with json_each/json_extract. Id lists
are one parameter too (`= ANY(array)` / json_each). The statements still go through
`db.execute_sql`, so the query hooks (statement counters) see every one of them.

Values are stored exactly as peewee stores them (tests/core/test_bulk_sql.py compares the raw
cells): SQLite datetimes as `isoformat(" ")` text (the sqlite3 adapter), JSON as
`json(dumps(value))`, booleans as 0/1; PostgreSQL timestamps, booleans and jsonb.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from peewee import SQL, Field, Model, NodeList

from server.core.sqltext import id_list, ids_in
from server.storage.db import is_postgres, json_dumps
from server.storage.models import db

EXCLUDED = object()  # in `update`: take the value the conflicting row would have inserted

PG_ARRAY_TYPES = {
    "BIGAUTO": "bigint",
    "AUTO": "integer",
    "BIGINT": "bigint",
    "INT": "integer",
    "SMALLINT": "smallint",
    "BOOL": "boolean",
    "DATETIME": "timestamp",
    "VARCHAR": "text",
    "TEXT": "text",
    "JSON": "jsonb",
}


def fields_of(model: type[Model], names: tuple[str, ...]) -> list[Field]:
    """The fields named (by field or column name), in order."""
    return list(_fields_of(model, names))


@lru_cache(maxsize=256)
def _fields_of(model: type[Model], names: tuple[str, ...]) -> tuple[Field, ...]:
    # Cached: an update's hot writes name the same few fields on every call.
    by_name: dict[str, Field] = model._meta.fields
    by_column = {f.column_name: f for f in by_name.values()}
    return tuple(by_name.get(n) or by_column[n] for n in names)


def _json_text(field: Field, value: Any) -> str | None:
    if value is None:
        return None
    dumps = getattr(field, "_dumps", json.dumps)
    return str(dumps(value))


def _cell(field: Field, value: Any, *, postgres: bool) -> Any:
    """One value as the driver should receive it for this column."""
    if field.field_type == "JSON":
        return _json_text(field, value)
    if value is None:
        return None
    if field.field_type == "DATETIME":
        return value if postgres else value.isoformat(" ")
    if field.field_type == "BOOL":
        return bool(value)
    return field.db_value(value)  # type: ignore[no-untyped-call]


def cell(field: Field, value: Any, *, postgres: bool) -> Any:
    """A value of this column as the driver takes it as a parameter."""
    return _cell(field, value, postgres=True) if postgres else _sqlite_cell(field, value)


def _sqlite_cell(field: Field, value: Any) -> Any:
    cell = _cell(field, value, postgres=False)
    if isinstance(cell, dt.datetime):  # a db_value that returned one (defensive)
        return cell.isoformat(" ")
    return cell


@lru_cache(maxsize=256)
def _insert_sql(  # noqa: PLR0913 - every part of the key picks a different statement text
    table: str,
    columns: tuple[str, ...],
    types: tuple[str, ...],
    postgres: bool,
    conflict_target: tuple[str, ...] | None,
    update_columns: tuple[tuple[str, bool], ...] | None,
) -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    if postgres:
        # One JSON array of rows, cast per column server-side: json.dumps is far cheaper than
        # psycopg dumping (and quoting) one array per column, cell by cell. Read as jsonb: parsed
        # once, where each ->> on a json value parsed its row's text again (~130k of PostgreSQL's
        # instructions per resolve, BENCHMARKS.md ninth session).
        picks = ", ".join(f"(r.v->>{i})::{t}" for i, t in enumerate(types))
        select = f"SELECT {picks} FROM jsonb_array_elements(%s::jsonb) AS r(v)"
    else:
        picks = ", ".join(
            f"json(json_extract(value, '$[{i}]'))" if t == "JSON" else f"json_extract(value, '$[{i}]')"
            for i, t in enumerate(types)
        )
        select = f"SELECT {picks} FROM json_each(?) WHERE 1"  # WHERE: SQLite's upsert parse rule
    sql = f'INSERT INTO "{table}" ({cols}) {select}'
    if conflict_target is None and update_columns is None:
        return sql
    target = "(" + ", ".join(f'"{c}"' for c in conflict_target) + ")" if conflict_target else ""
    if not update_columns:
        return f"{sql} ON CONFLICT {target} DO NOTHING"
    param = "%s" if postgres else "?"
    sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' if excluded else f'"{c}" = {param}' for c, excluded in update_columns)
    return f"{sql} ON CONFLICT {target} DO UPDATE SET {sets}"


def insert_rows(
    model: type[Model],
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict_target: Sequence[str] | None = None,
    update: Mapping[str, Any] | None = None,
    ignore: bool = False,
) -> None:
    """INSERT every row in one statement (rows share their keys: field or column names).

    ignore=True is ON CONFLICT DO NOTHING; update maps field names to a value or EXCLUDED
    (DO UPDATE on conflict_target). No rows, no statement.
    """
    if not rows:
        return
    postgres = is_postgres()
    names = tuple(rows[0])
    upsert = tuple((name, value is EXCLUDED) for name, value in update.items()) if update else None
    target = tuple(conflict_target) if conflict_target and (update or ignore) else None
    plan = _insert_plan(model, names, postgres=postgres, conflict_target=target, upsert=upsert, ignore=ignore)
    # All rows as one JSON array of arrays, the same text on both backends (datetimes as text,
    # JSON columns as JSON); only the SQL reading it differs.
    table = [[None if row[n] is None else conv(row[n]) for n, conv in plan.converters] for row in rows]
    params: list[Any] = [json_dumps(table)]
    for f, value in zip(plan.update_fields, (update or {}).values(), strict=True):
        if value is not EXCLUDED:
            params.append(_cell(f, value, postgres=postgres) if postgres else _sqlite_cell(f, value))
    run_write(plan.sql, params, table=model._meta.table_name)


class _InsertPlan(NamedTuple):
    sql: str
    converters: tuple[tuple[str, Any], ...]  # per column: the row's key, how its value is encoded
    update_fields: tuple[Field, ...]


@lru_cache(maxsize=256)
def _insert_plan(  # noqa: PLR0913 - keyword-only; every part of the key picks another statement
    model: type[Model],
    names: tuple[str, ...],
    *,
    postgres: bool,
    conflict_target: tuple[str, ...] | None,
    upsert: tuple[tuple[str, bool], ...] | None,
    ignore: bool,
) -> _InsertPlan:
    """The statement and the row encoding for one shape of insert, worked out once: a hot call
    (an update's activity, subscription and outbox rows) only encodes its values."""
    fields = fields_of(model, names)
    update_fields = fields_of(model, tuple(name for name, _ in upsert)) if upsert else []
    target_fields = fields_of(model, conflict_target) if conflict_target else []
    sql = _insert_sql(
        model._meta.table_name,
        tuple(f.column_name for f in fields),
        tuple(PG_ARRAY_TYPES[f.field_type] if postgres else f.field_type for f in fields),
        postgres,
        tuple(f.column_name for f in target_fields) if (upsert or ignore) else None,
        tuple((f.column_name, excluded) for f, (_, excluded) in zip(update_fields, upsert, strict=True))
        if upsert
        else None,
    )
    converters = tuple((n, _converter(f)) for f, n in zip(fields, names, strict=True))
    return _InsertPlan(sql, converters, tuple(update_fields))


def run_write(sql: str, params: Sequence[Any], *, table: str) -> None:
    """A write that touches only `table` and whose result nobody reads: deferred to leave with
    the transaction's other writes (server/storage/deferred.py)."""
    database: Any = db.obj
    defer = getattr(database, "defer", None)
    if defer is None:
        database.execute_sql(sql, params)
    else:
        defer(sql, params, table=table)


def write(query: Any) -> None:
    """A peewee UPDATE or DELETE of one table whose row count nobody reads, deferred likewise."""
    sql, params = query.sql()
    run_write(sql, params, table=query.model._meta.table_name)


def _converter(field: Field) -> Any:
    """How a non-null value of this column goes into the JSON row table."""
    kind = field.field_type
    if kind == "JSON":
        # An object or array rides inside the row table as JSON itself, not as a string of its
        # own dumps: one encoding instead of two plus escaping. Both readers take either form
        # (PostgreSQL's ->> gives an object's text, SQLite's json_extract too). A bare string
        # must stay a JSON text, or ->> would hand PostgreSQL the unquoted string.
        return lambda value: value if type(value) in (dict, list) else _json_text(field, value)
    if kind == "DATETIME":
        return lambda value: value.isoformat(" ")  # what sqlite3's adapter stores
    if kind == "BOOL":
        return bool
    # Ids, counts and texts mostly arrive as plain int / str already: pass those through, and
    # let the field convert the rest (an enum member, a model instance for a foreign key).
    # peewee's db_value was ~a tenth of a bulk update's Python (11,000 calls per 1000 groups).
    plain = _PLAIN.get(kind)  # a foreign key has its target's type: BIGINT here
    convert: Any = field.db_value
    if plain is None:
        return convert
    return lambda value: value if type(value) is plain else convert(value)


_PLAIN = {"INT": int, "BIGINT": int, "SMALLINT": int, "AUTO": int, "BIGAUTO": int, "VARCHAR": str, "TEXT": str}


def where_id_in(field: Field, ids: Sequence[int]) -> Any:
    """`field IN ids` with one parameter: `= ANY(array)` on PostgreSQL, json_each on SQLite."""
    postgres = is_postgres()
    return NodeList((field, SQL(ids_in(postgres), [id_list(ids, postgres=postgres)])))
