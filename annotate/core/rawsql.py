"""Model instances from hand-written SQL, for the few hot paths that cannot afford the ORM's compiler.

On these machines building and compiling one ORM query costs 0.7-2.5 ms of CPU (a select_related with
a row lock is the dear end), more than PostgreSQL spends running it. The annotator's submit and claim
run a dozen such queries per judgment, so they use plain SQL written once, and this module turns the
rows back into ordinary model instances: the same column list and the same value conversions
(`from_db_value`, the backend's converters: JSON, SQLite's datetimes and booleans) as the ORM would
apply, computed once per model and database vendor instead of once per query.

Everything else keeps the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, Generic, TypeVar

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)

Converter = Callable[[Any, Any, Any], Any]


class Columns(Generic[M]):
    """The concrete columns of `model` under a table alias: `sql` for a SELECT list, `load(row, start)`
    to build an instance from the `len(self)` values of `row` that begin at `start`."""

    def __init__(self, model: type[M], alias: str) -> None:
        self.model = model
        fields = list(model._meta.concrete_fields)
        self.attnames = [f.attname for f in fields]
        qn = connection.ops.quote_name
        self.sql = ", ".join(f"{alias}.{qn(f.column)}" for f in fields)
        self._converters: list[tuple[int, list[Converter], Any]] = []
        for index, f in enumerate(fields):
            expression = f.get_col(alias)
            converters = connection.ops.get_db_converters(expression) + expression.get_db_converters(
                connection
            )
            if converters:
                self._converters.append((index, converters, expression))

    def __len__(self) -> int:
        return len(self.attnames)

    def load(self, row: Sequence[Any], start: int = 0) -> M:
        values = list(row[start : start + len(self.attnames)])
        for index, converters, expression in self._converters:
            value = values[index]
            for convert in converters:
                value = convert(value, expression, connection)
            values[index] = value
        return self.model.from_db(connection.alias, self.attnames, values)


@cache
def _columns(model: type[Model], alias: str, vendor: str) -> Columns[Any]:
    return Columns(model, alias)  # one per vendor: converters differ between PostgreSQL and SQLite


def columns(model: type[M], alias: str) -> Columns[M]:
    """The (cached) column list of `model` as `alias` on the current database."""
    return _columns(model, alias, connection.vendor)


def for_update(of: str | None = None, *, skip_locked: bool = False) -> str:
    """A row-lock clause where the database has row locks (PostgreSQL); SQLite serializes writers."""
    features = connection.features
    if not features.has_select_for_update:
        return ""
    clause = " FOR UPDATE"
    if of and features.has_select_for_update_of:
        clause += f" OF {of}"
    if skip_locked and features.has_select_for_update_skip_locked:
        clause += " SKIP LOCKED"
    return clause


def fetchone(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetchall(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def execute(sql: str, params: Sequence[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
