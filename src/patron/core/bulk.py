"""Set-based writes and reads: many rows per statement, on SQLite and PostgreSQL.

The ORM saves one object at a time; an import of a million order lines needs whole columns
written at once. These helpers take Polars frames whose columns are the table's columns and
write them with ``executemany`` (SQLite) or ``COPY`` (PostgreSQL), inside the caller's
transaction. Values are converted exactly as Django would store them, so the ORM reads back
what the importer wrote.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC
from typing import Any

import polars as pl
from django.db import connection, models

#: Keys per ``IN (...)`` list; below SQLite's historical limit of 999 parameters.
IN_CHUNK = 900
#: Keys per PostgreSQL array parameter.
ARRAY_CHUNK = 100_000
#: How date-times (in UTC) are written for PostgreSQL.
POSTGRES_DATETIME = "%Y-%m-%dT%H:%M:%S%.6f+00:00"


def is_postgres() -> bool:
    """Whether the default database is PostgreSQL (else SQLite)."""
    return connection.vendor == "postgresql"


def chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    """Consecutive slices of ``values`` of at most ``size`` items."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def to_db_values(frame: pl.DataFrame) -> pl.DataFrame:
    """Convert typed columns to the text the database backend stores.

    Datetimes (UTC) become Django's SQLite text form (``2011-12-01 08:26:00[.ffffff]``) or
    ISO 8601 with offset for PostgreSQL; decimals their exact text; dates ``YYYY-MM-DD``;
    booleans 1/0 on SQLite.
    """
    postgres = is_postgres()
    conversions: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if isinstance(dtype, pl.Datetime):
            if postgres:
                conversions.append(column.dt.strftime(POSTGRES_DATETIME).alias(name))
            else:
                # One formatting pass; whole seconds lose the fraction as Django writes them.
                conversions.append(
                    column.dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
                    .str.strip_suffix(".000000")
                    .alias(name)
                )
        elif isinstance(dtype, pl.Decimal | pl.Date):
            conversions.append(column.cast(pl.Utf8).alias(name))
        elif dtype == pl.Boolean and not postgres:
            conversions.append(column.cast(pl.Int8).alias(name))
    return frame.with_columns(conversions) if conversions else frame


def insert_frame(
    table: str, frame: pl.DataFrame, constants: Mapping[str, Any] | None = None
) -> None:
    """Insert every row of ``frame`` into ``table`` (column names = table columns).

    ``constants`` are columns with one value for every row (timestamps, defaults): on SQLite
    they are bound once in the statement instead of once per row.
    """
    if frame.height == 0:
        return
    # The raw cursors below raise the driver's errors; callers catch Django's (IntegrityError).
    with connection.wrap_database_errors:
        _insert_frame(table, frame, dict(constants or {}))


def _insert_frame(table: str, frame: pl.DataFrame, constants: dict[str, Any]) -> None:
    if is_postgres():
        # Constants are formatted once, not once per row; the CSV writer formats the typed
        # columns itself (decimals exactly, date-times in UTC with their offset).
        if constants:
            formatted = to_db_values(
                pl.select(pl.lit(value).alias(name) for name, value in constants.items())
            )
            frame = frame.with_columns(
                pl.lit(value, dtype=formatted.schema[name]).alias(name)
                for name, value in formatted.row(0, named=True).items()
            )
        columns = ", ".join(connection.ops.quote_name(name) for name in frame.columns)
        payload = io.BytesIO()
        frame.write_csv(
            payload, include_header=False, null_value="\\N", datetime_format=POSTGRES_DATETIME
        )
        quoted = connection.ops.quote_name(table)
        sql = f"COPY {quoted} ({columns}) FROM STDIN (FORMAT csv, NULL '\\N')"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            copy.write(payload.getvalue())
        return
    frame = to_db_values(frame)
    constant_row = (
        to_db_values(pl.select(pl.lit(v).alias(n) for n, v in constants.items())).row(0)
        if constants
        else ()
    )
    # Columns that hold one value throughout (a status, a currency) are bound once too.
    same_ends = [name for name in frame.columns if frame[name][0] == frame[name][-1]]
    if frame.height > 1 and same_ends:
        counts = frame.select(pl.col(same_ends).n_unique()).row(0)
        single = [name for name, count in zip(same_ends, counts, strict=True) if count == 1]
        single = single[: frame.width - 1]  # the staging table needs one column
        if single:
            constants.update(dict.fromkeys(single))
            constant_row = (*constant_row, *(frame[name][0] for name in single))
            frame = frame.drop(single)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(name) for name in frame.columns)
    targets = ", ".join(quote(name) for name in [*frame.columns, *constants])
    selected = ", ".join([*(quote(name) for name in frame.columns), *(["?"] * len(constants))])
    placeholders = ", ".join(["?"] * frame.width)
    staging = quote(f"patron_staging_{table}")
    # Rows go first into a bare temporary table (in memory: temp_store=MEMORY), then into the
    # real one by one INSERT ... SELECT: the per-statement work (foreign key and AUTOINCREMENT
    # bookkeeping, index cursors) happens once instead of once per row.
    with connection.cursor() as cursor:
        # sqlite3's own cursor: Django's wrapper rewrites %s and tees the rows of executemany.
        raw = cursor.cursor
        sqlite3.Cursor.execute(raw, f"DROP TABLE IF EXISTS temp.{staging}")
        sqlite3.Cursor.execute(raw, f"CREATE TEMP TABLE {staging} ({columns})")
        try:
            # Rows zipped from whole columns as they are bound, not built first as tuples
            # (DataFrame.rows): 1.6 -> 1.3 s CPU for the executemany of a million lines.
            rows = zip(*(column.to_list() for column in frame.iter_columns()), strict=True)
            sqlite3.Cursor.executemany(
                raw, f"INSERT INTO temp.{staging} VALUES ({placeholders})", rows
            )
            sqlite3.Cursor.execute(
                raw,
                f"INSERT INTO {quote(table)} ({targets}) SELECT {selected} FROM temp.{staging}",
                constant_row,
            )
        finally:
            sqlite3.Cursor.execute(raw, f"DROP TABLE temp.{staging}")


def update_rows(table: str, frame: pl.DataFrame, key: str = "id") -> None:
    """``UPDATE table SET <other columns> WHERE key = ...`` for every row of ``frame``."""
    if frame.height == 0:
        return
    frame = to_db_values(frame)
    others = [name for name in frame.columns if name != key]
    assignments = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in others)
    rows = frame.select(*others, key).rows()
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {connection.ops.quote_name(table)} SET {assignments} "
            f"WHERE {connection.ops.quote_name(key)} = %s",
            rows,
        )


def _polars_type(field: models.Field[Any, Any]) -> pl.DataType:
    if isinstance(field, models.DecimalField):
        return pl.Decimal(field.max_digits, field.decimal_places)
    if isinstance(field, models.DateTimeField):
        return pl.Datetime("us", "UTC")
    if isinstance(field, models.BooleanField):
        return pl.Boolean()
    if isinstance(field, models.CharField | models.TextField):
        return pl.Utf8()
    if isinstance(field, models.IntegerField | models.AutoField | models.ForeignKey):
        return pl.Int64()
    raise TypeError(f"insert_models cannot write {field.__class__.__name__} {field.name}")


def insert_models(
    model: type[models.Model], columns: Mapping[str, Sequence[Any]], *, new_keys: bool = True
) -> list[int]:
    """Insert rows of ``model`` given column by column (field attnames to Python values, every
    column without a database default named) set-based (:func:`insert_frame`): no model
    instance, no statement per row. With ``new_keys`` the primary keys are reserved first and
    returned in row order; without, ``columns`` holds the key (a one-to-one primary key).
    Date-times must be aware; they are stored in UTC. Encrypted (personal-data) fields are
    encrypted value by value; blind indexes are not computed here (give them as columns)."""
    table = model._meta.db_table
    count = len(next(iter(columns.values()), ()))
    if count == 0:
        return []
    data: dict[str, pl.Series] = {}
    ids: pl.Series | None = None
    if new_keys:
        ids = reserve_ids(table, count)
        data["id"] = ids
    for attname, values in columns.items():
        field = model._meta.get_field(attname)
        if not isinstance(field, models.Field) or field.column is None:
            raise TypeError(f"{model.__name__}.{attname} is not a column")
        dtype = _polars_type(field)
        if getattr(field, "is_encrypted", False):
            # Personal-data fields (patron.privacy.pii) encrypt as they are prepared: set-based
            # writes must not bypass it and store plain text.
            values = [field.get_prep_value(value) for value in values]
        if isinstance(dtype, pl.Datetime):
            values = [value.astimezone(UTC) if value is not None else None for value in values]
        data[field.column] = pl.Series(attname, values, dtype=dtype)
    insert_frame(table, pl.DataFrame(data))
    return [] if ids is None else ids.to_list()


def update_integers(
    table: str,
    key: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[int]],
    *,
    add: bool = False,
    chunk: int = 500,
) -> None:
    """Set (or with ``add``, add to) integer ``columns`` of the rows of ``table`` whose ``key``
    is each row's first value, from one ``WITH v AS (VALUES ...) UPDATE ... FROM v`` per
    ``chunk`` rows (SQLite 3.33+ and PostgreSQL): no statement per row, no CASE to build."""
    quote = connection.ops.quote_name
    names = ["k", *(f"c{index}" for index in range(len(columns)))]
    assignments = ", ".join(
        f"{quote(column)} = "
        + (f"{quote(table)}.{quote(column)} + v.c{index}" if add else f"v.c{index}")
        for index, column in enumerate(columns)
    )
    value_row = "(" + ", ".join(["CAST(%s AS BIGINT)"] * len(names)) + ")"
    with connection.cursor() as cursor:
        for part in chunks(rows, chunk):
            cursor.execute(
                f"WITH v({', '.join(names)}) AS (VALUES {', '.join([value_row] * len(part))}) "
                f"UPDATE {quote(table)} SET {assignments} FROM v "
                f"WHERE {quote(table)}.{quote(key)} = v.k",
                [value for row in part for value in row],
            )


def reserve_ids(table: str, count: int, *, locked: bool = False) -> pl.Series:
    """``count`` new primary keys for ``table``, safe against concurrent writers.

    PostgreSQL hands them out from the table's sequence, one ``nextval`` each (about 6 µs
    apiece: two seconds for 367,000 orders), or, with ``locked`` (the caller holds the
    table's ACCESS EXCLUSIVE lock, so no other insert can draw from the sequence), as one
    block moved past by ``setval``. On SQLite the importer's transaction holds the
    database's write lock from its start (``transaction_mode`` IMMEDIATE in settings), so
    the keys above the current maximum are ours.
    """
    if count == 0:
        return pl.Series("id", [], dtype=pl.Int64)
    quoted = connection.ops.quote_name(table)
    with connection.cursor() as cursor:
        if is_postgres() and locked:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                "nextval(pg_get_serial_sequence(%s, 'id')) + %s - 1)",
                [table, table, count],
            )
            row = cursor.fetchone()
            assert row is not None
            start = int(row[0]) - count + 1
        elif is_postgres():
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, count],
            )
            return pl.Series("id", [row[0] for row in cursor.fetchall()], dtype=pl.Int64)
        else:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {quoted}")
            start = int(cursor.fetchone()[0]) + 1
    return pl.int_range(start, start + count, dtype=pl.Int64, eager=True).alias("id")


def fetch_frame(
    table: str,
    columns: dict[str, str],
    key_column: str,
    keys: Sequence[Any],
    schema: dict[str, Any],
    *,
    filters: dict[str, Any] | None = None,
) -> pl.DataFrame:
    """Rows of ``table`` whose ``key_column`` is in ``keys`` (and whose ``filters`` columns
    equal their values), as a frame with ``schema``.

    ``columns`` maps output names to table columns. Raw SQL instead of the ORM: the importer
    looks up hundreds of thousands of keys and the ORM's per-parameter work dominates.
    PostgreSQL gets the keys as one array (``= ANY``), SQLite as one JSON array
    (``IN (SELECT value FROM json_each(...))``). Datetimes come back in UTC.
    """
    quote = connection.ops.quote_name
    postgres = is_postgres()
    selected = ", ".join(
        _selected(quote(column), schema[name], postgres) for name, column in columns.items()
    )
    conditions = "".join(f" AND {quote(name)} = %s" for name in filters or {})
    filter_values = list((filters or {}).values())
    sql = f"SELECT {selected} FROM {quote(table)} WHERE {quote(key_column)} "
    rows: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        if is_postgres():
            for chunk in chunks(list(keys), ARRAY_CHUNK):
                cursor.execute(sql + f"= ANY(%s){conditions}", [list(chunk), *filter_values])
                rows.extend(cursor.fetchall())
        else:
            # One statement per block of keys, handed over as one JSON array (an IN list is
            # limited to 999 parameters: a hundred statements per batch, each parsed anew).
            for chunk in chunks(list(keys), ARRAY_CHUNK):
                cursor.execute(
                    sql + f"IN (SELECT value FROM json_each(%s)){conditions}",
                    [json.dumps(list(chunk)), *filter_values],
                )
                rows.extend(cursor.fetchall())
    # SQLite hands back naive datetimes (UTC, as Django stores them); PostgreSQL microseconds
    # since 1970 (see _selected).
    read_schema = {
        name: (
            (pl.Int64 if postgres else pl.Datetime("us"))
            if isinstance(dtype, pl.Datetime)
            else dtype
        )
        for name, dtype in schema.items()
    }
    frame = pl.DataFrame(rows, schema=read_schema, orient="row", strict=False)
    return frame.with_columns(
        pl.col(name).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
        for name, dtype in schema.items()
        if isinstance(dtype, pl.Datetime)
    )


def _selected(column: str, dtype: Any, postgres: bool) -> str:
    """The select-list item for ``column`` read as ``dtype``. On PostgreSQL the server sends
    amounts read as floats as ``float8`` and date-times as microseconds since 1970: building
    the driver's Decimal and time-zone-aware datetime objects, then converting them, cost
    the client five times the CPU of the query itself (a re-import reads every order and
    line it names)."""
    if not postgres:
        return column
    if dtype == pl.Float64:
        return f"{column}::float8"
    if isinstance(dtype, pl.Datetime):
        return f"(extract(epoch FROM {column}) * 1000000)::bigint"
    return column


#: New rows a load must bring, at the least, before its checks are suspended.
SET_BASED_CHECK_MIN_ROWS = 20_000


def suspend_checks(tables: Sequence[str], incoming: int) -> list[tuple[str, str]]:
    """Drop the plain (non-unique) indexes of ``tables``, and on PostgreSQL their foreign
    keys too, for a load of ``incoming`` new rows into the first of them;
    :func:`restore_checks` adds them back before the commit.

    This is both databases' advice for populating a table (PostgreSQL's "Remove Indexes",
    "Remove Foreign Key Constraints"; SQLite builds an index by one sort): a B-tree fed one
    random key at a time costs more than one sorted build, and on PostgreSQL a foreign key
    is checked by a trigger per inserted row, which took longer than the load itself.
    Adding a constraint back checks every row in one join, inside the same transaction: a
    violation fails the import, and any rollback brings constraints and indexes back
    unchanged. Unique indexes stay, so duplicates are refused as they arrive. SQLite's
    foreign keys are part of the table and stay (they are checked per row, cheaply).

    It runs only when ``incoming`` rows are many and at least a quarter of what the first
    table holds (the re-check and the rebuild read whole tables). The tables are locked
    against other writers until the import ends (PostgreSQL: against readers too; SQLite's
    readers keep the snapshot from before the import, indexes included). Returns the SQL
    that restores what was dropped as ``(table, statement)`` pairs.
    """
    if incoming < SET_BASED_CHECK_MIN_ROWS:
        return []
    if not is_postgres():
        return _suspend_sqlite_indexes(tables, incoming)
    quote = connection.ops.quote_name
    restore: list[tuple[str, str]] = []
    drops: list[str] = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT GREATEST(reltuples, 0) FROM pg_class WHERE oid = %s::regclass", [tables[0]]
        )
        row = cursor.fetchone()
        if row is None or incoming * 4 < float(row[0]):
            return []
        for table in tables:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
                [table],
            )
            for name, definition in cursor.fetchall():
                drops.append(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
                restore.append(
                    (table, f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
                )
            cursor.execute(
                "SELECT index.relname, pg_get_indexdef(i.indexrelid) FROM pg_index AS i "
                "JOIN pg_class AS index ON index.oid = i.indexrelid "
                "WHERE i.indrelid = %s::regclass AND NOT i.indisunique AND NOT i.indisprimary "
                "AND i.indisvalid AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint AS c WHERE c.conindid = i.indexrelid) "
                "ORDER BY index.relname",
                [table],
            )
            for name, definition in cursor.fetchall():
                drops.append(f"DROP INDEX {quote(name)}")
                restore.insert(0, (table, definition))
        for statement in drops:
            cursor.execute(statement)
    return restore


def _suspend_sqlite_indexes(tables: Sequence[str], incoming: int) -> list[tuple[str, str]]:
    """SQLite's part of :func:`suspend_checks`: the indexes made by ``CREATE INDEX`` that are
    not unique (a unique constraint's automatic index has no SQL to restore it from)."""
    quote = connection.ops.quote_name
    restore: list[tuple[str, str]] = []
    with connection.cursor() as cursor:
        # The write lock is held from the transaction's start (IMMEDIATE): the count holds.
        cursor.execute(f"SELECT count(*) FROM {quote(tables[0])}")
        row = cursor.fetchone()
        if row is None or incoming * 4 < int(row[0]):
            return []
        for table in tables:
            cursor.execute(
                "SELECT master.name, master.sql FROM sqlite_master AS master "
                "JOIN pragma_index_list(%s) AS listed ON listed.name = master.name "
                "WHERE master.type = 'index' AND master.sql IS NOT NULL "
                'AND NOT listed."unique" ORDER BY master.name',
                [table],
            )
            for name, definition in cursor.fetchall():
                cursor.execute(f"DROP INDEX {quote(name)}")
                restore.append((table, definition))
    return restore


def restore_checks(restore: Sequence[tuple[str, str]]) -> None:
    """Rebuild the indexes and re-add (so re-check) the foreign keys that
    :func:`suspend_checks` dropped."""
    with connection.cursor() as cursor:
        if is_postgres():
            # Sorted index builds in memory; for this transaction only.
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _, statement in restore:
            cursor.execute(statement)
        if not is_postgres():
            return
        # Fresh statistics for the planner (and for the next import's decision above).
        for table in dict.fromkeys(table for table, _ in restore):
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def refresh_statistics(tables: Sequence[str]) -> None:
    """``ANALYZE`` the tables on PostgreSQL after a bulk write, so that the planner knows
    their new sizes at once (autovacuum would, after a minute or so; until then a query
    planned for a few rows may scan thousands). Nothing on SQLite."""
    if not is_postgres():
        return
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
