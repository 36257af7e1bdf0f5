"""Behaviour features and k-means segments against plain computations on the demo shop."""

from __future__ import annotations

import datetime as dt
import math
import statistics
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import silhouette_score

from patron.engine.frames import EngineInputError
from patron.engine.segments import FEATURE_COLUMNS, behaviour_features, behaviour_segments
from tests.engine.data import DEMO_AS_OF, demo_orders, orders_by_customer, plain_orders

K_VALUES = range(3, 7)


def plain_features(lines: pl.DataFrame, as_of: dt.date) -> dict[str, dict[str, float]]:
    """The features by loops over the rows."""
    counted = plain_orders(lines, as_of)
    counted_ids = {order.order_id for order in counted}
    products: dict[str, set[str]] = {}
    for row in lines.iter_rows(named=True):
        if row["order_id"] in counted_ids:
            products.setdefault(row["customer_id"], set()).add(row["product_id"])
    features = {}
    for customer_id, orders in orders_by_customer(counted).items():
        net = sum((order.net for order in orders), Decimal(0))
        gross = sum((order.gross for order in orders), Decimal(0))
        features[customer_id] = {
            "recency_days": (as_of - orders[-1].day).days,
            "frequency": len(orders),
            "monetary": float(net),
            "average_order_value": float(net / len(orders)),
            "tenure_days": (as_of - orders[0].day).days,
            "refund_share": float((gross - net) / gross) if gross > 0 else 0.0,
            "distinct_products": len(products[customer_id]),
        }
    return features


def test_features_of_the_demo_shop_match_a_plain_computation() -> None:
    # given the demo shop's lines, with refunds, cancellations and products
    lines = demo_orders(2000, 19)

    # when its behaviour features are computed
    result = behaviour_features(lines, DEMO_AS_OF)

    # then each customer's features are the plain ones
    expected = plain_features(lines, DEMO_AS_OF)
    assert result.columns == [*FEATURE_COLUMNS, "distinct_products"]
    assert result["customer_id"].to_list() == sorted(expected)
    for row in result.iter_rows(named=True):
        want = expected[row["customer_id"]]
        for column, value in want.items():
            assert row[column] == pytest.approx(value, rel=1e-9, abs=1e-9), column
    assert 0 < sum(1 for row in expected.values() if row["refund_share"] > 0) < len(expected)


def scaled(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """log1p, then z-scores with the population deviation, written out column by column."""
    columns = []
    for column in values.T:
        logged = [math.log1p(value) for value in column]
        mean = statistics.fmean(logged)
        deviation = statistics.pstdev(logged)
        columns.append([(value - mean) / deviation if deviation else 0.0 for value in logged])
    return np.array(columns).T


def test_segments_of_the_demo_shop() -> None:
    # given the demo shop's behaviour features
    features = behaviour_features(demo_orders(2000, 19), DEMO_AS_OF)

    # when segmented with k from 3 to 6
    result = behaviour_segments(features, k_values=K_VALUES, random_state=7)

    # then k is the one with the best silhouette of those tried
    assert sorted(result.silhouette_by_k) == list(K_VALUES)
    assert result.silhouette_by_k[result.k] == max(result.silhouette_by_k.values())
    # and that silhouette is scikit-learn's over the log-scaled, standardised features
    columns = [c for c in features.columns if c != "customer_id"]
    assert result.features == tuple(columns)
    values = features.select(columns).to_numpy().astype(float)
    space = scaled(values)
    assignments = result.assignments
    assert assignments.columns == ["customer_id", "behaviour_segment", "behaviour_segment_name"]
    assert assignments["customer_id"].to_list() == features["customer_id"].to_list()
    labels = assignments["behaviour_segment"].to_numpy()
    assert silhouette_score(space, labels) == pytest.approx(result.silhouette_by_k[result.k])
    # and every customer is nearest the centre of their own segment (k-means converged)
    centres = np.array([space[labels == segment].mean(axis=0) for segment in range(result.k)])
    distances = ((space[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    assert (distances.argmin(axis=1) == labels).all()

    # and the profiles are plain recomputations, segment 0 spending most
    profiles = result.profiles
    assert [profile.segment for profile in profiles] == list(range(result.k))
    assert sum(profile.size for profile in profiles) == features.height
    total = features["monetary"].sum()
    previous_spend = math.inf
    for profile in profiles:
        members = features.filter(pl.Series(labels == profile.segment))
        assert profile.size == members.height
        assert profile.share == pytest.approx(members.height / features.height)
        assert profile.revenue_share == pytest.approx(members["monetary"].sum() / total)
        for column in columns:
            assert profile.means[column] == pytest.approx(statistics.fmean(members[column]))
        assert profile.means["monetary"] < previous_spend
        previous_spend = profile.means["monetary"]
        named = assignments.filter(pl.col("behaviour_segment") == profile.segment)
        assert set(named["behaviour_segment_name"]) == {profile.name}
    assert len({profile.name for profile in profiles}) == result.k
    assert len({profile.name_zh for profile in profiles}) == result.k


def test_names_describe_the_profile() -> None:
    # given the demo shop's segments
    features = behaviour_features(demo_orders(2000, 19), DEMO_AS_OF)
    result = behaviour_segments(features, k_values=K_VALUES, random_state=7)
    overall = {c: statistics.fmean(features[c]) for c in ("monetary", "frequency", "recency_days")}

    # then each name says what its means say, against the means of all customers
    for profile in result.profiles:
        spend = profile.means["monetary"] / overall["monetary"]
        if spend >= 1.5:
            assert "big spenders" in profile.name
            assert "高消费" in profile.name_zh
        elif spend < 0.75:
            assert "small spenders" in profile.name
            assert "低消费" in profile.name_zh
        if profile.means["frequency"] < 1.5:
            assert "one-time" in profile.name.lower()
            assert "一次性" in profile.name_zh
        elif profile.means["frequency"] / overall["frequency"] >= 1.5:
            assert profile.name.startswith(("Frequent", "Lapsed frequent", "Recent frequent"))
        if profile.means["recency_days"] / overall["recency_days"] >= 1.5:
            assert profile.name.startswith("Lapsed")
            assert profile.name_zh.startswith("流失的")
    # the best segment of the demo shop is its frequent big spenders
    assert result.profiles[0].name == "Frequent big spenders"
    assert result.profiles[0].name_zh == "高频高消费客户"


def test_a_lazy_frame_gives_lazy_features_and_assignments() -> None:
    lines = demo_orders(300, 19)
    features = behaviour_features(lines.lazy(), DEMO_AS_OF)
    assert isinstance(features, pl.LazyFrame)
    collected = features.collect()
    assert collected["customer_id"].to_list() == sorted(plain_features(lines, DEMO_AS_OF))
    result = behaviour_segments(features, k_values=[3], random_state=1)
    assert isinstance(result.assignments, pl.LazyFrame)
    assert result.assignments.collect().height == collected.height


def test_bad_segment_inputs_are_refused() -> None:
    features = behaviour_features(demo_orders(300, 19), DEMO_AS_OF)
    with pytest.raises(EngineInputError, match="lacks the column\\(s\\) monetary"):
        behaviour_segments(features.drop("monetary"))
    with pytest.raises(EngineInputError, match="no k to try"):
        behaviour_segments(features.head(3), k_values=[3, 4])
    with pytest.raises(EngineInputError, match="as_of must be a date, got str"):
        behaviour_features(demo_orders(300, 19), "2025-06-01")  # type: ignore[arg-type]


def test_customers_too_few_to_split_can_become_one_segment() -> None:
    # given the features of three customers: no k from 3 up can be tried
    features = behaviour_features(demo_orders(300, 19), DEMO_AS_OF).head(3)
    # when a single segment is allowed
    result = behaviour_segments(features, k_values=[3, 4], single_when_unsplittable=True)
    # then everyone is in segment 0, "All customers", holding all the revenue
    assert result.k == 1
    assert result.silhouette_by_k == {}
    assert result.assignments["behaviour_segment"].to_list() == [0, 0, 0]
    assert set(result.assignments["behaviour_segment_name"]) == {"All customers"}
    (profile,) = result.profiles
    assert (profile.name, profile.name_zh, profile.size, profile.share) == (
        "All customers",
        "全部客户",
        3,
        1.0,
    )
    assert profile.revenue_share == pytest.approx(1.0)
    assert profile.means["monetary"] == pytest.approx(features["monetary"].mean())
