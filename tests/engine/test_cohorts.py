"""Cohort retention and revenue against SQL (SQLite in memory) on CDNOW and the demo shop."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from patron.engine.cohorts import (
    COHORT_RETENTION_COLUMNS,
    COHORT_REVENUE_COLUMNS,
    cohort_retention,
    cohort_revenue,
)
from patron.engine.frames import EngineInputError
from tests.engine.data import (
    CDNOW_AS_OF,
    DEMO_AS_OF,
    PlainOrder,
    cdnow_lines,
    demo_orders,
    plain_orders,
)

DEMO_CUSTOMERS = 2000
DEMO_SEED = 3


@cache
def _cdnow(path: Path, as_of: dt.date) -> tuple[pl.DataFrame, tuple[PlainOrder, ...]]:
    lines = cdnow_lines(path)
    return lines, tuple(plain_orders(lines, as_of))


@cache
def _demo() -> tuple[pl.DataFrame, tuple[PlainOrder, ...]]:
    lines = demo_orders(DEMO_CUSTOMERS, DEMO_SEED)
    return lines, tuple(plain_orders(lines, DEMO_AS_OF))


def _cents(amount: Decimal) -> int:
    cents = amount * 100
    assert cents == cents.to_integral_value(), f"{amount} is not a whole number of cents"
    return int(cents)


def _order_database(orders: Sequence[PlainOrder]) -> sqlite3.Connection:
    """The counted orders in an SQLite table, money in whole cents so that sums are exact."""
    database = sqlite3.connect(":memory:")
    database.execute(
        "CREATE TABLE orders (customer_id TEXT, order_id TEXT, day TEXT, channel TEXT, cents INT)"
    )
    database.executemany(
        "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
        [
            (
                order.customer_id,
                order.order_id,
                order.day.isoformat(),
                order.channel,
                _cents(order.net),
            )
            for order in orders
        ],
    )
    return database


COHORTS_SQL = """
WITH dated AS (
    SELECT *, CAST(strftime('%Y', day) AS INT) * 12 + CAST(strftime('%m', day) AS INT) - 1 AS month
    FROM orders
),
firsts AS (
    SELECT customer_id, month AS cohort, channel AS first_channel FROM (
        SELECT *, ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY day, order_id) AS position
        FROM dated
    ) WHERE position = 1
),
sizes AS (SELECT cohort, {dimension} AS dimension, COUNT(*) AS size FROM firsts GROUP BY 1, 2),
cells AS (
    SELECT firsts.cohort, {dimension} AS dimension, dated.month - firsts.cohort AS period,
           COUNT(DISTINCT dated.customer_id) AS active, COUNT(*) AS orders, SUM(cents) AS cents
    FROM dated JOIN firsts USING (customer_id)
    GROUP BY 1, 2, 3
)
SELECT cells.cohort, cells.dimension, period, size, active, orders, cents
FROM cells JOIN sizes USING (cohort, dimension)
ORDER BY cells.cohort, cells.dimension, period
"""


def _month_date(month: int) -> dt.date:
    return dt.date(month // 12, month % 12 + 1, 1)


def expected_retention(orders: Sequence[PlainOrder], by_channel: bool) -> list[tuple[Any, ...]]:
    """The retention matrix by SQL: cohort = month of the first (day, order_id) order."""
    database = _order_database(orders)
    query = COHORTS_SQL.format(dimension="first_channel" if by_channel else "''")
    rows = []
    for cohort, channel, period, size, active, order_count, cents in database.execute(query):
        rows.append(
            (
                _month_date(cohort),
                *([channel] if by_channel else []),
                period,
                size,
                active,
                active / size,
                order_count,
                cents / 100,
            )
        )
    return rows


def actual_rows(table: pl.DataFrame) -> list[tuple[Any, ...]]:
    """The engine's rows, money rounded to cents (the inputs are whole cents)."""
    money = [column for column in ("revenue",) if column in table.columns]
    return table.with_columns(pl.col(money).round(2)).rows()


def test_cohort_matrix_of_cdnow_matches_sql_on_every_row(shared_data: Path) -> None:
    # given the CDNOW log and its cohort matrix computed in SQL
    lines, orders = _cdnow(shared_data, CDNOW_AS_OF)
    expected = expected_retention(orders, by_channel=False)

    # when the engine computes it
    table = cohort_retention(lines, CDNOW_AS_OF)

    # then every row is the same, and the cohorts hold the published 23,570 customers
    assert table.columns == list(COHORT_RETENTION_COLUMNS)
    assert actual_rows(table) == expected
    # CDNOW's customers were all acquired in January to March 1997 and the log runs to June
    # 1998: 18, 17 and 16 monthly periods, each with some customer back
    assert len(table) == 18 + 17 + 16
    first_periods = table.filter(pl.col("period") == 0)
    assert first_periods["cohort_size"].sum() == 23_570
    assert first_periods["retention_rate"].to_list() == [1.0, 1.0, 1.0]


def test_cohort_matrix_stops_at_as_of(shared_data: Path) -> None:
    # given the CDNOW log cut at 15 September 1997 in SQL
    as_of = dt.date(1997, 9, 15)
    lines, orders = _cdnow(shared_data, as_of)
    expected = expected_retention(orders, by_channel=False)

    # when the engine computes the matrix as of that day
    table = cohort_retention(lines, as_of)

    # then it matches, and no period runs past September 1997
    assert actual_rows(table) == expected
    last_month = max(
        cohort_month.year * 12 + cohort_month.month - 1 + period
        for cohort_month, period in table.select("cohort_month", "period").rows()
    )
    assert last_month == 1997 * 12 + 8


@pytest.mark.parametrize("by", [None, "channel"])
@pytest.mark.parametrize("lazy", [False, True])
def test_cohort_matrix_of_demo_shop_matches_sql(by: str | None, lazy: bool) -> None:
    # given the demo shop (discounts, refunds, cancellations, channels) and its matrix in SQL
    lines, orders = _demo()
    expected = expected_retention(orders, by_channel=by == "channel")

    # when the engine computes it from an eager or a lazy frame
    result = cohort_retention(lines.lazy() if lazy else lines, DEMO_AS_OF, by=by)

    # then the result is of the caller's kind and every row is the same
    assert isinstance(result, pl.LazyFrame if lazy else pl.DataFrame)
    table = result.collect() if isinstance(result, pl.LazyFrame) else result
    columns = list(COHORT_RETENTION_COLUMNS)
    if by:
        columns.insert(1, by)
    assert table.columns == columns
    assert actual_rows(table) == expected
    assert len(expected) > 100


@pytest.mark.parametrize("by", [None, "channel"])
def test_cohort_revenue_of_demo_shop_matches_sql(by: str | None) -> None:
    # given the demo shop's cohorts: size, orders and revenue summed over the SQL matrix
    lines, orders = _demo()
    totals: dict[tuple[Any, ...], list[int]] = {}
    for row in expected_retention(orders, by_channel=by == "channel"):
        key = row[:2] if by else row[:1]
        period_values = row[len(key) :]
        size, order_count, cents = period_values[1], period_values[4], round(period_values[5] * 100)
        total = totals.setdefault(key, [size, 0, 0])
        total[1] += order_count
        total[2] += cents
    expected = [
        (*key, size, order_count, cents / 100)
        for key, (size, order_count, cents) in sorted(totals.items())
    ]

    # when the engine computes the revenue per cohort
    table = cohort_revenue(lines, DEMO_AS_OF, by=by)

    # then every cohort matches
    columns = list(COHORT_REVENUE_COLUMNS)
    if by:
        columns.insert(1, by)
    assert table.columns == columns
    assert actual_rows(table.drop("revenue_per_customer")) == expected
    assert table["revenue_per_customer"].to_list() == [
        pytest.approx(row[-1] / row[-3], rel=1e-12) for row in expected
    ]


def test_cohorts_refuse_a_table_without_the_order_columns() -> None:
    lines, _ = _demo()
    with pytest.raises(EngineInputError, match="customer_id"):
        cohort_retention(lines.drop("customer_id"), DEMO_AS_OF)


def test_cohorts_refuse_an_unknown_dimension() -> None:
    lines, _ = _demo()
    with pytest.raises(EngineInputError, match="'region'"):
        cohort_retention(lines, DEMO_AS_OF, by="region")


def test_cohorts_by_channel_refuse_lines_without_a_channel(shared_data: Path) -> None:
    lines, _ = _cdnow(shared_data, CDNOW_AS_OF)
    with pytest.raises(EngineInputError, match="need a channel column"):
        cohort_revenue(lines, CDNOW_AS_OF, by="channel")


def test_cohorts_refuse_an_as_of_that_is_not_a_date() -> None:
    lines, _ = _demo()
    with pytest.raises(EngineInputError, match="as_of must be a date"):
        cohort_retention(lines, "2025-06-01")  # type: ignore[arg-type]
