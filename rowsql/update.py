"""Many rows, each with its own new values, in one UPDATE ... FROM unnest(...) statement.

Django's `bulk_update` writes a CASE WHEN per field per row: at a few hundred rows it spends
more time building and planning that statement than Postgres spends writing the rows. The
settlement records hundreds of charges at a time, so it uses this instead."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def rows_update(
    *, model: type[models.Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]
) -> int:
    """Set `fields` of each row, `rows` being (pk, value, value, ...) in the order of
    `fields`. Values go through each field's own conversion (get_db_prep_save)."""
    if not rows:
        return 0
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    pk = meta.pk
    quote = connection.ops.quote_name
    # One array parameter per column (not one placeholder per value: composing a statement
    # of thousands of placeholders costs more than running it).
    casts = [pk.db_type(connection)] + [column.db_type(connection) for column in columns]
    arrays: list[list[Any]] = [[] for _ in casts]
    for row in rows:
        arrays[0].append(pk.get_db_prep_save(row[0], connection))
        for index, (column, value) in enumerate(zip(columns, row[1:], strict=True), start=1):
            arrays[index].append(column.get_db_prep_save(value, connection))
    names = ", ".join(["id"] + [quote(column.column) for column in columns])
    assignments = ", ".join(
        f"{quote(column.column)} = v.{quote(column.column)}" for column in columns
    )
    unnest = ", ".join(f"%s::{cast}[]" for cast in casts)
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608 (names from models)
        f"FROM unnest({unnest}) AS v({names}) "
        f"WHERE t.{quote(pk.column)} = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
        return cursor.rowcount
