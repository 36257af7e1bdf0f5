"""Cohorts: of the customers acquired in a month, how many buy again one, two, ... months later.

A customer's cohort is the calendar month of their first counted order (cancelled orders do not
count, see :func:`patron.engine.frames.order_table`); with ``by="channel"`` it is split further by
the channel of that first order, the smallest ``(order_day, order_id)``. Period ``k`` is the
k-th calendar month after the cohort month, so period 0 is the month of acquisition.

The retention table is long and sparse: one row per cohort and period in which at least one of
the cohort's customers ordered. Months in which nobody came back have no row; a presentation that
draws a full triangle fills them with zeros. Keeping the table sparse lets every engine compute it
with group-bys alone, with no calendar of months to build and join.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import narwhals as nw

from patron.engine.frames import EngineInputError, counted_orders

CohortDimension = Literal["channel"]

COHORT_DIMENSIONS: tuple[CohortDimension, ...] = ("channel",)
"""Columns a cohort can be split by (``by=``)."""

COHORT_RETENTION_COLUMNS = (
    "cohort_month",
    "period",
    "cohort_size",
    "active_customers",
    "retention_rate",
    "orders",
    "revenue",
)
"""Columns of :func:`cohort_retention` (``channel`` follows ``cohort_month`` with ``by``)."""

COHORT_REVENUE_COLUMNS = (
    "cohort_month",
    "cohort_size",
    "orders",
    "revenue",
    "revenue_per_customer",
)
"""Columns of :func:`cohort_revenue` (``channel`` follows ``cohort_month`` with ``by``)."""


def _check_dimension(by: str | None, columns: list[str]) -> list[str]:
    """The grouping keys of a cohort for ``by``; refuses an unknown dimension or missing column."""
    if by is None:
        return ["cohort"]
    if by not in COHORT_DIMENSIONS:
        raise EngineInputError(
            f"cohorts can be split by {', '.join(COHORT_DIMENSIONS)}, not by {by!r}"
        )
    if by not in columns:
        raise EngineInputError(
            f"cohorts by {by} need a {by} column in the order lines; they have {', '.join(columns)}"
        )
    return ["cohort", by]


def _cohort_cells(orders: nw.LazyFrame[Any], keys: list[str]) -> nw.LazyFrame[Any]:
    """One row per cohort (``keys``) and period: active customers, orders, revenue, cohort size.

    Each order is tagged with its customer's cohort by a window (a hash over customers, no sort
    and no join for plain cohorts), then group-bys count the customers, orders and revenue of
    each cohort and month.
    """
    day = nw.col("order_day")
    if keys == ["cohort"]:
        tagged = orders.with_columns(
            nw.col("order_month").min().over("customer_id").alias("cohort")
        )
    else:
        # The first order decides the dimension: smallest (order_day, order_id), the same rule
        # on every engine whatever order the rows arrive in. Two windows without sorting: the
        # orders of the first day, then the smallest id among them.
        dimensions = keys[1:]
        first_orders = (
            orders.with_columns(day.min().over("customer_id").alias("first_day"))
            .filter(day == nw.col("first_day"))
            .with_columns(nw.col("order_id").min().over("customer_id").alias("first_order_id"))
            .filter(nw.col("order_id") == nw.col("first_order_id"))
            .select(
                "customer_id",
                nw.col("order_month").alias("cohort"),
                *(nw.col(dimension).alias(f"cohort_{dimension}") for dimension in dimensions),
            )
        )
        tagged = orders.join(first_orders, on="customer_id").with_columns(
            nw.col(f"cohort_{dimension}").alias(dimension) for dimension in dimensions
        )
    # Customer-months first, then cells: two hash group-bys cost less than a distinct count.
    customer_months = tagged.group_by(*keys, "order_month", "customer_id").agg(
        nw.len().cast(nw.Int64).alias("orders"),
        nw.col("net_amount").sum().alias("revenue"),
        nw.col("ordered_at").min().alias("month_at"),
    )
    cells = customer_months.group_by(*keys, "order_month").agg(
        nw.len().cast(nw.Int64).alias("active_customers"),
        nw.col("orders").sum(),
        nw.col("revenue").sum(),
        nw.col("month_at").min(),
    )
    # Every customer of a cohort is active in period 0, so the cohort's size is its largest
    # count and its earliest time lies in the cohort month: windows over the few cells, no join
    # back to a table of cohorts.
    return cells.with_columns(
        (nw.col("order_month") - nw.col("cohort")).alias("period"),
        nw.col("active_customers").max().over(*keys).alias("cohort_size"),
        nw.col("month_at").min().over(*keys).dt.truncate("1mo").dt.date().alias("cohort_month"),
    )


def cohort_retention(lines: Any, as_of: dt.date | None = None, by: str | None = None) -> Any:
    """Retention matrix by acquisition month, long and sparse (see the module docstring).

    ``lines`` is an order-lines table of any engine; orders after ``as_of`` (whole day) are left
    out, so periods run up to ``as_of``'s month (``None``: all orders). ``by="channel"`` splits
    each cohort by the channel of the customer's first order.

    Columns :data:`COHORT_RETENTION_COLUMNS`: ``cohort_month`` (date, first day of the month),
    [``channel``], ``period`` (months since the cohort month), ``cohort_size`` (customers),
    ``active_customers`` (cohort customers with a counted order in that month),
    ``retention_rate`` (active / size, 1.0 at period 0), ``orders``, ``revenue`` (net). Only
    rows with active customers; sorted by cohort month, [channel], period.
    """
    prepared, orders = counted_orders(lines, as_of, with_channel=by == "channel")
    keys = _check_dimension(by, prepared.frame.collect_schema().names())
    dimensions = keys[1:]
    result = (
        _cohort_cells(orders, keys)
        .select(
            "cohort_month",
            *dimensions,
            nw.col("period").cast(nw.Int64),
            nw.col("cohort_size").cast(nw.Int64),
            nw.col("active_customers").cast(nw.Int64),
            (nw.col("active_customers") / nw.col("cohort_size")).alias("retention_rate"),
            nw.col("orders").cast(nw.Int64),
            nw.col("revenue").cast(nw.Float64),
        )
        .sort("cohort_month", *dimensions, "period")
    )
    return prepared.output(result)


def cohort_revenue(lines: Any, as_of: dt.date | None = None, by: str | None = None) -> Any:
    """Size and lifetime revenue of each acquisition cohort up to ``as_of``.

    Columns :data:`COHORT_REVENUE_COLUMNS`: ``cohort_month``, [``channel``], ``cohort_size``,
    ``orders`` and ``revenue`` (net) of the cohort's customers from acquisition to ``as_of``,
    ``revenue_per_customer``. One row per cohort, sorted by cohort month [and channel].
    """
    prepared, orders = counted_orders(lines, as_of, with_channel=by == "channel")
    keys = _check_dimension(by, prepared.frame.collect_schema().names())
    dimensions = keys[1:]
    result = (
        _cohort_cells(orders, keys)
        .group_by("cohort_month", *dimensions)
        .agg(
            nw.col("cohort_size").max().cast(nw.Int64),
            nw.col("orders").sum().cast(nw.Int64),
            nw.col("revenue").sum().cast(nw.Float64),
        )
        .with_columns(
            (nw.col("revenue") / nw.col("cohort_size")).alias("revenue_per_customer"),
        )
        .select("cohort_month", *dimensions, *COHORT_REVENUE_COLUMNS[1:])
        .sort("cohort_month", *dimensions)
    )
    return prepared.output(result)
