"""Hand-written reads for the hot paths of the API, with model instances out.

The ORM compiles every query anew: for a join of three models that is about a millisecond of
CPU, several times what the database needs to answer it. The few reads on the path of every
API request (the caller's token, the member, the locked balance) are written here in SQL
instead, while the column lists, the conversion of values (dates on SQLite, decimals,
encrypted personal data) and the instances stay Django's, prepared once per process.

``Columns(Member, "m")`` names a model's columns under a table alias;
``columns.instance(row, offset)`` builds the instance from a row read with them, exactly as
the ORM would (``Model.from_db`` after the backend's and the fields' converters), and
``link`` attaches a related instance as ``select_related`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, Generic, TypeVar

from django.db import connection, models

ModelT = TypeVar("ModelT", bound=models.Model)
Converter = Callable[[Any, Any, Any], Any]


class Columns(Generic[ModelT]):
    """The concrete columns of ``model`` under the table alias ``alias``; with ``only``, just
    the primary key and those fields (the others are deferred on the instances, as with
    ``QuerySet.only``: leave out large JSON columns a hot path does not need)."""

    def __init__(
        self, model: type[ModelT], alias: str, only: tuple[str, ...] | None = None
    ) -> None:
        self.model = model
        self.alias = alias
        self.fields = [
            field
            for field in model._meta.concrete_fields
            if only is None or field.primary_key or field.name in only or field.attname in only
        ]
        self.table = f"{quote(model._meta.db_table)} {alias}"
        self.sql = ", ".join(f"{alias}.{quote(column_of(field))}" for field in self.fields)
        self.attnames = [field.attname for field in self.fields]
        # Filled as hot paths ask (their SQL is written on every call).
        self._qualified: dict[str, str] = {}
        # The converters get the column expression, as the ORM's compiler passes them.
        self._expressions = [field.get_col(alias) for field in self.fields]
        self._converters = [
            _converters(field, expression)
            for field, expression in zip(self.fields, self._expressions, strict=True)
        ]

    def __len__(self) -> int:
        return len(self.fields)

    def column(self, attname: str) -> str:
        """The qualified column of field ``attname`` (``m."customer_id"``)."""
        qualified = self._qualified.get(attname)
        if qualified is None:
            column = column_of(self.model._meta.get_field(attname))
            qualified = self._qualified[attname] = f"{self.alias}.{quote(column)}"
        return qualified

    def value(self, attname: str, raw: Any) -> Any:
        """``raw``, read from the column of field ``attname``, as the ORM would give it."""
        index = self.attnames.index(attname)
        if raw is not None:
            for convert in self._converters[index]:
                raw = convert(raw, self._expressions[index], connection)
        return raw

    def instance(self, row: Sequence[Any], offset: int = 0) -> ModelT | None:
        """The instance in ``row[offset:offset + len(self)]``; None when its primary key is
        null (the missing side of a LEFT JOIN)."""
        values = list(row[offset : offset + len(self.fields)])
        for index, converters in enumerate(self._converters):
            if converters and values[index] is not None:
                expression = self._expressions[index]
                for convert in converters:
                    values[index] = convert(values[index], expression, connection)
        primary_key = values[self.attnames.index(self.model._meta.pk.attname)]
        if primary_key is None:
            return None
        return self.model.from_db(connection.alias, self.attnames, values)


@cache
def _column_sets(
    model: type[models.Model], alias: str, only: tuple[str, ...] | None, vendor: str
) -> Columns[Any]:
    return Columns(model, alias, only)


def columns(
    model: type[ModelT], alias: str, only: tuple[str, ...] | None = None
) -> Columns[ModelT]:
    """``Columns(model, alias, only)``, built once per process and database backend."""
    return _column_sets(model, alias, only, connection.vendor)


def _converters(field: models.Field[Any, Any], expression: Any) -> list[Converter]:
    return [
        *connection.ops.get_db_converters(expression),
        *field.get_db_converters(connection),
    ]


def link(instance: models.Model, field_name: str, related: models.Model | None) -> None:
    """Attach ``related`` as ``instance.<field_name>``, as ``select_related`` would."""
    field = instance._meta.get_field(field_name)
    field.set_cached_value(instance, related)  # type: ignore[union-attr]


def fetch_one(sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
    """The first row of ``sql`` with ``params`` (``%s`` placeholders), or None."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetch_all(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Every row of ``sql`` with ``params`` (``%s`` placeholders)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def insert(instances: Sequence[ModelT]) -> list[ModelT]:
    """INSERT new instances of one model in one statement and give them their primary keys.

    What ``save()`` and ``bulk_create`` write (each field's ``pre_save`` and database value:
    ``auto_now_add``, encryption), without compiling a query each time; no model signals are
    sent, so use it only for tables no signal listens to (the ledger's)."""
    if not instances:
        return []
    model = type(instances[0])
    statement = _insert_statement(model, connection.vendor)
    _, rows, values = insert_parts(instances)
    with connection.cursor() as cursor:
        if connection.features.can_return_rows_from_bulk_insert:
            cursor.execute(f"{statement.sql} {rows} {statement.returning}", values)
            keys = [row[0] for row in cursor.fetchall()]
        else:
            # Without RETURNING (old SQLite) one row at a time gives each its lastrowid.
            keys = []
            width = len(statement.fields)
            for index in range(len(instances)):
                cursor.execute(
                    f"{statement.sql} VALUES {statement.row}",
                    values[index * width : (index + 1) * width],
                )
                keys.append(cursor.lastrowid)
    for instance, key in zip(instances, keys, strict=True):
        mark_saved(instance, key)
    return list(instances)


def mark_saved(instance: models.Model, key: Any) -> None:
    """Give ``instance`` the primary key its row got and mark it as stored, as ``save()``
    does, for rows written by hand-written SQL."""
    setattr(instance, instance._meta.pk.attname, key)
    instance._state.adding = False
    instance._state.db = connection.alias


def insert_parts(instances: Sequence[models.Model]) -> tuple[str, str, list[Any]]:
    """``("INSERT INTO table (columns)", "VALUES (...), ...", parameters)`` for new
    instances of one model, as :func:`insert` writes them, for a statement that adds to it
    (``ON CONFLICT``, ``RETURNING``, a ``WITH``)."""
    statement = _insert_statement(type(instances[0]), connection.vendor)
    values: list[Any] = []
    for instance in instances:
        values.extend(
            field.get_db_prep_save(field.pre_save(instance, True), connection)
            for field in statement.fields
        )
    return statement.sql, "VALUES " + ", ".join([statement.row] * len(instances)), values


class _InsertStatement:
    def __init__(self, model: type[models.Model]) -> None:
        meta = model._meta
        pk = meta.pk
        self.fields = [
            field
            for field in meta.concrete_fields
            # The database numbers the row: an auto field's value comes back by RETURNING.
            if not (field is pk and getattr(field, "db_returning", False))
        ]
        names = ", ".join(quote(column_of(field)) for field in self.fields)
        self.sql = f"INSERT INTO {quote(meta.db_table)} ({names})"
        self.row = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
        self.returning = f"RETURNING {quote(column_of(pk))}"


@cache
def _insert_statement(model: type[models.Model], vendor: str) -> _InsertStatement:
    return _InsertStatement(model)


def increment(model: type[models.Model], key_field: str, key: Any, deltas: dict[str, int]) -> int:
    """``UPDATE ... SET column = column + delta ... WHERE key_field = key`` for the non-zero
    ``deltas`` (integer columns by field name); the number of rows changed."""
    changes = {name: delta for name, delta in deltas.items() if delta}
    if not changes:
        return 0
    meta = model._meta
    names = [quote(column_of(meta.get_field(name))) for name in changes]
    assignments = ", ".join(f"{name} = {name} + %s" for name in names)
    column = quote(column_of(meta.get_field(key_field)))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {column} = %s",
            [*changes.values(), key],
        )
        return cursor.rowcount


def column_of(field: Any) -> str:
    """The database column of a concrete field (``customer_id`` for ``customer``)."""
    column = getattr(field, "column", None)
    if not isinstance(column, str):
        raise TypeError(f"{field!r} has no database column")
    return column


def quote(name: str) -> str:
    """``name`` quoted as a table or column name for the current backend."""
    return connection.ops.quote_name(name)
