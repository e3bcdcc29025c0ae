"""The hot UPDATEs and DELETEs as fixed texts cached per shape (table, columns, backend).

Peewee builds and compiles a query's AST on every call (~0.2 ms each); these texts are built
once per shape. Like bulk_sql's inserts they are deferred (server/storage/deferred.py) and leave
with the transaction's other writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from peewee import Model

from server.core.bulk_sql import cell, fields_of, run_write
from server.core.sqltext import id_list, ids_in
from server.storage.db import is_postgres
from server.storage.models import db


@lru_cache(maxsize=64)
def _delete_sql(table: str, column: str, postgres: bool) -> str:
    return f'DELETE FROM "{table}" WHERE "{column}" {ids_in(postgres)}'


def delete_in(model: type[Model], ids: Sequence[int], *, column: str = "group_id") -> None:
    """DELETE the rows whose `column` is among `ids` (one parameter, whatever their number)."""
    postgres = is_postgres()
    table = model._meta.table_name
    run_write(_delete_sql(table, column, postgres), [id_list(ids, postgres=postgres)], table=table)


def delete_in_returning(model: type[Model], ids: Sequence[int], *, column: str = "group_id") -> list[int]:
    """delete_in, sent now: the `column` values of the rows it deleted (the caller reads them)."""
    postgres = is_postgres()
    sql = _delete_sql(model._meta.table_name, column, postgres) + f' RETURNING "{column}"'
    cursor = db.execute_sql(sql, [id_list(ids, postgres=postgres)])
    return [row[0] for row in cursor.fetchall()]


@lru_cache(maxsize=64)
def _update_sql(table: str, columns: tuple[str, ...], bump: bool, status_not: bool, postgres: bool) -> str:
    param = "%s" if postgres else "?"
    sets = [f'"{c}" = {param}' for c in columns]
    if bump:
        sets.append('"version" = "version" + 1')
    where = f'"id" {ids_in(postgres)}' + (f' AND "status" != {param}' if status_not else "")
    return f'UPDATE "{table}" SET {", ".join(sets)} WHERE {where}'


def update_in(
    model: type[Model],
    ids: Sequence[int],
    *,
    values: Mapping[str, Any],
    bump_version: bool = False,
    status_not: int | None = None,
) -> None:
    """UPDATE rows by id: `values` by field name; optionally version + 1 and only where status
    differs from `status_not`."""
    postgres = is_postgres()
    fields = fields_of(model, tuple(values))
    table = model._meta.table_name
    sql = _update_sql(
        table, tuple(f.column_name for f in fields), bump_version, status_not is not None, postgres
    )  # fmt: skip
    params = [cell(f, v, postgres=postgres) for f, v in zip(fields, values.values(), strict=True)]
    params.append(id_list(ids, postgres=postgres))
    if status_not is not None:
        params.append(int(status_not))
    run_write(sql, params, table=table)
