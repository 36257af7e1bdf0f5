"""The engine's input contract: day numbers, the order table and its reuse by every analysis."""

from __future__ import annotations

import datetime as dt

import narwhals as nw
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from patron.engine import cohorts, kpis, lifecycle, rfm
from patron.engine.frames import (
    ORDER_TABLE_COLUMNS,
    EngineInputError,
    date_day_number,
    day_number,
    month_number,
    month_start,
    order_summary,
)
from tests.engine.data import DEMO_AS_OF, demo_orders, plain_orders


def test_day_and_month_numbers_follow_the_calendar_across_leap_years() -> None:
    # given every day from 1899 to 2101 (1900 and 2100 are not leap years, 2000 is)
    days = [dt.date(1899, 1, 1) + dt.timedelta(days=offset) for offset in range(0, 74_000, 7)]
    frame = pl.DataFrame({"day": days})
    # when the engine numbers them
    numbered = (
        nw.from_native(frame)
        .with_columns(number=day_number(nw.col("day")), month=month_number(nw.col("day")))
        .to_native()
    )
    # then they are the days since 1970-01-01 and the months since year 0 of the calendar
    epoch = dt.date(1970, 1, 1).toordinal()
    assert numbered["number"].to_list() == [day.toordinal() - epoch for day in days]
    assert numbered["month"].to_list() == [day.year * 12 + day.month - 1 for day in days]
    assert [date_day_number(day) for day in days[:50]] == numbered["number"].to_list()[:50]
    assert month_start(2025 * 12 + 10) == dt.date(2025, 11, 1)


def test_the_order_summary_holds_one_row_per_counted_order_with_net_spend() -> None:
    # given the demo shop's order lines, with cancellations, discounts and refunds
    lines = demo_orders(300, 5)
    # when they are summarised into orders
    summary = order_summary(lines)
    # then there is one row per counted order, with the net spend a plain reading gives
    expected = {order.order_id: order for order in plain_orders(lines)}
    assert tuple(summary.columns) == ORDER_TABLE_COLUMNS
    assert summary.height == len(expected)
    for row in summary.iter_rows(named=True):
        order = expected[row["order_id"]]
        assert row["customer_id"] == order.customer_id
        assert row["net_amount"] == pytest.approx(float(order.net), abs=1e-6)


def test_every_analysis_gives_the_same_result_from_the_order_summary() -> None:
    # given order lines, and their order summary built once
    lines = demo_orders(300, 5)
    summary = order_summary(lines)
    start, end = dt.date(2025, 1, 1), dt.date(2025, 3, 31)
    # when each analysis runs on the lines and on the summary
    pairs = [
        (rfm.rfm_table(lines, DEMO_AS_OF), rfm.rfm_table(summary, DEMO_AS_OF)),
        (
            cohorts.cohort_retention(lines, DEMO_AS_OF, by="channel"),
            cohorts.cohort_retention(summary, DEMO_AS_OF, by="channel"),
        ),
        (kpis.loyalty_kpis(lines, start, end), kpis.loyalty_kpis(summary, start, end)),
        (
            lifecycle.lifecycle_stages(lines, DEMO_AS_OF),
            lifecycle.lifecycle_stages(summary, DEMO_AS_OF),
        ),
    ]
    # then the results are equal
    for from_lines, from_summary in pairs:
        assert from_lines.height > 0
        assert_frame_equal(from_lines, from_summary)


def test_order_lines_without_amounts_are_refused_naming_the_columns() -> None:
    # given lines with neither a line total nor quantity and unit price
    lines = pl.DataFrame(
        {"order_id": ["A"], "customer_id": ["1"], "ordered_at": [dt.datetime(2025, 1, 1)]}
    )
    # when they are summarised, then the error names what is missing
    with pytest.raises(EngineInputError, match="line_total column, or quantity and unit_price"):
        order_summary(lines)
