"""Lifecycle gaps, thresholds and stages against plain-Python computations."""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from pathlib import Path

import polars as pl
import pytest

from patron.engine.frames import EngineInputError, date_day_number
from patron.engine.lifecycle import (
    DEFAULT_THRESHOLDS,
    LIFECYCLE_STAGES,
    LifecycleThresholds,
    inter_purchase_gaps,
    lifecycle_stages,
    lifecycle_thresholds,
)
from tests.engine.data import (
    CDNOW_AS_OF,
    DEMO_AS_OF,
    PlainOrder,
    cdnow_lines,
    demo_orders,
    orders_by_customer,
    plain_orders,
)


def plain_gaps(lines: pl.DataFrame, as_of: dt.date) -> list[tuple[str, int, int]]:
    """(customer, order day number, days since the previous order) of every repeat order,
    in order of customer, day and order id."""
    gaps = []
    customers = orders_by_customer(plain_orders(lines, as_of))
    for customer_id in sorted(customers):
        for previous, order in itertools.pairwise(customers[customer_id]):
            gaps.append((customer_id, date_day_number(order.day), (order.day - previous.day).days))
    return gaps


def plain_thresholds(gaps: list[int]) -> tuple[int, int, int]:
    """The spec's rule, with the statistics module's linear ('inclusive') percentiles."""
    positive = [gap for gap in gaps if gap > 0]
    percentiles = statistics.quantiles(positive, n=100, method="inclusive")
    at_risk = math.ceil(percentiles[74])
    return at_risk, at_risk, max(math.ceil(percentiles[94]), at_risk + 1)


def plain_stage(orders: list[PlainOrder], as_of: dt.date, limits: LifecycleThresholds) -> str:
    recency = (as_of - orders[-1].day).days
    tenure = (as_of - orders[0].day).days
    previous_gap = (orders[-1].day - orders[-2].day).days if len(orders) > 1 else None
    if recency > limits.lapsed_days:
        return "lapsed"
    if recency > limits.at_risk_days:
        return "at_risk"
    if tenure <= limits.new_days:
        return "new"
    if previous_gap is not None and previous_gap > limits.lapsed_days:
        return "reactivated"
    return "active"


def test_gaps_and_thresholds_of_the_cdnow_log(shared_data: Path) -> None:
    # given the CDNOW log
    lines = cdnow_lines(shared_data)

    # when its gaps and thresholds are computed
    gaps = inter_purchase_gaps(lines, CDNOW_AS_OF)
    thresholds = lifecycle_thresholds(lines, CDNOW_AS_OF)

    # then the gaps are the plain ones, one per repeat order, and so are the thresholds
    expected = plain_gaps(lines, CDNOW_AS_OF)
    assert gaps.columns == ["customer_id", "order_day", "gap_days"]
    assert gaps.rows() == expected
    assert len(expected) == 67_591 - 23_570  # orders less first orders
    at_risk, new, lapsed = plain_thresholds([gap for _, _, gap in expected])
    assert thresholds == LifecycleThresholds(new_days=new, at_risk_days=at_risk, lapsed_days=lapsed)


def test_stages_of_the_demo_shop_follow_the_rules_in_order() -> None:
    # given the demo shop, with its thresholds derived from its own gaps
    lines = demo_orders(2000, 13)
    expected_gaps = plain_gaps(lines, DEMO_AS_OF)
    at_risk, new, lapsed = plain_thresholds([gap for _, _, gap in expected_gaps])
    limits = LifecycleThresholds(new_days=new, at_risk_days=at_risk, lapsed_days=lapsed)

    # when stages are computed with the derived thresholds
    result = lifecycle_stages(lines, DEMO_AS_OF)

    # then each customer's stage, recency, tenure and previous gap are the plain ones
    assert lifecycle_thresholds(lines, DEMO_AS_OF) == limits
    customers = orders_by_customer(plain_orders(lines, DEMO_AS_OF))
    assert result["customer_id"].to_list() == sorted(customers)
    for row in result.iter_rows(named=True):
        orders = customers[row["customer_id"]]
        assert row["lifecycle_stage"] == plain_stage(orders, DEMO_AS_OF, limits)
        assert row["recency_days"] == (DEMO_AS_OF - orders[-1].day).days
        assert row["tenure_days"] == (DEMO_AS_OF - orders[0].day).days
        previous_gap = (orders[-1].day - orders[-2].day).days if len(orders) > 1 else None
        assert row["previous_gap_days"] == previous_gap
    # and the demo shop has customers in every stage
    assert set(result["lifecycle_stage"]) == set(LIFECYCLE_STAGES)


def test_thresholds_can_be_overridden() -> None:
    # given the demo shop and a shop owner's own thresholds
    lines = demo_orders(300, 13)
    limits = LifecycleThresholds(new_days=30, at_risk_days=60, lapsed_days=120)

    # when stages are computed with them
    result = lifecycle_stages(lines, DEMO_AS_OF, limits)

    # then the rules apply those thresholds
    customers = orders_by_customer(plain_orders(lines, DEMO_AS_OF))
    stages = {row[0]: row[1] for row in result.select("customer_id", "lifecycle_stage").rows()}
    assert stages == {c: plain_stage(o, DEMO_AS_OF, limits) for c, o in customers.items()}


def test_a_small_shop_falls_back_to_default_thresholds() -> None:
    # given 29 gaps of 10 days (one customer, 30 orders) and a same-day second order
    days = [dt.date(2024, 1, 1) + dt.timedelta(days=10 * i) for i in range(30)]
    lines = pl.DataFrame(
        {
            "order_id": [f"o{i:02d}" for i in range(30)] + ["o99"],
            "customer_id": ["a"] * 30 + ["a"],
            "ordered_at": [*days, days[-1]],
            "line_total": [5.0] * 31,
        }
    )

    # when the thresholds are derived
    thresholds = lifecycle_thresholds(lines, dt.date(2025, 1, 1))

    # then 29 positive gaps are too few (the same-day one is not counted): the defaults
    assert thresholds == DEFAULT_THRESHOLDS == LifecycleThresholds(90, 90, 365)
    gaps = inter_purchase_gaps(lines, dt.date(2025, 1, 1))
    assert gaps["gap_days"].to_list() == [10] * 29 + [0]


def test_gaps_of_orders_on_one_day_follow_the_order_ids() -> None:
    # given a customer with two orders on one day and one later
    lines = pl.DataFrame(
        {
            "order_id": ["b", "a", "c"],
            "customer_id": ["x", "x", "x"],
            "ordered_at": [dt.datetime(2025, 1, 1, 9), dt.datetime(2025, 1, 1, 18), None],
            "line_total": [1.0, 1.0, 1.0],
        }
    ).with_columns(pl.col("ordered_at").fill_null(dt.datetime(2025, 1, 8, 7)))

    # when the gaps and the stage are computed
    gaps = inter_purchase_gaps(lines, dt.date(2025, 1, 31))
    stages = lifecycle_stages(lines, dt.date(2025, 1, 31), LifecycleThresholds(5, 10, 30))

    # then the second order of the day follows the first by 0 days, the next by 7
    day = date_day_number(dt.date(2025, 1, 1))
    assert gaps.rows() == [("x", day, 0), ("x", day + 7, 7)]
    assert stages.rows() == [("x", "at_risk", 23, 30, 7)]


def test_a_lazy_frame_gives_lazy_frames() -> None:
    lines = demo_orders(300, 13)
    gaps = inter_purchase_gaps(lines.lazy(), DEMO_AS_OF)
    stages = lifecycle_stages(lines.lazy(), DEMO_AS_OF, DEFAULT_THRESHOLDS)
    assert isinstance(gaps, pl.LazyFrame)
    assert isinstance(stages, pl.LazyFrame)
    assert gaps.collect().rows() == plain_gaps(lines, DEMO_AS_OF)
    assert stages.collect().height == len(orders_by_customer(plain_orders(lines, DEMO_AS_OF)))


def test_bad_input_is_refused_with_a_clear_message() -> None:
    lines = demo_orders(300, 13)
    with pytest.raises(EngineInputError, match="as_of must be a date, got str"):
        lifecycle_stages(lines, "2025-06-01")  # type: ignore[arg-type]
    with pytest.raises(EngineInputError, match="lacks the column\\(s\\) ordered_at"):
        inter_purchase_gaps(lines.drop("ordered_at"), DEMO_AS_OF)
    with pytest.raises(EngineInputError, match="lapsed_days \\(30\\) must be greater"):
        LifecycleThresholds(new_days=30, at_risk_days=60, lapsed_days=30)
    with pytest.raises(EngineInputError, match="thresholds must be LifecycleThresholds"):
        lifecycle_stages(lines, DEMO_AS_OF, (90, 90, 365))  # type: ignore[arg-type]
