"""Lifecycle stage per customer (new, active, at risk, lapsed, reactivated).

How long is "too long without an order" depends on the shop: a grocer's customers come back
weekly, a furniture shop's yearly. So the thresholds come from the shop's own inter-purchase
times (the gaps between a customer's consecutive orders): a customer is at risk once their
silence is longer than three in four of the shop's gaps (the 75th percentile), and lapsed once
it is longer than nearly all of them (the 95th percentile). A new customer is one whose first
order is more recent than the at-risk threshold. Shops override them with
:class:`LifecycleThresholds` when they know better.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import narwhals as nw

from patron.engine.frames import (
    EngineInputError,
    counted_orders,
    date_day_number,
    require_date,
)

LIFECYCLE_STAGES = ("new", "active", "at_risk", "lapsed", "reactivated")
"""Stage codes (display names: analytics/choices.py)."""

GAP_COLUMNS = ("customer_id", "order_day", "gap_days")
STAGE_COLUMNS = (
    "customer_id",
    "lifecycle_stage",
    "recency_days",
    "tenure_days",
    "previous_gap_days",
)

AT_RISK_QUANTILE = 0.75
LAPSED_QUANTILE = 0.95
MINIMUM_GAPS = 30
"""Fewer gaps than this say too little about a shop's rhythm: the defaults apply."""


@dataclass(frozen=True)
class LifecycleThresholds:
    """Days that separate the stages (see :func:`lifecycle_stages`)."""

    new_days: int
    at_risk_days: int
    lapsed_days: int

    def __post_init__(self) -> None:
        for name in ("new_days", "at_risk_days", "lapsed_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise EngineInputError(f"{name} must be a whole number of days >= 0: {value!r}")
        if self.lapsed_days <= self.at_risk_days:
            raise EngineInputError(
                f"lapsed_days ({self.lapsed_days}) must be greater than at_risk_days "
                f"({self.at_risk_days})"
            )


DEFAULT_THRESHOLDS = LifecycleThresholds(new_days=90, at_risk_days=90, lapsed_days=365)
"""Used when a shop has fewer than :data:`MINIMUM_GAPS` gaps: a quarter and a year, the
horizons most retail reporting uses."""


def _gaps(orders: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
    """Each counted order with the gap since the customer's previous one (null for the first),
    its position among the customer's orders and their number."""
    order = ["order_day", "order_id"]
    return orders.with_columns(
        (nw.col("order_day") - nw.col("order_day").shift(1).over("customer_id", order_by=order))
        .cast(nw.Int64)
        .alias("gap_days"),
        nw.col("order_day").cum_count().over("customer_id", order_by=order).alias("position"),
        nw.len().over("customer_id").alias("orders"),
        nw.col("order_day").min().over("customer_id").alias("first_order_day"),
    )


def inter_purchase_gaps(lines: Any, as_of: dt.date) -> Any:
    """Days between each repeat order and the same customer's previous counted order.

    One row per repeat order (columns ``customer_id, order_day, gap_days``), consecutive orders
    taken in order of (order_day, order_id); two orders on one day make a gap of 0. Sorted by
    customer and order. Returns the caller's kind.
    """
    require_date(as_of, "as_of")
    prepared, orders = counted_orders(lines, as_of, with_channel=False)
    gaps = (
        _gaps(orders)
        .filter(~nw.col("gap_days").is_null())
        .sort("customer_id", "order_day", "order_id")
        .select(*GAP_COLUMNS)
    )
    return prepared.output(gaps)


def lifecycle_thresholds(lines: Any, as_of: dt.date) -> LifecycleThresholds:
    """Thresholds derived from the shop's gaps of more than 0 days, up to ``as_of``.

    ``at_risk_days`` is the 75th percentile (linear interpolation) rounded up, ``lapsed_days``
    the 95th rounded up and at least one day more, ``new_days`` equals ``at_risk_days``.
    With fewer than 30 such gaps, :data:`DEFAULT_THRESHOLDS`.
    """
    require_date(as_of, "as_of")
    _, orders = counted_orders(lines, as_of, with_channel=False)
    gap = nw.col("gap_days")
    summary = (
        _gaps(orders)
        .filter(gap > 0)
        .select(
            nw.len().alias("gaps"),
            gap.quantile(AT_RISK_QUANTILE, interpolation="linear").alias("at_risk"),
            gap.quantile(LAPSED_QUANTILE, interpolation="linear").alias("lapsed"),
        )
        .collect()
        .rows(named=True)[0]
    )
    if summary["gaps"] < MINIMUM_GAPS:
        return DEFAULT_THRESHOLDS
    at_risk_days = math.ceil(summary["at_risk"])
    return LifecycleThresholds(
        new_days=at_risk_days,
        at_risk_days=at_risk_days,
        lapsed_days=max(math.ceil(summary["lapsed"]), at_risk_days + 1),
    )


def lifecycle_stages(
    lines: Any, as_of: dt.date, thresholds: LifecycleThresholds | None = None
) -> Any:
    """Lifecycle stage of every customer with a counted order on or before ``as_of``.

    Columns ``customer_id, lifecycle_stage, recency_days, tenure_days, previous_gap_days``
    (the gap before the last order; null for one-order customers), sorted by customer.
    The first rule that holds gives the stage: ``lapsed`` when recency > lapsed_days,
    ``at_risk`` when recency > at_risk_days, ``new`` when tenure <= new_days,
    ``reactivated`` when the gap before the last order > lapsed_days (they had lapsed and came
    back), else ``active``. ``thresholds`` default to :func:`lifecycle_thresholds`.
    """
    require_date(as_of, "as_of")
    if thresholds is None:
        thresholds = lifecycle_thresholds(lines, as_of)
    elif not isinstance(thresholds, LifecycleThresholds):
        raise EngineInputError(
            f"thresholds must be LifecycleThresholds, got {type(thresholds).__name__}"
        )
    prepared, orders = counted_orders(lines, as_of, with_channel=False)
    as_of_day = date_day_number(as_of)
    recency = nw.col("recency_days")
    stage = (
        nw.when(recency > thresholds.lapsed_days)
        .then(nw.lit("lapsed", dtype=nw.String))
        .otherwise(
            nw.when(recency > thresholds.at_risk_days)
            .then(nw.lit("at_risk", dtype=nw.String))
            .otherwise(
                nw.when(nw.col("tenure_days") <= thresholds.new_days)
                .then(nw.lit("new", dtype=nw.String))
                .otherwise(
                    # A null gap (one order) compares as null, which falls through to active.
                    nw.when(nw.col("previous_gap_days").fill_null(-1) > thresholds.lapsed_days)
                    .then(nw.lit("reactivated", dtype=nw.String))
                    .otherwise(nw.lit("active", dtype=nw.String))
                )
            )
        )
    )
    stages = (
        _gaps(orders)
        .filter(nw.col("position") == nw.col("orders"))
        .select(
            nw.col("customer_id"),
            (as_of_day - nw.col("order_day")).alias("recency_days"),
            (as_of_day - nw.col("first_order_day")).alias("tenure_days"),
            nw.col("gap_days").alias("previous_gap_days"),
        )
        .with_columns(stage.alias("lifecycle_stage"))
        .select(*STAGE_COLUMNS)
        .sort("customer_id")
    )
    return prepared.output(stages)
