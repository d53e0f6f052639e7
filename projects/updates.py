"""One UPDATE for many rows that each get values of their own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections
from django.db.models import QuerySet


def update_each(queryset: QuerySet, rows: Mapping[int, Mapping[str, Any]], **common: Any) -> int:
    """Update each row (by primary key) of `queryset` with its own fields, and all of them with `common`,
    in one statement per set of field names. Returns the rows updated (a row `queryset` leaves out is not).

    QuerySet.bulk_update would do it with a CASE on every field, each branch a filter compiled like a
    query's (slower, here, than an UPDATE per row); this writes a plain `CASE pk WHEN … THEN …` only for
    the fields whose values differ, with values prepared by their fields as the ORM would."""
    by_names: dict[tuple[str, ...], dict[int, Mapping[str, Any]]] = {}
    for pk, fields in rows.items():
        by_names.setdefault(tuple(sorted(fields)), {})[pk] = fields
    return sum(_update(queryset, same, common) for same in by_names.values())


def _update(queryset: QuerySet, rows: dict[int, Mapping[str, Any]], common: Mapping[str, Any]) -> int:
    connection = connections[queryset.db]
    query = queryset.query
    meta = queryset.model._meta
    quote = connection.ops.quote_name
    if len(query.alias_map) > 1:
        raise ValueError("update_each takes a queryset on one table: no joins")
    assignments, params = [], []
    for name, value in common.items():
        field = meta.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    for name in next(iter(rows.values())):
        field = meta.get_field(name)
        values = [field.get_db_prep_save(row[name], connection) for row in rows.values()]
        if all(value == values[0] and type(value) is type(values[0]) for value in values):
            assignments.append(f"{quote(field.column)} = %s")
            params.append(values[0])
            continue
        branches = " ".join("WHEN %s THEN %s" for _ in values)
        case = f"CASE {quote(meta.pk.column)} {branches} END"
        if connection.features.requires_casted_case_in_updates:  # as bulk_update: typed, not text
            case = f"CAST({case} AS {field.cast_db_type(connection)})"
        assignments.append(f"{quote(field.column)} = {case}")
        for pk, value in zip(rows, values, strict=True):
            params += [pk, value]
    where = f"{quote(meta.pk.column)} IN ({', '.join('%s' for _ in rows)})"
    params += list(rows)
    try:
        condition, condition_params = query.get_compiler(connection=connection).compile(query.where)
    except EmptyResultSet:  # the queryset matches nothing
        return 0
    except FullResultSet:  # no condition
        condition = ""
    if condition:
        where, params = f"{where} AND ({condition})", [*params, *condition_params]
    sql = f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} WHERE {where}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
