"""Behavioural segments: k-means on per-customer behaviour, k chosen by silhouette, each segment
profiled and named.

RFM cuts customers on fixed grids; k-means lets the shop's own data say which groups exist.
Spend and frequency are long-tailed, so the features are log-scaled (``log1p``) and then
standardised, lest a few big spenders make every other difference invisible. The number of
segments is the k with the best mean silhouette (Rousseeuw 1987, J. Comput. Appl. Math. 20,
53-65) over a range, on a seeded sample for large shops.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import narwhals as nw
import numpy as np
import numpy.typing as npt
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits  # no stubs

from patron.engine.frames import EngineInputError, counted_orders, prepare, require_date
from patron.engine.rfm import customer_summary

FEATURE_COLUMNS = (
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "average_order_value",
    "tenure_days",
    "refund_share",
)
"""Columns of :func:`behaviour_features`; ``distinct_products`` follows when lines name their
product."""

ASSIGNMENT_COLUMNS = ("customer_id", "behaviour_segment", "behaviour_segment_name")

# Naming: a segment's mean against the mean over all customers (ratio), thresholds below.
ONE_TIME_FREQUENCY = 1.5
"""A segment whose customers average fewer orders than this is mostly one-time buyers."""
HIGH_RATIO = 1.5
LOW_RATIO = 0.75
LAPSED_RATIO = 1.5
RECENT_RATIO = 0.5

SINGLE_THREAD_BELOW = 100_000
"""Below this many customers k-means and the silhouette run on one thread: on small data
OpenMP's start-up and spinning cost more than they save (measured on 2 shared cores: 17,580
customers, k=8, n_init=10 took 1.56 s on all threads and 0.28 s on one)."""

_STATUS_NAMES = {"lapsed": ("Lapsed", "流失的"), "recent": ("Recent", "近期活跃的"), "": ("", "")}
_FREQUENCY_NAMES = {
    "frequent": ("frequent", "高频"),
    "regular": ("regular", "中频"),
    "occasional": ("occasional", "低频"),
    "one_time": ("one-time", "一次性"),
}
_SPEND_NAMES = {
    "big": ("big spenders", "高消费客户"),
    "mid": ("mid spenders", "中等消费客户"),
    "small": ("small spenders", "低消费客户"),
}


@dataclass(frozen=True)
class SegmentProfile:
    """One behavioural segment: its size, share of customers and revenue, feature means."""

    segment: int
    name: str
    name_zh: str
    size: int
    share: float
    revenue_share: float
    means: dict[str, float]


@dataclass(frozen=True)
class BehaviourSegmentation:
    """The chosen segmentation: ``k`` segments, the silhouette of every k tried, each
    customer's segment (``assignments``: customer_id, behaviour_segment, behaviour_segment_name)
    and a profile per segment, segment 0 spending most."""

    k: int
    silhouette_by_k: dict[int, float]
    assignments: Any
    profiles: list[SegmentProfile]
    features: tuple[str, ...]


def behaviour_features(lines: Any, as_of: dt.date) -> Any:
    """Per-customer behaviour up to ``as_of``: the input of :func:`behaviour_segments`.

    Columns :data:`FEATURE_COLUMNS`: RFM's recency, frequency, net spend, average order value
    and tenure, and ``refund_share`` (the part of the customer's spend after discounts that was
    refunded); plus ``distinct_products`` (products bought in counted orders) when the lines
    have a ``product_id``. Sorted by customer; the caller's kind.
    """
    require_date(as_of, "as_of")
    prepared, orders = counted_orders(lines, as_of, with_channel=False)
    gross = nw.col("gross_monetary")
    features = customer_summary(orders, as_of).select(
        "customer_id",
        "recency_days",
        "frequency",
        "monetary",
        (nw.col("monetary") / nw.col("frequency")).alias("average_order_value"),
        "tenure_days",
        nw.when(gross > 0)
        .then((gross - nw.col("monetary")) / gross)
        .otherwise(nw.lit(0.0))
        .alias("refund_share"),
    )
    columns = list(FEATURE_COLUMNS)
    if "product_id" in prepared.frame.collect_schema().names():
        products = (
            prepared.frame.select(
                nw.col("order_id").cast(nw.String), nw.col("product_id").cast(nw.String)
            )
            .join(orders.select("order_id", "customer_id"), on="order_id", how="inner")
            .group_by("customer_id")
            .agg(nw.col("product_id").n_unique().cast(nw.Int64).alias("distinct_products"))
        )
        features = features.join(products, on="customer_id", how="left").with_columns(
            nw.col("distinct_products").fill_null(0)
        )
        columns.append("distinct_products")
    return prepared.output(features.select(*columns).sort("customer_id"))


def scaled_features(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Log-scale (sign-preserving ``log1p``) then standardise each column (a constant column
    becomes 0): the space k-means and the silhouette work in."""
    logged = np.sign(values) * np.log1p(np.abs(values))
    spread = logged.std(axis=0)
    centred = logged - logged.mean(axis=0)
    return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)


def _name(means: dict[str, float], overall: dict[str, float]) -> tuple[str, str]:
    """English and Chinese name of a segment from its means against the overall means."""

    def ratio(column: str) -> float:
        return means[column] / overall[column] if overall[column] > 0 else 1.0

    status = (
        "lapsed"
        if ratio("recency_days") >= LAPSED_RATIO
        else "recent"
        if ratio("recency_days") <= RECENT_RATIO
        else ""
    )
    if means["frequency"] < ONE_TIME_FREQUENCY:
        frequency = "one_time"
    elif ratio("frequency") >= HIGH_RATIO:
        frequency = "frequent"
    elif ratio("frequency") >= LOW_RATIO:
        frequency = "regular"
    else:
        frequency = "occasional"
    spend = (
        "big"
        if ratio("monetary") >= HIGH_RATIO
        else "mid"
        if ratio("monetary") >= LOW_RATIO
        else "small"
    )
    english = " ".join(
        word
        for word in (
            _STATUS_NAMES[status][0],
            _FREQUENCY_NAMES[frequency][0],
            _SPEND_NAMES[spend][0],
        )
        if word
    )
    chinese = _STATUS_NAMES[status][1] + _FREQUENCY_NAMES[frequency][1] + _SPEND_NAMES[spend][1]
    return english[0].upper() + english[1:], chinese


ALL_CUSTOMERS = ("All customers", "全部客户")
"""Name of the one segment of a shop whose customers cannot be split (English, Chinese)."""


def behaviour_segments(
    features: Any,
    k_values: Iterable[int] = range(3, 9),
    random_state: int = 0,
    silhouette_sample: int = 10_000,
    single_when_unsplittable: bool = False,
) -> BehaviourSegmentation:
    """Segment customers by behaviour: k-means on the log-scaled, standardised numeric columns
    of ``features`` (:func:`behaviour_features` or any per-customer table with ``customer_id``
    and ``monetary``), for each k of ``k_values`` (scikit-learn ``KMeans``, ``n_init=10``,
    seeded by ``random_state``), keeping the k with the highest mean silhouette (on a seeded
    sample of ``silhouette_sample`` customers when there are more; ties go to the smaller k).

    Segments are numbered by descending mean spend (0 spends most) and named from their
    profile (e.g. "Frequent big spenders" / "高频高消费客户"; a repeated name gets " #n").
    ``assignments`` comes back as a Polars DataFrame (a LazyFrame for a Polars LazyFrame in):
    the model is fitted in-process, whatever engine computed the features.

    Too few customers for any k, or customers too alike to split, raise
    :class:`EngineInputError`; with ``single_when_unsplittable`` they become one segment
    (k = 1, named "All customers"), so that a young shop's other analyses still run.
    """
    prepared = prepare(features, ("customer_id", "monetary"), "behaviour features")
    schema = prepared.frame.collect_schema()
    columns = tuple(
        name for name, dtype in schema.items() if name != "customer_id" and dtype.is_numeric()
    )
    table = prepared.frame.select("customer_id", *columns).sort("customer_id").collect("polars")
    if table["monetary"].null_count() or any(table[c].null_count() for c in columns):
        raise EngineInputError("behaviour features must not be null")
    values = table.select(columns).to_numpy().astype(np.float64)
    count = values.shape[0]
    candidates = sorted({int(k) for k in k_values if 2 <= int(k) < count})
    if not candidates and not single_when_unsplittable:
        raise EngineInputError(
            f"no k to try: k must be at least 2 and less than the {count} customers"
        )
    scaled = scaled_features(values)
    sample = silhouette_sample if count > silhouette_sample else None
    silhouette_by_k: dict[int, float] = {}
    labels_by_k: dict[int, npt.NDArray[np.int64]] = {}
    with threadpool_limits(limits=1 if count < SINGLE_THREAD_BELOW else None):
        for k in candidates:
            model = KMeans(n_clusters=k, n_init=10, random_state=random_state)
            labels = model.fit_predict(scaled)
            if np.unique(labels).shape[0] < 2:
                continue  # identical customers: fewer distinct groups than asked for
            silhouette_by_k[k] = float(
                silhouette_score(scaled, labels, sample_size=sample, random_state=random_state)
            )
            labels_by_k[k] = labels.astype(np.int64)
    if silhouette_by_k:
        best_k = max(silhouette_by_k, key=lambda k: (silhouette_by_k[k], -k))
        raw_labels = labels_by_k[best_k]
    elif single_when_unsplittable:
        best_k, raw_labels = 1, np.zeros(count, dtype=np.int64)
    else:
        raise EngineInputError("the customers' behaviour does not split into two or more groups")
    monetary = values[:, columns.index("monetary")]
    clusters = sorted(
        np.unique(raw_labels), key=lambda label: (-monetary[raw_labels == label].mean(), label)
    )
    segment_of = {int(label): segment for segment, label in enumerate(clusters)}
    segments = np.array([segment_of[int(label)] for label in raw_labels], dtype=np.int64)
    overall = {column: float(values[:, i].mean()) for i, column in enumerate(columns)}
    total_revenue = float(monetary.sum())
    profiles: list[SegmentProfile] = []
    seen: set[str] = set()
    for segment in range(len(clusters)):
        members = segments == segment
        means = {column: float(values[members, i].mean()) for i, column in enumerate(columns)}
        name, name_zh = _name(means, overall) if best_k > 1 else ALL_CUSTOMERS
        if name in seen:
            name, name_zh = f"{name} #{segment}", f"{name_zh} #{segment}"
        seen.add(name)
        profiles.append(
            SegmentProfile(
                segment=segment,
                name=name,
                name_zh=name_zh,
                size=int(members.sum()),
                share=float(members.mean()),
                revenue_share=float(monetary[members].sum() / total_revenue)
                if total_revenue > 0
                else 0.0,
                means=means,
            )
        )
    names = [profiles[segment].name for segment in segments]
    assignments = nw.from_dict(
        {
            "customer_id": table["customer_id"].to_list(),
            "behaviour_segment": segments.tolist(),
            "behaviour_segment_name": names,
        },
        schema={
            "customer_id": nw.String(),
            "behaviour_segment": nw.Int64(),
            "behaviour_segment_name": nw.String(),
        },
        backend="polars",
    )
    native = assignments.to_native()
    is_polars_lazy = not prepared.is_eager and prepared.frame.implementation.is_polars()
    return BehaviourSegmentation(
        k=best_k,
        silhouette_by_k=silhouette_by_k,
        assignments=native.lazy() if is_polars_lazy else native,
        profiles=profiles,
        features=columns,
    )
