"""One UPDATE for many rows that each get values of their own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import connections
from django.db.models import Case, Q, QuerySet, Value, When
from django.db.models.functions import Cast


def update_each(queryset: QuerySet, rows: Mapping[int, Mapping[str, Any]], **common: Any) -> int:
    """Update each row (by primary key) of `queryset` with its own fields, and all of them with `common`,
    in one statement per set of field names. Unlike QuerySet.bulk_update, which puts a CASE on every
    field, a field whose value all rows share is set plainly: a group's closes differ in little but
    their times. Returns the rows updated (a row `queryset` leaves out is not)."""
    by_names: dict[tuple[str, ...], dict[int, Mapping[str, Any]]] = {}
    for pk, fields in rows.items():
        by_names.setdefault(tuple(sorted(fields)), {})[pk] = fields
    return sum(_update(queryset, same, common) for same in by_names.values())


def _update(queryset: QuerySet, rows: dict[int, Mapping[str, Any]], common: Mapping[str, Any]) -> int:
    fields: dict[str, Any] = dict(common)
    for name in next(iter(rows.values())):
        values = {pk: row[name] for pk, row in rows.items()}
        first = next(iter(values.values()))
        shared = all(value == first and type(value) is type(first) for value in values.values())
        fields[name] = first if shared else _case(queryset, name, values)
    return queryset.filter(pk__in=list(rows)).update(**fields)


def _case(queryset: QuerySet, name: str, values: dict[int, Any]) -> Case | Cast:
    field = queryset.model._meta.get_field(name)
    case = Case(
        *(When(Q(pk=pk), then=Value(value, output_field=field)) for pk, value in values.items()),
        output_field=field,
    )
    # As bulk_update does: PostgreSQL types a CASE of parameters as text unless told.
    if connections[queryset.db].features.requires_casted_case_in_updates:
        return Cast(case, output_field=field)
    return case
