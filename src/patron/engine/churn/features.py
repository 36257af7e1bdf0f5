"""Churn features and labels of one snapshot: what was known of each customer at a day.

Every feature of :func:`churn_features` reads only counted orders (and events) on or before
the snapshot day ``as_of`` (the whole day counts), so that a model trained on an older
snapshot sees exactly what it will see when it scores today's customers. Days are counted
with :func:`patron.engine.frames.day_number`; a "purchase day" is one customer's orders of one
day (several orders on one day count once for the gaps, as the BTYD models count them).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import narwhals as nw
import numpy as np
import polars as pl

from patron.engine.clv import BetaGeoModel, ModelFitError, rfm_summary
from patron.engine.frames import (
    EngineInputError,
    counted_orders,
    date_day_number,
    day_number,
    prepare,
    require_date,
)

BGNBD_TIME_UNIT = "W"
"""Time unit of the BG/NBD fit of each snapshot: weeks (days / 7), the unit of the papers;
the day stays the unit of collapsing purchases (see ``rfm_summary``)."""

DAYS_PER_WEEK = 7.0

EVENT_COLUMNS = ("customer_id", "occurred_at", "event_type")
"""Columns an events table must have."""

BASE_FEATURES = (
    "days_since_last_order",
    "tenure_days",
    "orders",
    "net_spend",
    "average_order_value",
    "orders_last_90d",
    "orders_prev_90d",
    "order_trend_90d",
    "spend_last_90d",
    "spend_prev_90d",
    "spend_recent_share_90d",
    "orders_last_180d",
    "orders_prev_180d",
    "order_trend_180d",
    "spend_last_180d",
    "spend_prev_180d",
    "spend_recent_share_180d",
    "gap_mean_days",
    "gap_std_days",
    "recency_gap_ratio",
    "refund_share",
    "discount_share",
)
"""Features every snapshot has (see :func:`churn_features`)."""

CHANNEL_FEATURES = ("main_channel_share", "channel_count")
"""Features present when some order has a channel."""

EVENT_FEATURES = ("events_last_30d", "days_since_last_event")
"""Features present when an events table is given."""

BGNBD_FEATURES = ("bgnbd_p_alive", "bgnbd_expected_purchases", "bgnbd_p_no_purchase")
"""Features from the BG/NBD model fitted on the snapshot (null where the fit fails)."""


def order_summary_of(orders: Any) -> pl.DataFrame:
    """All counted orders of order lines or of an order table, as a Polars order table."""
    return snapshot_orders(orders, None)


def snapshot_orders(orders: Any, as_of: dt.date | None) -> pl.DataFrame:
    """Counted orders on or before ``as_of`` as a Polars frame (order lines or an order table)."""
    _, table = counted_orders(orders, as_of)
    collected = table.collect()
    native = collected.to_native()
    if isinstance(native, pl.DataFrame):
        return native
    return pl.from_arrow(collected.to_arrow())  # type: ignore[return-value]


def churn_features(
    orders: Any, as_of: dt.date, events: Any = None, *, horizon_days: int = 90
) -> pl.DataFrame:
    """One row per customer with a counted order on or before ``as_of``: the churn features.

    Parameters
    ----------
    orders
        Order lines or the order table of :func:`patron.engine.frames.order_summary`
        (``customer_id, order_id, ordered_at, order_day, ..., net_amount, discount_amount,
        refund_amount``); Polars (eager or lazy) or anything Narwhals reads.
    as_of
        The snapshot day; only orders and events on or before it (whole day) are read.
    events
        Optional table of ``customer_id, occurred_at, event_type`` (site visits, e-mail
        clicks ...); adds :data:`EVENT_FEATURES`.
    horizon_days
        Horizon of the BG/NBD expected purchases and P(no purchase) features.

    Returns
    -------
    polars.DataFrame
        ``customer_id`` and, with ``A`` the snapshot day:

        * ``days_since_last_order`` (A - last order day), ``tenure_days`` (A - first order
          day), ``orders``, ``net_spend``, ``average_order_value`` (net spend / orders);
        * ``orders_last_90d`` / ``spend_last_90d`` on days (A-90, A], ``orders_prev_90d`` /
          ``spend_prev_90d`` on (A-180, A-90], the trend ``order_trend_90d`` (last - prev)
          and ``spend_recent_share_90d`` (last / (last + prev), null when both are 0); the
          same over 180 days;
        * ``gap_mean_days`` and ``gap_std_days`` (population standard deviation) of the gaps
          between consecutive purchase days (null with fewer than 1 and 2 gaps),
          ``recency_gap_ratio`` = days since last / mean gap;
        * ``refund_share`` = refunds / gross spend, ``discount_share`` = discounts /
          (gross + discounts) (null when the denominator is 0; 0 where the data has no
          refunds or discounts);
        * when some order has a channel: ``main_channel_share`` (share of the orders in the
          customer's most used channel) and ``channel_count``;
        * with events: ``events_last_30d`` (events on (A-30, A]) and
          ``days_since_last_event`` (null without any);
        * ``bgnbd_p_alive``, ``bgnbd_expected_purchases`` (over ``horizon_days``) and
          ``bgnbd_p_no_purchase`` (probability of no purchase over ``horizon_days``) from a
          :class:`~patron.engine.clv.BetaGeoModel` fitted on this snapshot (weeks); null
          when the fit fails (for instance nobody has bought twice).

        Sorted by ``customer_id``.
    """
    require_date(as_of, "as_of")
    if horizon_days < 1:
        raise EngineInputError(f"horizon_days must be at least 1, got {horizon_days}")
    table = snapshot_orders(orders, as_of)
    end = date_day_number(as_of)
    frame = table.with_columns(
        pl.col("order_day").cast(pl.Int64),
        (end - pl.col("order_day").cast(pl.Int64)).alias("age"),
    )
    features = frame.group_by("customer_id").agg(
        (end - pl.col("order_day").max()).alias("days_since_last_order"),
        (end - pl.col("order_day").min()).alias("tenure_days"),
        pl.len().alias("orders"),
        pl.col("net_amount").sum().alias("net_spend"),
        pl.col("gross_amount").sum().alias("gross_spend"),
        pl.col("refund_amount").sum().alias("refunds"),
        pl.col("discount_amount").sum().alias("discounts"),
        *_window_aggregations(90),
        *_window_aggregations(180),
    )
    features = features.with_columns(
        (pl.col("net_spend") / pl.col("orders")).alias("average_order_value"),
        *_trend_columns(90),
        *_trend_columns(180),
        _share(pl.col("refunds"), pl.col("gross_spend")).alias("refund_share"),
        _share(pl.col("discounts"), pl.col("gross_spend") + pl.col("discounts")).alias(
            "discount_share"
        ),
    )
    features = features.join(_gap_features(frame), on="customer_id", how="left").with_columns(
        pl.when(pl.col("gap_mean_days") > 0)
        .then(pl.col("days_since_last_order") / pl.col("gap_mean_days"))
        .otherwise(None)
        .alias("recency_gap_ratio")
    )
    columns = ["customer_id", *BASE_FEATURES]
    if (table["channel"] != "").any():
        features = features.join(_channel_features(table), on="customer_id", how="left")
        columns += CHANNEL_FEATURES
    if events is not None:
        features = features.join(
            _event_features(events, as_of), on="customer_id", how="left"
        ).with_columns(pl.col("events_last_30d").fill_null(0))
        columns += EVENT_FEATURES
    features = features.join(_bgnbd_features(table, as_of, horizon_days), on="customer_id")
    columns += BGNBD_FEATURES
    integer_columns = {"orders", "orders_last_90d", "orders_prev_90d", "orders_last_180d"}
    integer_columns |= {"orders_prev_180d", "channel_count", "events_last_30d"}
    return features.select(
        pl.col("customer_id"),
        *(
            pl.col(name).cast(pl.Int64 if name in integer_columns else pl.Float64)
            for name in columns[1:]
        ),
    ).sort("customer_id")


def _share(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
    return pl.when(whole > 0).then(part / whole).otherwise(None)


def _window_aggregations(days: int) -> list[pl.Expr]:
    # Ages (A - day) 0 .. days-1 are the last `days` days; days .. 2*days-1 the ones before.
    last = pl.col("age") < days
    before = (pl.col("age") >= days) & (pl.col("age") < 2 * days)
    return [
        # Counts as Int64: Polars sums booleans as UInt32, whose difference would wrap around.
        last.sum().cast(pl.Int64).alias(f"orders_last_{days}d"),
        before.sum().cast(pl.Int64).alias(f"orders_prev_{days}d"),
        pl.col("net_amount").filter(last).sum().alias(f"spend_last_{days}d"),
        pl.col("net_amount").filter(before).sum().alias(f"spend_prev_{days}d"),
    ]


def _trend_columns(days: int) -> list[pl.Expr]:
    last, before = pl.col(f"spend_last_{days}d"), pl.col(f"spend_prev_{days}d")
    return [
        (pl.col(f"orders_last_{days}d") - pl.col(f"orders_prev_{days}d")).alias(
            f"order_trend_{days}d"
        ),
        _share(last, last + before).alias(f"spend_recent_share_{days}d"),
    ]


def _gap_features(frame: pl.DataFrame) -> pl.DataFrame:
    gaps = (
        frame.select("customer_id", "order_day")
        .unique()
        .sort("customer_id", "order_day")
        .with_columns(pl.col("order_day").diff().over("customer_id").alias("gap"))
        .drop_nulls("gap")
    )
    return gaps.group_by("customer_id").agg(
        pl.col("gap").mean().cast(pl.Float64).alias("gap_mean_days"),
        pl.when(pl.len() >= 2)
        .then(pl.col("gap").cast(pl.Float64).std(ddof=0))
        .otherwise(None)
        .alias("gap_std_days"),
    )


def _channel_features(table: pl.DataFrame) -> pl.DataFrame:
    counts = (
        table.filter(pl.col("channel") != "")
        .group_by("customer_id", "channel")
        .agg(pl.len().alias("channel_orders"))
    )
    totals = table.group_by("customer_id").agg(pl.len().alias("all_orders"))
    return (
        counts.group_by("customer_id")
        .agg(
            pl.col("channel_orders").max().alias("main_orders"),
            pl.len().alias("channel_count"),
        )
        .join(totals, on="customer_id")
        .select(
            "customer_id",
            (pl.col("main_orders") / pl.col("all_orders")).alias("main_channel_share"),
            "channel_count",
        )
    )


def _event_features(events: Any, as_of: dt.date) -> pl.DataFrame:
    prepared = prepare(events, EVENT_COLUMNS, "events")
    end = date_day_number(as_of)
    table = (
        prepared.frame.select(
            nw.col("customer_id").cast(nw.String),
            day_number(nw.col("occurred_at")).alias("day"),
        )
        .filter(~nw.col("customer_id").is_null() & (nw.col("day") <= end))
        .collect()
    )
    native = table.to_native()
    events_frame = native if isinstance(native, pl.DataFrame) else pl.from_arrow(table.to_arrow())
    assert isinstance(events_frame, pl.DataFrame)
    return events_frame.group_by("customer_id").agg(
        (pl.col("day") > end - 30).sum().cast(pl.Int64).alias("events_last_30d"),
        (end - pl.col("day").max()).cast(pl.Float64).alias("days_since_last_event"),
    )


def _bgnbd_features(table: pl.DataFrame, as_of: dt.date, horizon_days: int) -> pl.DataFrame:
    summary = rfm_summary(
        table.select("customer_id", "ordered_at", "net_amount"),
        "customer_id",
        "ordered_at",
        observation_end=as_of,
        time_unit=BGNBD_TIME_UNIT,
    )
    assert isinstance(summary, pl.DataFrame)
    customers = summary.select("customer_id")
    if summary.height == 0:
        return customers.with_columns(
            pl.lit(None, dtype=pl.Float64).alias(c) for c in BGNBD_FEATURES
        )
    horizon = horizon_days / DAYS_PER_WEEK
    model = BetaGeoModel()
    try:
        model.fit(summary)
    except (ModelFitError, EngineInputError, FloatingPointError):
        # Too little data for the snapshot's BG/NBD fit (a handful of customers, nobody
        # with a repeat purchase): the features stay null and the classifier works without.
        return customers.with_columns(
            pl.lit(None, dtype=pl.Float64).alias(c) for c in BGNBD_FEATURES
        )
    p_alive = model.p_alive(summary)
    expected = model.expected_purchases(horizon, summary)
    p_none = bgnbd_p_no_purchase(model, summary, horizon)
    values = {"bgnbd_p_alive": p_alive, "bgnbd_expected_purchases": expected}
    values["bgnbd_p_no_purchase"] = p_none
    if not all(np.all(np.isfinite(array)) for array in values.values()):
        return customers.with_columns(
            pl.lit(None, dtype=pl.Float64).alias(c) for c in BGNBD_FEATURES
        )
    return customers.with_columns(pl.Series(name, array) for name, array in values.items())


def bgnbd_p_no_purchase(model: BetaGeoModel, summary: pl.DataFrame, t: float) -> np.ndarray:
    r"""P(no purchase in the next ``t`` time units) of each customer under a fitted BG/NBD.

    A customer dead at T never buys again. One alive at T has the posterior rate
    :math:`\lambda \mid \text{alive} \sim \Gamma(r + x, \alpha + T)` (the likelihood of the
    purchases and of surviving them is :math:`\lambda^x e^{-\lambda T} (1 - p)^x`, so
    :math:`\lambda` and :math:`p` separate), and since BG/NBD drops customers out only right
    after a purchase, the next purchase waits an exponential time of rate :math:`\lambda`:

    .. math::

        P(Y(t) = 0) = 1 - P(\text{alive}) + P(\text{alive})
            \left(\frac{\alpha + T}{\alpha + T + t}\right)^{r + x}

    (Fader, Hardie & Lee 2005, section 4, with the posterior of their eq. 10).
    """
    columns = model.columns(summary)
    r = model.params_["r"]
    alpha = model.params_["alpha"]
    p_alive = model.p_alive(summary)
    x, big_t = columns["frequency"], columns["T"]
    survive = np.exp((r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + t)))
    return np.asarray(1.0 - p_alive + p_alive * survive, dtype=np.float64)


def churn_labels(orders: Any, as_of: dt.date, horizon_days: int) -> pl.DataFrame:
    """Whether each customer of the snapshot ``as_of`` churned over the next ``horizon_days``.

    One row per customer with a counted order on or before ``as_of`` (the customers of
    :func:`churn_features`): ``customer_id`` and ``churned``, true when the customer has no
    counted order on the days (as_of, as_of + horizon_days]. Sorted by ``customer_id``.
    """
    require_date(as_of, "as_of")
    if horizon_days < 1:
        raise EngineInputError(f"horizon_days must be at least 1, got {horizon_days}")
    table = snapshot_orders(orders, as_of + dt.timedelta(days=horizon_days))
    end = date_day_number(as_of)
    return (
        table.group_by("customer_id")
        .agg(
            (pl.col("order_day") <= end).any().alias("is_customer"),
            (pl.col("order_day") > end).any().alias("bought"),
        )
        .filter(pl.col("is_customer"))
        .select("customer_id", (~pl.col("bought")).alias("churned"))
        .sort("customer_id")
    )
