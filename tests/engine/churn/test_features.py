"""Churn features and labels against a plain-Python reading of a small hand-made shop."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy import integrate, stats

from patron.engine.churn import churn_features, churn_labels
from patron.engine.churn.features import bgnbd_p_no_purchase
from patron.engine.clv import BetaGeoModel, rfm_summary
from patron.engine.frames import EngineInputError, order_summary

AS_OF = dt.date(2025, 6, 30)


def _day(offset: int) -> dt.datetime:
    """A time of day ``offset`` days from AS_OF (negative: before)."""
    return dt.datetime.combine(AS_OF + dt.timedelta(days=offset), dt.time(15, 30))


# (order_id, customer_id, days from AS_OF, line totals, discount, refund, channel, status)
ORDERS: list[tuple[str, str, int, list[float], float, float, str, str]] = [
    ("a1", "A", -200, [60.0, 40.0], 0.0, 0.0, "web", "paid"),
    ("a2", "A", -150, [80.0], 20.0, 0.0, "web", "paid"),
    ("a3", "A", -100, [50.0], 0.0, 50.0, "store", "paid"),
    ("a4", "A", -40, [30.0, 30.0], 0.0, 10.0, "web", "paid"),
    ("a5", "A", -5, [999.0], 0.0, 0.0, "web", "cancelled"),
    ("b1", "B", -10, [25.0], 30.0, 0.0, "app", "paid"),
    ("c1", "C", -300, [100.0], 0.0, 0.0, "store", "paid"),
    ("c2", "C", -280, [120.0], 0.0, 0.0, "store", "paid"),
    ("c3", "C", 5, [70.0], 0.0, 0.0, "store", "paid"),
    ("d1", "D", 3, [40.0], 0.0, 0.0, "web", "paid"),
    ("e1", "E", -80, [10.0], 0.0, 0.0, "web", "paid"),
    ("e2", "E", -20, [15.0], 0.0, 0.0, "app", "paid"),
    ("e3", "E", -20, [5.0], 0.0, 0.0, "app", "paid"),
    ("e4", "E", -170, [40.0], 0.0, 0.0, "web", "paid"),
    ("e5", "E", 90, [40.0], 0.0, 0.0, "web", "paid"),
]


def order_lines(orders: list[tuple[str, str, int, list[float], float, float, str, str]]) -> Any:
    rows: dict[str, list[Any]] = {
        "order_id": [],
        "customer_id": [],
        "ordered_at": [],
        "line_total": [],
        "discount": [],
        "refund_amount": [],
        "channel": [],
        "status": [],
    }
    for order_id, customer, offset, totals, discount, refund, channel, status in orders:
        for total in totals:
            rows["order_id"].append(order_id)
            rows["customer_id"].append(customer)
            rows["ordered_at"].append(_day(offset))
            rows["line_total"].append(total)
            rows["discount"].append(discount)
            rows["refund_amount"].append(refund)
            rows["channel"].append(channel)
            rows["status"].append(status)
    return pl.DataFrame(rows)


def plain_features(
    orders: list[tuple[str, str, int, list[float], float, float, str, str]], as_of_offset: int = 0
) -> dict[str, dict[str, Any]]:
    """The features by loops over the hand-made orders (days counted from AS_OF)."""
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for _, customer, offset, totals, discount, refund, channel, status in orders:
        if status == "cancelled" or offset > as_of_offset:
            continue
        lines = sum(totals)
        gross = max(lines - discount, 0.0)
        net = max(gross - refund, 0.0)
        by_customer.setdefault(customer, []).append(
            {
                "age": as_of_offset - offset,
                "gross": gross,
                "net": net,
                "discount": min(discount, max(lines, 0.0)),
                "refund": gross - net,
                "channel": channel,
            }
        )
    result = {}
    for customer, rows in by_customer.items():
        ages = [row["age"] for row in rows]
        features: dict[str, Any] = {
            "days_since_last_order": min(ages),
            "tenure_days": max(ages),
            "orders": len(rows),
            "net_spend": sum(row["net"] for row in rows),
        }
        features["average_order_value"] = features["net_spend"] / len(rows)
        for days in (90, 180):
            last = [row for row in rows if row["age"] < days]
            before = [row for row in rows if days <= row["age"] < 2 * days]
            spend_last = sum(row["net"] for row in last)
            spend_before = sum(row["net"] for row in before)
            features[f"orders_last_{days}d"] = len(last)
            features[f"orders_prev_{days}d"] = len(before)
            features[f"order_trend_{days}d"] = len(last) - len(before)
            features[f"spend_last_{days}d"] = spend_last
            features[f"spend_prev_{days}d"] = spend_before
            total = spend_last + spend_before
            features[f"spend_recent_share_{days}d"] = spend_last / total if total else None
        purchase_days = sorted(set(ages), reverse=True)
        gaps = [purchase_days[i] - purchase_days[i + 1] for i in range(len(purchase_days) - 1)]
        features["gap_mean_days"] = statistics.fmean(gaps) if gaps else None
        features["gap_std_days"] = statistics.pstdev(gaps) if len(gaps) >= 2 else None
        features["recency_gap_ratio"] = (
            min(ages) / features["gap_mean_days"] if features["gap_mean_days"] else None
        )
        gross = sum(row["gross"] for row in rows)
        discounts = sum(row["discount"] for row in rows)
        features["refund_share"] = sum(row["refund"] for row in rows) / gross if gross else None
        features["discount_share"] = discounts / (gross + discounts) if gross + discounts else None
        channels: dict[str, int] = {}
        for row in rows:
            channels[row["channel"]] = channels.get(row["channel"], 0) + 1
        features["main_channel_share"] = max(channels.values()) / len(rows)
        features["channel_count"] = len(channels)
        result[customer] = features
    return result


def assert_rows_match(frame: pl.DataFrame, expected: Mapping[str, Mapping[str, Any]]) -> None:
    assert frame["customer_id"].to_list() == sorted(expected)
    for row in frame.iter_rows(named=True):
        for name, value in expected[row["customer_id"]].items():
            if value is None:
                assert row[name] is None, (row["customer_id"], name)
            else:
                assert row[name] == pytest.approx(value, abs=1e-9), (row["customer_id"], name)


def test_the_features_are_what_a_plain_reading_of_the_orders_gives() -> None:
    # given a hand-made shop with discounts, refunds, channels, a cancelled order, two
    # orders on one day and orders after the snapshot day
    lines = order_lines(ORDERS)
    # when the features are built as of AS_OF, from the lines and from their order table
    features = churn_features(lines, AS_OF)
    from_summary = churn_features(order_summary(lines), AS_OF)
    # then every feature is the plain computation's, and the order table gives the same
    assert_rows_match(features, plain_features(ORDERS))
    assert_frame_equal(features, from_summary)
    # and customer D, whose only order is after AS_OF, is not there
    assert "D" not in features["customer_id"].to_list()


def test_features_of_an_earlier_snapshot_read_only_what_was_known_then() -> None:
    lines = order_lines(ORDERS)
    features = churn_features(lines, AS_OF - dt.timedelta(days=60))
    assert_rows_match(features, plain_features(ORDERS, as_of_offset=-60))


def test_the_order_table_keeps_the_discount_and_refund_that_took_effect() -> None:
    # given lines whose discount exceeds the order total (b1) and refunds (a3, a4)
    summary = order_summary(order_lines(ORDERS)).sort("order_id")
    amounts = {
        row["order_id"]: (row["discount_amount"], row["refund_amount"])
        for row in summary.iter_rows(named=True)
    }
    assert amounts["a2"] == (20.0, 0.0)
    assert amounts["a3"] == (0.0, 50.0)
    assert amounts["a4"] == (0.0, 10.0)
    assert amounts["b1"] == (25.0, 0.0)
    assert amounts["c1"] == (0.0, 0.0)


def test_changing_orders_after_the_snapshot_day_changes_no_feature() -> None:
    # given the shop, and the same shop with other orders and events after AS_OF
    lines = order_lines(ORDERS)
    later = [
        ("z1", "A", 1, [5000.0], 100.0, 200.0, "phone", "paid"),
        ("z2", "B", 30, [10.0], 0.0, 0.0, "web", "paid"),
        ("z3", "F", 2, [10.0], 0.0, 0.0, "web", "paid"),
    ]
    changed = [order for order in ORDERS if order[2] <= 0] + later
    events = pl.DataFrame(
        {
            "customer_id": ["A", "B", "A"],
            "occurred_at": [_day(-3), _day(-45), _day(-1)],
            "event_type": ["visit", "email_click", "visit"],
        }
    )
    later_events = pl.concat(
        [
            events,
            pl.DataFrame(
                {
                    "customer_id": ["A", "C"],
                    "occurred_at": [_day(1), _day(10)],
                    "event_type": ["visit", "visit"],
                }
            ),
        ]
    )
    # when the features are built as of AS_OF on both
    before = churn_features(lines, AS_OF, events)
    after = churn_features(order_lines(changed), AS_OF, later_events)
    # then they are equal, BG/NBD outputs included
    assert_frame_equal(before, after)


def test_events_add_counts_of_the_last_30_days_and_days_since_the_last() -> None:
    events = pl.DataFrame(
        {
            "customer_id": ["A", "A", "A", "B", "E"],
            "occurred_at": [_day(-3), _day(-29), _day(-30), _day(-45), _day(4)],
            "event_type": ["visit", "visit", "email_click", "visit", "visit"],
        }
    )
    features = churn_features(order_lines(ORDERS), AS_OF, events)
    by_customer = {row["customer_id"]: row for row in features.iter_rows(named=True)}
    # (A-30, A] holds days -29 .. 0: the event 30 days back is outside it
    assert by_customer["A"]["events_last_30d"] == 2
    assert by_customer["A"]["days_since_last_event"] == 3.0
    assert by_customer["B"]["events_last_30d"] == 0
    assert by_customer["B"]["days_since_last_event"] == 45.0
    assert by_customer["C"]["events_last_30d"] == 0
    assert by_customer["C"]["days_since_last_event"] is None
    # E's only event is after AS_OF
    assert by_customer["E"]["days_since_last_event"] is None


def test_labels_say_who_placed_no_counted_order_over_the_horizon() -> None:
    lines = order_lines(ORDERS)
    labels = churn_labels(lines, AS_OF, 90)
    # plain: customers with an order on or before AS_OF; churned without one in (0, 90]
    expected = {}
    for _, customer, offset, _, _, _, _, status in ORDERS:
        if status == "cancelled":
            continue
        if offset <= 0:
            expected.setdefault(customer, True)
    for _, customer, offset, _, _, _, _, status in ORDERS:
        if status != "cancelled" and 0 < offset <= 90 and customer in expected:
            expected[customer] = False
    assert dict(labels.iter_rows()) == expected
    assert expected == {"A": True, "B": True, "C": False, "E": False}
    # a horizon of 4 days stops before C's order on day 5
    assert dict(churn_labels(lines, AS_OF, 4).iter_rows())["C"] is True


def test_bgnbd_probability_of_no_purchase_matches_the_posterior_integral() -> None:
    # given a BG/NBD fitted on simulated customers
    rng = np.random.default_rng(3)
    days = []
    for customer in range(400):
        rate = rng.gamma(0.8, 1 / 20.0)
        start = int(rng.integers(0, 200))
        day, alive = start, True
        days.append((str(customer), start))
        while alive:
            day += int(rng.exponential(1 / rate)) + 1
            if day > 300:
                break
            days.append((str(customer), day))
            alive = rng.random() > 0.3
    transactions = pl.DataFrame(
        {
            "customer_id": [c for c, _ in days],
            "ordered_at": [dt.date(2024, 1, 1) + dt.timedelta(days=d) for _, d in days],
        }
    )
    summary = rfm_summary(
        transactions, "customer_id", "ordered_at", observation_end=dt.date(2024, 10, 27)
    )
    model = BetaGeoModel().fit(summary)
    r, alpha, a, b = (model.params_[name] for name in ("r", "alpha", "a", "b"))
    t = 90 / 7
    computed = bgnbd_p_no_purchase(model, summary, t)
    checked = (0, 1, 2, 5, 8)
    # customers with and without repeat purchases are both among those checked
    assert {summary["frequency"][index] > 0 for index in checked} == {True, False}
    # when the probability is integrated over the prior of (lambda, p) for some customers:
    # lambda in closed form (a gamma integral), p numerically
    for index in checked:
        x, t_x, big_t = (float(summary[name][index]) for name in ("frequency", "recency", "T"))

        def gamma_integral(elapsed: float, x: float = x) -> float:
            # integral of lambda^x e^(-lambda elapsed) over the Gamma(r, alpha) prior
            return math.exp(
                math.lgamma(r + x)
                - math.lgamma(r)
                + r * math.log(alpha)
                - (r + x) * math.log(alpha + elapsed)
            )

        def data_and_silence(
            p: float, silent: bool, x: float = x, t_x: float = t_x, big_t: float = big_t
        ) -> float:
            alive = gamma_integral(big_t + (t if silent else 0.0)) * (1 - p) ** x
            dead = gamma_integral(t_x) * p * (1 - p) ** (x - 1) if x > 0 else 0.0
            return float((alive + dead) * stats.beta.pdf(p, a, b))

        numerator = integrate.quad(lambda p: data_and_silence(p, True), 0, 1, limit=200)[0]
        denominator = integrate.quad(lambda p: data_and_silence(p, False), 0, 1, limit=200)[0]
        # then the closed form is the posterior probability of no purchase in (T, T + t]
        assert computed[index] == pytest.approx(numerator / denominator, rel=1e-6)


def test_a_snapshot_day_must_be_a_date() -> None:
    with pytest.raises(EngineInputError, match="as_of must be a date"):
        churn_features(order_lines(ORDERS), dt.datetime(2025, 6, 30))  # type: ignore[arg-type]
    with pytest.raises(EngineInputError, match="events lacks the column"):
        churn_features(order_lines(ORDERS), AS_OF, pl.DataFrame({"customer_id": ["A"]}))
