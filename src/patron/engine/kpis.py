"""Loyalty KPIs of a period: who bought, who came back, how often, and how much the best gave.

A period is a range of whole days, both ends included. Its previous period is the range of the
same length just before it (for a 30-day period, the 30 days before), which is what retention and
churn compare against. Only counted orders count (cancelled ones do not) and revenue is net of
discounts and refunds (see :func:`patron.engine.frames.order_table`).

Inter-purchase times are the day gaps between consecutive counted orders of a customer, one per
order that has an earlier one; a period holds the gaps whose later order falls in it, even when
the earlier order falls before the period. Two orders on the same day make a gap of 0 days.

Every KPI of a period comes from one table of the orders up to the period's end: a group-by of
it into customers gives the counts, the rates and the top-20% share (one rank), and a window over
the period's own orders gives the gaps (see :func:`_period_tables`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, Literal

import narwhals as nw

from patron.engine.frames import EngineInputError, counted_orders, date_day_number, require_date

KPI_COLUMNS = (
    "period_start",
    "period_end",
    "active_customers",
    "new_customers",
    "returning_customers",
    "orders",
    "revenue",
    "repeat_purchase_rate",
    "retention_rate",
    "churn_rate",
    "purchase_frequency",
    "average_order_value",
    "average_inter_purchase_days",
    "median_inter_purchase_days",
    "top20_revenue_share",
)
"""Columns of :func:`loyalty_kpis` and :func:`kpi_trend`."""

TOP_CUSTOMER_SHARE = 0.2
"""The best customers whose share of revenue ``top20_revenue_share`` gives."""

TrendEvery = Literal["week", "month", "quarter"]

TREND_PERIODS: tuple[TrendEvery, ...] = ("week", "month", "quarter")
"""Calendar periods :func:`kpi_trend` can step by (weeks start on Monday, as ISO 8601)."""

GAP_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-7", 0, 7),
    ("8-14", 8, 14),
    ("15-30", 15, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    ("181-365", 181, 365),
    (">365", 366, None),
)
"""Buckets of :func:`inter_purchase_distribution`: label, first and last day (None: no end)."""


def _check_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The period's first and last day; refuses anything but dates, and a start after the end."""
    first = require_date(start, "start")
    last = require_date(end, "end")
    if first > last:
        raise EngineInputError(f"the period starts on {first}, after its end on {last}")
    return first, last


def _rate(numerator: nw.Expr, denominator: nw.Expr) -> nw.Expr:
    """``numerator / denominator`` as a float, null where the denominator is 0 (nothing to rate)."""
    return nw.when(denominator > 0).then(numerator / denominator)


def _count(condition: nw.Expr) -> nw.Expr:
    """How many rows meet ``condition`` (0 on an empty table, on every engine)."""
    return condition.cast(nw.Int64).sum().fill_null(0)


def _with_gaps(orders: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
    """The orders with ``gap_days``, each order's gap to the customer's previous order.

    One window over every order: it serves all the periods of a trend at once, since an order's
    gap does not depend on the period asked about.
    """
    day = nw.col("order_day")
    return orders.with_columns(
        (day - day.shift(1).over("customer_id", order_by=["order_day"])).alias("gap_days")
    )


def _period_tables(
    orders: nw.LazyFrame[Any], first: dt.date, last: dt.date
) -> tuple[nw.LazyFrame[Any], nw.LazyFrame[Any]]:
    """The customers with an order up to ``last``, with their figures, and the period's gaps.

    ``customers`` has one row per customer: ``first_day`` (first counted order ever),
    ``period_orders``, ``period_revenue`` and ``previous_orders`` (in the previous period of the
    same length). ``gaps`` has ``customer_id, order_day, gap_days`` for each order of the period
    that has an earlier one.

    Where ``orders`` already has ``gap_days`` (:func:`_with_gaps`, a trend) the period's gaps
    are read from it. Otherwise only the period's own orders are sorted: an order's previous one
    is the one before it in the period, or else the customer's last order before the period,
    which a window broadcasts without sorting. That is much cheaper than sorting every order for
    one period. (A join of each customer's last earlier order would do too, but then Polars
    pushes the period filter into one branch, no longer sees the two branches' common input and
    builds the order table twice.) Both ways use only the days, so the order of two orders of
    one day does not matter (their gap is 0 whichever comes first).

    Days after ``last`` are flagged out rather than filtered out, and both tables come from one
    flagged table: an engine that shares common subplans (Polars does) then reads and groups
    the order lines once, however many periods a trend asks for.
    """
    start_day = date_day_number(first)
    end_day = date_day_number(last)
    previous_start_day = start_day - (end_day - start_day + 1)
    day = nw.col("order_day")
    in_period = (day >= start_day) & (day <= end_day)
    has_gaps = "gap_days" in orders.collect_schema().names()
    flagged = orders.select(
        "customer_id",
        "order_day",
        in_period.cast(nw.Int64).alias("in_period"),
        nw.when(in_period).then(nw.col("net_amount")).otherwise(0.0).alias("period_net"),
        ((day >= previous_start_day) & (day < start_day)).cast(nw.Int64).alias("in_previous"),
        nw.when(day <= end_day).then(day).alias("known_day"),
        *(
            []
            if has_gaps
            else [nw.when(day < start_day).then(day).max().over("customer_id").alias("last_before")]
        ),
    )
    customers = (
        flagged.group_by("customer_id")
        .agg(
            nw.col("known_day").min().alias("first_day"),
            nw.col("in_period").sum().alias("period_orders"),
            nw.col("period_net").sum().alias("period_revenue"),
            nw.col("in_previous").sum().alias("previous_orders"),
        )
        .filter(~nw.col("first_day").is_null())
    )
    if has_gaps:
        # Read straight from the shared table, so that every period's plan branches there.
        period_orders = orders.filter(in_period)
    else:
        previous_day = (
            day.shift(1)
            .over("customer_id", order_by=["order_day"])
            .fill_null(nw.col("last_before"))
        )
        period_orders = flagged.filter(nw.col("in_period") == 1).with_columns(
            (day - previous_day).alias("gap_days")
        )
    gaps = period_orders.filter(~nw.col("gap_days").is_null()).select(
        "customer_id", "order_day", nw.col("gap_days").cast(nw.Int64)
    )
    return customers, gaps


def _period_kpis(orders: nw.LazyFrame[Any], first: dt.date, last: dt.date) -> nw.LazyFrame[Any]:
    """One row of :data:`KPI_COLUMNS` for the days ``first`` to ``last`` (both included)."""
    customers, gaps = _period_tables(orders, first, last)
    is_active = nw.col("period_orders") > 0
    was_active = nw.col("previous_orders") > 0
    # Top customers: an ordinal rank by period revenue (inactive customers last), and the count
    # of active customers broadcast to every row through a one-group window, so the top share
    # is a plain sum after it. The sum of the k largest revenues is the same whichever of two
    # equal revenues ranks first, so this gives the share a customer_id tie-break would.
    ranked = customers.with_columns(
        nw.lit(0).alias("everyone"),
        nw.when(is_active)
        .then(nw.col("period_revenue"))
        .otherwise(-1.0)
        .rank(method="ordinal", descending=True)
        .alias("position"),
    ).with_columns(_count(is_active).over("everyone").alias("active_total"))
    in_top = nw.col("position") <= (nw.col("active_total") * TOP_CUSTOMER_SHARE).ceil()
    counts = ranked.select(
        _count(is_active).alias("active_customers"),
        _count(is_active & (nw.col("first_day") >= date_day_number(first))).alias("new_customers"),
        nw.col("period_orders").sum().fill_null(0).cast(nw.Int64).alias("orders"),
        nw.col("period_revenue").sum().fill_null(0.0).cast(nw.Float64).alias("revenue"),
        _count(nw.col("period_orders") >= 2).alias("repeat_customers"),
        _count(was_active).alias("previous_customers"),
        _count(is_active & was_active).alias("retained_customers"),
        nw.when(is_active & in_top)
        .then(nw.col("period_revenue"))
        .otherwise(0.0)
        .sum()
        .fill_null(0.0)
        .alias("top_revenue"),
    )
    gap_figures = gaps.select(
        nw.col("gap_days").cast(nw.Float64).mean().alias("average_inter_purchase_days"),
        nw.col("gap_days").cast(nw.Float64).median().alias("median_inter_purchase_days"),
    )
    active = nw.col("active_customers")
    retention = _rate(nw.col("retained_customers"), nw.col("previous_customers"))
    return counts.join(gap_figures, how="cross").select(
        nw.lit(first, dtype=nw.Date).alias("period_start"),
        nw.lit(last, dtype=nw.Date).alias("period_end"),
        active,
        "new_customers",
        (active - nw.col("new_customers")).alias("returning_customers"),
        "orders",
        "revenue",
        _rate(nw.col("repeat_customers"), active).alias("repeat_purchase_rate"),
        retention.alias("retention_rate"),
        (1.0 - retention).alias("churn_rate"),
        _rate(nw.col("orders"), active).alias("purchase_frequency"),
        _rate(nw.col("revenue"), nw.col("orders")).alias("average_order_value"),
        "average_inter_purchase_days",
        "median_inter_purchase_days",
        _rate(nw.col("top_revenue"), nw.col("revenue")).alias("top20_revenue_share"),
    )


def loyalty_kpis(lines: Any, start: dt.date, end: dt.date) -> Any:
    """Loyalty KPIs of the days ``start`` to ``end`` (both included), as one row.

    Columns :data:`KPI_COLUMNS`: ``active_customers`` (with a counted order in the period),
    ``new_customers`` (first counted order ever in the period), ``returning_customers`` (the
    other active ones), ``orders``, ``revenue`` (net), ``repeat_purchase_rate`` (share of
    active customers with two or more orders in the period), ``retention_rate`` (share of the
    previous period's active customers active again; null when it had none), ``churn_rate``
    (1 - retention), ``purchase_frequency`` (orders per active customer),
    ``average_order_value``, ``average_inter_purchase_days`` and ``median_inter_purchase_days``
    (gaps whose later order falls in the period, see the module docstring),
    ``top20_revenue_share`` (revenue of the best ``ceil(0.2 * active)`` customers by period
    revenue over all revenue). A period without orders gives zeros and nulls, not an error.
    """
    first, last = _check_period(start, end)
    prepared, orders = counted_orders(lines, last, with_channel=False)
    return prepared.output(_period_kpis(orders, first, last))


def _calendar_periods(
    first: dt.date, last: dt.date, every: str
) -> Iterator[tuple[dt.date, dt.date]]:
    """The calendar weeks, months or quarters touching ``first`` to ``last``, clipped to it."""
    if every == "week":
        period_start = first - dt.timedelta(days=first.weekday())
    elif every == "month":
        period_start = first.replace(day=1)
    else:
        period_start = dt.date(first.year, (first.month - 1) // 3 * 3 + 1, 1)
    while period_start <= last:
        if every == "week":
            next_start = period_start + dt.timedelta(days=7)
        else:
            months = 1 if every == "month" else 3
            month_index = period_start.year * 12 + period_start.month - 1 + months
            next_start = dt.date(month_index // 12, month_index % 12 + 1, 1)
        yield max(period_start, first), min(next_start - dt.timedelta(days=1), last)
        period_start = next_start


def kpi_trend(lines: Any, start: dt.date, end: dt.date, every: str = "month") -> Any:
    """:func:`loyalty_kpis` of each calendar ``every`` (week, month, quarter) from start to end.

    One row per period, clipped to ``[start, end]`` (a first or last period may be partial) and
    sorted by ``period_start``; each row is exactly :func:`loyalty_kpis` of its own days, so its
    retention compares with the same number of days just before it. The periods are built in a
    Python loop over the calendar and concatenated into one query: that is fine for the tens of
    periods a dashboard draws, not for thousands.
    """
    if every not in TREND_PERIODS:
        raise EngineInputError(f"KPI trends step by {', '.join(TREND_PERIODS)}, not by {every!r}")
    first, last = _check_period(start, end)
    prepared, orders = counted_orders(lines, last, with_channel=False)
    # Gaps are computed once for all periods, and the periods share that table.
    known = _with_gaps(orders)
    rows = [
        _period_kpis(known, period_first, period_last)
        for period_first, period_last in _calendar_periods(first, last, every)
    ]
    return prepared.output(nw.concat(rows, how="vertical").sort("period_start"))


def inter_purchase_distribution(lines: Any, start: dt.date, end: dt.date) -> Any:
    """How the inter-purchase gaps of a period spread over :data:`GAP_BUCKETS`.

    The gaps are those of :func:`loyalty_kpis` (later order in the period). Columns ``bucket``
    (label), ``lower_days``, ``upper_days`` (null for the open last bucket), ``gaps`` and
    ``share`` (of all the period's gaps; null when it has none). Every bucket has a row, in
    order, even when empty.
    """
    first, last = _check_period(start, end)
    prepared, orders = counted_orders(lines, last, with_channel=False)
    _, gaps = _period_tables(orders, first, last)
    gap = nw.col("gap_days")
    bucket_columns = [f"bucket_{index}" for index in range(len(GAP_BUCKETS))]
    counts = gaps.select(
        nw.len().cast(nw.Int64).alias("all_gaps"),
        *(
            _count((gap >= lower) if upper is None else gap.is_between(lower, upper)).alias(column)
            for column, (_, lower, upper) in zip(bucket_columns, GAP_BUCKETS, strict=True)
        ),
    )
    # One row of counts turned into one row per bucket; the labels and bounds are attached by
    # name, since a Spark session cannot be asked for a literal table of buckets here.
    variable = nw.col("variable")
    label = nw.lit(None, dtype=nw.String)
    lower_days = nw.lit(None, dtype=nw.Int64)
    upper_days = nw.lit(None, dtype=nw.Int64)
    for column, (name, lower, upper) in zip(bucket_columns, GAP_BUCKETS, strict=True):
        is_bucket = variable == column
        label = nw.when(is_bucket).then(nw.lit(name, dtype=nw.String)).otherwise(label)
        lower_days = nw.when(is_bucket).then(nw.lit(lower, dtype=nw.Int64)).otherwise(lower_days)
        upper_days = nw.when(is_bucket).then(nw.lit(upper, dtype=nw.Int64)).otherwise(upper_days)
    result = (
        counts.unpivot(
            on=bucket_columns, index=["all_gaps"], variable_name="variable", value_name="gaps"
        )
        .select(
            label.alias("bucket"),
            lower_days.alias("lower_days"),
            upper_days.alias("upper_days"),
            nw.col("gaps").cast(nw.Int64),
            _rate(nw.col("gaps"), nw.col("all_gaps")).alias("share"),
        )
        .sort("lower_days")
    )
    return prepared.output(result)
