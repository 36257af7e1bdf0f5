"""The same RFM, cohorts and KPIs on Polars and on PySpark in local mode, compared row by row.

The engine is written once against Narwhals; these tests run it on one input through both
backends: the demo shop (datetimes, discounts, refunds, cancellations, channels) and a slice of
the CDNOW log (dates). Spark's tables are collected and compared with Polars' in the engine's own
order, counts and days exactly, floats to 1e-9 relative (sums may add up in another order).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest

from patron.engine.cohorts import cohort_retention
from patron.engine.kpis import inter_purchase_distribution, kpi_trend, loyalty_kpis
from patron.engine.rfm import rfm_table
from tests.conftest import SHARED_DATA, require
from tests.engine.data import CDNOW_AS_OF, DEMO_AS_OF, cdnow_lines, demo_orders

D = dt.date

CDNOW_SLICE = "02000"
"""CDNOW customers with ids below this one (about 2,000 of 23,570): real, and quick on Spark."""


@dataclass(frozen=True)
class Pair:
    """One input as a Polars DataFrame and as a Spark DataFrame."""

    polars: pl.DataFrame
    spark: Any
    as_of: dt.date


@pytest.fixture(scope="module")
def demo(spark: Any) -> Pair:
    """The demo shop's order lines, money as floats (Spark reads Decimals from pandas poorly)."""
    lines = demo_orders(2000, 3).select(
        "order_id",
        "customer_id",
        "ordered_at",
        "quantity",
        pl.col("unit_price").cast(pl.Float64),
        "status",
        "channel",
        pl.col("discount").cast(pl.Float64),
        pl.col("refund_amount").cast(pl.Float64),
    )
    from pyspark.sql import functions

    # Shop-local times have no zone: TIMESTAMP_NTZ keeps them as they are, where a plain
    # TIMESTAMP would come back from collect() shifted into this machine's zone.
    frame = spark.createDataFrame(lines.to_pandas())
    frame = frame.withColumn("ordered_at", functions.col("ordered_at").cast("timestamp_ntz"))
    return Pair(lines, frame, DEMO_AS_OF)


@pytest.fixture(scope="module")
def cdnow(spark: Any) -> Pair:
    """A slice of the CDNOW log, ``ordered_at`` a date on both sides."""
    require(SHARED_DATA.is_dir(), f"public datasets not found at {SHARED_DATA}")
    from pyspark.sql import functions

    lines = cdnow_lines(SHARED_DATA).filter(pl.col("customer_id") < CDNOW_SLICE)
    frame = spark.createDataFrame(lines.to_pandas())
    frame = frame.withColumn("ordered_at", functions.to_date("ordered_at"))
    return Pair(lines, frame, CDNOW_AS_OF)


def assert_same_rows(on_polars: pl.DataFrame, on_spark: Any) -> None:
    """The same columns and rows in the same order; floats equal to 1e-9 relative."""
    assert on_spark.columns == on_polars.columns
    spark_rows = [tuple(row) for row in on_spark.collect()]
    polars_rows = on_polars.rows()
    assert len(spark_rows) == len(polars_rows)
    for polars_row, spark_row in zip(polars_rows, spark_rows, strict=True):
        expected = tuple(
            pytest.approx(value, rel=1e-9) if isinstance(value, float) else value
            for value in polars_row
        )
        assert spark_row == expected


def run_both(pair: Pair, compute: Callable[[Any], Any]) -> None:
    on_polars = compute(pair.polars)
    assert on_polars.height > 0
    assert_same_rows(on_polars, compute(pair.spark))


@pytest.mark.parametrize("dataset", ["demo", "cdnow"])
def test_rfm_is_the_same_on_spark(request: pytest.FixtureRequest, dataset: str) -> None:
    pair: Pair = request.getfixturevalue(dataset)
    run_both(pair, lambda lines: rfm_table(lines, pair.as_of))


@pytest.mark.parametrize(("dataset", "by"), [("demo", "channel"), ("cdnow", None)])
def test_cohort_retention_is_the_same_on_spark(
    request: pytest.FixtureRequest, dataset: str, by: str | None
) -> None:
    pair: Pair = request.getfixturevalue(dataset)
    run_both(pair, lambda lines: cohort_retention(lines, pair.as_of, by=by))


@pytest.mark.parametrize(
    ("dataset", "start", "end"),
    [("demo", D(2025, 1, 1), D(2025, 3, 31)), ("cdnow", D(1997, 3, 1), D(1997, 5, 31))],
)
def test_loyalty_kpis_are_the_same_on_spark(
    request: pytest.FixtureRequest, dataset: str, start: dt.date, end: dt.date
) -> None:
    pair: Pair = request.getfixturevalue(dataset)
    run_both(pair, lambda lines: loyalty_kpis(lines, start, end))


def test_kpi_trend_is_the_same_on_spark(demo: Pair) -> None:
    # two periods, the first clipped: each period is a branch of one Spark query
    run_both(demo, lambda lines: kpi_trend(lines, D(2025, 4, 10), D(2025, 5, 31), every="month"))


def test_inter_purchase_distribution_is_the_same_on_spark(cdnow: Pair) -> None:
    run_both(cdnow, lambda lines: inter_purchase_distribution(lines, D(1997, 4, 1), D(1998, 6, 30)))
