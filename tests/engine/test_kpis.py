"""Loyalty KPIs, their trend and the inter-purchase distribution against plain Python."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from patron.engine.frames import EngineInputError
from patron.engine.kpis import (
    KPI_COLUMNS,
    inter_purchase_distribution,
    kpi_trend,
    loyalty_kpis,
)
from tests.engine.data import (
    DEMO_AS_OF,
    PlainOrder,
    cdnow_lines,
    demo_orders,
    orders_by_customer,
    plain_orders,
)

D = dt.date


@cache
def _cdnow(path: Path) -> tuple[pl.DataFrame, dict[str, list[PlainOrder]]]:
    lines = cdnow_lines(path)
    return lines, orders_by_customer(plain_orders(lines))


@cache
def _demo() -> tuple[pl.DataFrame, dict[str, list[PlainOrder]]]:
    lines = demo_orders(2000, 3)
    return lines, orders_by_customer(plain_orders(lines))


def period_gaps(customers: dict[str, list[PlainOrder]], start: dt.date, end: dt.date) -> list[int]:
    """Days between consecutive orders of a customer, for each later order in the period."""
    return [
        (later.day - earlier.day).days
        for orders in customers.values()
        for earlier, later in itertools.pairwise(orders)
        if start <= later.day <= end
    ]


def expected_kpis(
    customers: dict[str, list[PlainOrder]], start: dt.date, end: dt.date
) -> dict[str, Any]:
    """The KPIs of a period by loops over each customer's counted orders (spec's definitions)."""
    length = end - start + dt.timedelta(days=1)
    previous_start, previous_end = start - length, start - dt.timedelta(days=1)
    period_orders: dict[str, int] = {}
    period_cents: dict[str, int] = {}
    previous_customers: set[str] = set()
    new_customers = 0
    for customer_id, orders in customers.items():
        in_period = [order for order in orders if start <= order.day <= end]
        if in_period:
            period_orders[customer_id] = len(in_period)
            period_cents[customer_id] = sum(int(order.net * 100) for order in in_period)
            if orders[0].day >= start:
                new_customers += 1
        if any(previous_start <= order.day <= previous_end for order in orders):
            previous_customers.add(customer_id)
    active = len(period_orders)
    order_count = sum(period_orders.values())
    cents = sum(period_cents.values())
    retained = len(previous_customers & period_orders.keys())
    retention = retained / len(previous_customers) if previous_customers else None
    ranking = sorted(period_cents.items(), key=lambda item: (-item[1], item[0]))
    top_cents = sum(value for _, value in ranking[: math.ceil(0.2 * active)])
    gaps = period_gaps(customers, start, end)
    return {
        "period_start": start,
        "period_end": end,
        "active_customers": active,
        "new_customers": new_customers,
        "returning_customers": active - new_customers,
        "orders": order_count,
        "revenue": cents / 100,
        "repeat_purchase_rate": (
            sum(1 for count in period_orders.values() if count >= 2) / active if active else None
        ),
        "retention_rate": retention,
        "churn_rate": None if retention is None else 1.0 - retention,
        "purchase_frequency": order_count / active if active else None,
        "average_order_value": cents / 100 / order_count if order_count else None,
        "average_inter_purchase_days": statistics.fmean(gaps) if gaps else None,
        "median_inter_purchase_days": float(statistics.median(gaps)) if gaps else None,
        "top20_revenue_share": top_cents / cents if cents else None,
    }


def assert_kpis_match(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Counts, days and nulls exactly; money to the cent; ratios of float sums to 1e-9."""
    assert list(actual) == list(KPI_COLUMNS)
    for column, value in expected.items():
        if column == "revenue":
            assert round(actual[column], 2) == value, column
        elif isinstance(value, float):
            assert actual[column] == pytest.approx(value, rel=1e-9), column
        else:
            assert actual[column] == value, column


CDNOW_PERIODS = [
    # the first month of the log: everyone is new, no previous period to retain from
    (D(1997, 1, 1), D(1997, 1, 31)),
    (D(1997, 3, 1), D(1997, 5, 31)),
    (D(1997, 10, 15), D(1997, 10, 15)),
    (D(1998, 1, 1), D(1998, 6, 30)),
    # after the log: no one active, the previous half-year's customers all churned
    (D(1998, 7, 1), D(1998, 12, 31)),
    # long after: empty, and so is its previous period
    (D(1999, 1, 1), D(1999, 3, 31)),
]


@pytest.mark.parametrize(("start", "end"), CDNOW_PERIODS)
def test_kpis_of_cdnow_periods_match_plain_python(
    shared_data: Path, start: dt.date, end: dt.date
) -> None:
    # given the CDNOW log and the KPIs of a period computed by loops over its orders
    lines, customers = _cdnow(shared_data)
    expected = expected_kpis(customers, start, end)

    # when the engine computes them
    table = loyalty_kpis(lines, start, end)

    # then there is one row and every figure matches
    assert table.height == 1
    assert_kpis_match(table.row(0, named=True), expected)


def test_kpis_of_the_first_month_have_no_retention(shared_data: Path) -> None:
    lines, _ = _cdnow(shared_data)
    row = loyalty_kpis(lines, D(1997, 1, 1), D(1997, 1, 31)).row(0, named=True)
    assert row["new_customers"] == row["active_customers"] > 0
    assert row["retention_rate"] is None
    assert row["churn_rate"] is None


def test_kpis_of_an_empty_period_are_zeros_and_nulls(shared_data: Path) -> None:
    lines, _ = _cdnow(shared_data)
    row = loyalty_kpis(lines, D(1998, 7, 1), D(1998, 12, 31)).row(0, named=True)
    assert (row["active_customers"], row["orders"], row["revenue"]) == (0, 0, 0.0)
    assert (row["retention_rate"], row["churn_rate"]) == (0.0, 1.0)
    assert row["average_order_value"] is None
    assert row["top20_revenue_share"] is None


DEMO_PERIODS = [
    (D(2023, 6, 1), D(2023, 6, 30)),
    (D(2024, 11, 11), D(2024, 11, 11)),
    (D(2025, 1, 1), D(2025, 3, 31)),
    (D(2025, 5, 1), D(2025, 5, 31)),
]


@pytest.mark.parametrize(("start", "end"), DEMO_PERIODS)
def test_kpis_of_demo_shop_periods_match_plain_python(start: dt.date, end: dt.date) -> None:
    # given the demo shop (cancelled orders, discounts and refunds) and its KPIs in plain Python
    lines, customers = _demo()
    expected = expected_kpis(customers, start, end)

    # when the engine computes them from a lazy frame
    table = loyalty_kpis(lines.lazy(), start, end).collect()

    # then every figure matches
    assert_kpis_match(table.row(0, named=True), expected)
    assert expected["active_customers"] > 0


TREND_PERIODS = {
    "month": (
        D(2024, 10, 15),
        D(2025, 5, 31),
        [
            (D(2024, 10, 15), D(2024, 10, 31)),
            (D(2024, 11, 1), D(2024, 11, 30)),
            (D(2024, 12, 1), D(2024, 12, 31)),
            (D(2025, 1, 1), D(2025, 1, 31)),
            (D(2025, 2, 1), D(2025, 2, 28)),
            (D(2025, 3, 1), D(2025, 3, 31)),
            (D(2025, 4, 1), D(2025, 4, 30)),
            (D(2025, 5, 1), D(2025, 5, 31)),
        ],
    ),
    "week": (
        D(2025, 5, 7),
        D(2025, 5, 31),
        [
            (D(2025, 5, 7), D(2025, 5, 11)),
            (D(2025, 5, 12), D(2025, 5, 18)),
            (D(2025, 5, 19), D(2025, 5, 25)),
            (D(2025, 5, 26), D(2025, 5, 31)),
        ],
    ),
    "quarter": (
        D(2024, 2, 10),
        D(2025, 5, 20),
        [
            (D(2024, 2, 10), D(2024, 3, 31)),
            (D(2024, 4, 1), D(2024, 6, 30)),
            (D(2024, 7, 1), D(2024, 9, 30)),
            (D(2024, 10, 1), D(2024, 12, 31)),
            (D(2025, 1, 1), D(2025, 3, 31)),
            (D(2025, 4, 1), D(2025, 5, 20)),
        ],
    ),
}


@pytest.mark.parametrize("every", list(TREND_PERIODS))
def test_kpi_trend_gives_each_calendar_period_its_kpis(every: str) -> None:
    # given the demo shop and the calendar periods of a range, clipped to it
    lines, customers = _demo()
    start, end, periods = TREND_PERIODS[every]

    # when the engine computes the trend
    table = kpi_trend(lines, start, end, every=every)

    # then there is one row per period, each with that period's KPIs
    assert table.columns == list(KPI_COLUMNS)
    assert table.select("period_start", "period_end").rows() == periods
    for row, (period_start, period_end) in zip(table.iter_rows(named=True), periods, strict=True):
        assert_kpis_match(row, expected_kpis(customers, period_start, period_end))


def test_kpi_trend_of_cdnow_by_month(shared_data: Path) -> None:
    # given the CDNOW log's first half-year
    lines, customers = _cdnow(shared_data)

    # when the engine computes its monthly trend
    table = kpi_trend(lines, D(1997, 1, 1), D(1997, 6, 30))

    # then each month matches
    assert table.height == 6
    for row in table.iter_rows(named=True):
        assert_kpis_match(row, expected_kpis(customers, row["period_start"], row["period_end"]))


BUCKETS = [
    ("0-7", 0, 7),
    ("8-14", 8, 14),
    ("15-30", 15, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    ("181-365", 181, 365),
    (">365", 366, None),
]


def expected_distribution(gaps: Sequence[int]) -> list[tuple[Any, ...]]:
    rows = []
    for label, lower, upper in BUCKETS:
        count = sum(1 for gap in gaps if gap >= lower and (upper is None or gap <= upper))
        rows.append((label, lower, upper, count, count / len(gaps) if gaps else None))
    return rows


@pytest.mark.parametrize(
    ("dataset", "start", "end"),
    [
        ("cdnow", D(1997, 4, 1), D(1997, 12, 31)),
        ("cdnow", D(1998, 7, 1), D(1998, 12, 31)),
        ("demo", D(2024, 6, 1), D(2025, 5, 31)),
    ],
)
def test_inter_purchase_distribution_matches_plain_python(
    request: pytest.FixtureRequest, dataset: str, start: dt.date, end: dt.date
) -> None:
    # given a shop's gaps between consecutive orders whose later order falls in the period
    if dataset == "cdnow":
        lines, customers = _cdnow(request.getfixturevalue("shared_data"))
    else:
        lines, customers = _demo()
    gaps = period_gaps(customers, start, end)

    # when the engine buckets them
    table = inter_purchase_distribution(lines, start, end)

    # then every bucket has its row, count and share
    assert table.columns == ["bucket", "lower_days", "upper_days", "gaps", "share"]
    assert table.rows() == [
        (*row[:4], pytest.approx(row[4], rel=1e-12) if row[4] is not None else None)
        for row in expected_distribution(gaps)
    ]


def test_kpis_and_gaps_count_same_day_orders_as_zero_day_gaps() -> None:
    # given two orders of one customer on one day, after one on the 1st (and a cancelled one)
    lines = pl.DataFrame(
        {
            "order_id": ["a", "b", "c", "d"],
            "customer_id": ["c1", "c1", "c1", "c1"],
            "ordered_at": [D(2025, 1, 1), D(2025, 1, 10), D(2025, 1, 10), D(2025, 1, 5)],
            "line_total": [Decimal("10.00"), Decimal("20.00"), Decimal("30.00"), Decimal("99")],
            "status": ["paid", "paid", "paid", "cancelled"],
        }
    )

    # when the KPIs of the 10th and the distribution of January are computed
    row = loyalty_kpis(lines, D(2025, 1, 10), D(2025, 1, 10)).row(0, named=True)
    buckets = inter_purchase_distribution(lines, D(2025, 1, 1), D(2025, 1, 31))

    # then the gaps are 9 days (to the 1st, the cancelled order does not count) and 0 days
    assert row["average_inter_purchase_days"] == 4.5
    assert row["median_inter_purchase_days"] == 4.5
    assert row["repeat_purchase_rate"] == 1.0
    assert row["top20_revenue_share"] == 1.0
    assert buckets["gaps"].to_list() == [1, 1, 0, 0, 0, 0, 0, 0]


def test_kpis_refuse_a_start_after_the_end() -> None:
    lines, _ = _demo()
    with pytest.raises(EngineInputError, match="starts on 2025-03-01, after its end on 2025-02-01"):
        loyalty_kpis(lines, D(2025, 3, 1), D(2025, 2, 1))
    with pytest.raises(EngineInputError, match=r"2025-03-01.*2025-02-01"):
        kpi_trend(lines, D(2025, 3, 1), D(2025, 2, 1))
    with pytest.raises(EngineInputError, match=r"2025-03-01.*2025-02-01"):
        inter_purchase_distribution(lines, D(2025, 3, 1), D(2025, 2, 1))


def test_kpis_refuse_a_table_without_the_order_columns() -> None:
    lines, _ = _demo()
    with pytest.raises(EngineInputError, match="ordered_at"):
        loyalty_kpis(lines.drop("ordered_at"), D(2025, 1, 1), D(2025, 1, 31))
    with pytest.raises(EngineInputError, match="line_total"):
        loyalty_kpis(lines.drop("unit_price"), D(2025, 1, 1), D(2025, 1, 31))


def test_kpis_refuse_datetimes_and_unknown_steps() -> None:
    lines, _ = _demo()
    with pytest.raises(EngineInputError, match="start must be a date"):
        loyalty_kpis(lines, dt.datetime(2025, 1, 1), D(2025, 1, 31))
    with pytest.raises(EngineInputError, match="'day'"):
        kpi_trend(lines, D(2025, 1, 1), DEMO_AS_OF, every="day")
