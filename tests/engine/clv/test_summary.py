"""rfm_summary: the BTYD summary of a transaction log, checked against the published CDNOW one."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from patron.engine.clv.summary import rfm_summary
from patron.engine.frames import EngineInputError
from tests.engine.clv.data import (
    CALIBRATION_END,
    OBSERVATION_END,
    cdnow_holdout_purchases,
    cdnow_sample_rows,
    cdnow_sample_transactions,
    cdnow_summary_rows,
)


def _as_published(value: float) -> Decimal:
    """Two decimals, halves rounded up, as the published file is (22.345 -> 22.35)."""
    return Decimal(repr(round(value, 9))).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_cdnow_sample_reproduces_the_published_calibration_summary(shared_data: Path) -> None:
    # given the raw CDNOW sample and the published 39-week summary
    transactions = cdnow_sample_transactions(shared_data)
    published = {
        row[0]: (
            row[1],
            Decimal(f"{row[2]:.2f}"),
            Decimal(f"{row[3]:.2f}"),
            Decimal(f"{row[4]:.2f}"),
        )
        for row in cdnow_summary_rows(shared_data)
    }

    # when it is summarised with the calibration end of the papers
    summary = rfm_summary(
        transactions,
        "customer_id",
        "ordered_at",
        "dollar_value",
        observation_end=OBSERVATION_END,
        calibration_end=CALIBRATION_END,
    )

    # then every customer's x, t_x, T and zbar equal the file's
    computed = {
        row["customer_id"]: (
            int(row["frequency"]),
            _as_published(row["recency"]),
            _as_published(row["T"]),
            _as_published(row["monetary_value"]),
        )
        for row in summary.iter_rows(named=True)
    }
    assert len(computed) == 2357
    assert computed == published


def test_cdnow_holdout_columns_count_the_days_after_the_calibration_end(shared_data: Path) -> None:
    # given the raw sample, and in plain Python each customer's holdout days and their spend
    transactions = cdnow_sample_transactions(shared_data)
    spend_by_day: dict[tuple[int, dt.date], float] = {}
    for sample_id, _, day, _, dollars in cdnow_sample_rows(shared_data):
        if CALIBRATION_END < day <= OBSERVATION_END:
            spend_by_day[(sample_id, day)] = spend_by_day.get((sample_id, day), 0.0) + dollars
    expected_counts = cdnow_holdout_purchases(shared_data)

    # when summarised with a calibration end
    summary = rfm_summary(
        transactions,
        "customer_id",
        "ordered_at",
        "dollar_value",
        observation_end=OBSERVATION_END,
        calibration_end=CALIBRATION_END,
    )

    # then the holdout frequency is the number of days, the monetary value their mean spend
    for row in summary.iter_rows(named=True):
        customer = row["customer_id"]
        amounts = [spend for (owner, _), spend in spend_by_day.items() if owner == customer]
        assert row["frequency_holdout"] == expected_counts[customer]
        assert row["monetary_value_holdout"] == pytest.approx(
            sum(amounts) / len(amounts) if amounts else 0.0, rel=1e-12
        )
        assert row["duration_holdout"] == 39.0
    assert summary["frequency_holdout"].sum() == 1882


def test_days_unit_and_several_purchases_in_one_day_count_once() -> None:
    # given a customer with two purchases on the first day, one a week later, one after the end
    transactions = pl.DataFrame(
        {
            "customer": ["c1", "c1", "c1", "c1", "c2"],
            "at": [
                dt.datetime(2024, 1, 1, 9),
                dt.datetime(2024, 1, 1, 18),
                dt.datetime(2024, 1, 8, 12),
                dt.datetime(2024, 2, 1, 12),
                dt.datetime(2024, 1, 5, 12),
            ],
            "amount": [10.0, 5.0, 30.0, 99.0, 7.0],
        }
    )

    # when summarised in days up to 2024-01-10 (lazily: lazy in, lazy out)
    summary = rfm_summary(
        transactions.lazy(),
        "customer",
        "at",
        "amount",
        observation_end=dt.date(2024, 1, 10),
        time_unit="D",
    ).collect()

    # then the first day is one occasion, its spend is left out of the repeat mean
    assert summary.to_dicts() == [
        {"customer_id": "c1", "frequency": 1.0, "recency": 7.0, "T": 9.0, "monetary_value": 30.0},
        {"customer_id": "c2", "frequency": 0.0, "recency": 0.0, "T": 5.0, "monetary_value": 0.0},
    ]


def test_customers_first_seen_after_the_calibration_end_are_left_out() -> None:
    # given one customer who first buys in the holdout
    transactions = pl.DataFrame(
        {
            "customer": [1, 2],
            "day": [dt.date(2024, 1, 1), dt.date(2024, 1, 20)],
        }
    )

    # when summarised with a calibration end between their first purchases, without amounts
    summary = rfm_summary(
        transactions,
        "customer",
        "day",
        observation_end=dt.date(2024, 1, 29),
        calibration_end=dt.date(2024, 1, 15),
    )

    # then only the first customer is there, and no monetary column
    assert summary.to_dicts() == [
        {
            "customer_id": 1,
            "frequency": 0.0,
            "recency": 0.0,
            "T": 2.0,
            "frequency_holdout": 0.0,
            "duration_holdout": 2.0,
        }
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"customer_id_col": "client"}, "lacks the column(s) client"),
        ({"time_unit": "M"}, "time_unit must be 'W' or 'D'"),
        ({"calibration_end": dt.date(2024, 3, 1)}, "must be before observation_end"),
        ({"observation_end": "2024-01-31"}, "observation_end must be a date"),
    ],
)
def test_bad_arguments_are_refused(arguments: dict[str, object], message: str) -> None:
    # given a valid transactions table
    transactions = pl.DataFrame({"customer": [1], "day": [dt.date(2024, 1, 1)]})
    call: dict[str, object] = {
        "customer_id_col": "customer",
        "datetime_col": "day",
        "observation_end": dt.date(2024, 1, 31),
    }
    call.update(arguments)

    # when / then one argument is wrong: a clear error
    with pytest.raises(EngineInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rfm_summary(transactions, **call)  # type: ignore[arg-type]


def test_spark_gives_the_polars_summary(shared_data: Path, spark: Any) -> None:
    # given the CDNOW sample as a Polars frame and as a Spark frame
    transactions = cdnow_sample_transactions(shared_data).select(
        "customer_id", "ordered_at", "dollar_value"
    )
    spark_transactions = spark.createDataFrame(transactions.to_pandas())
    arguments: dict[str, Any] = {
        "customer_id_col": "customer_id",
        "datetime_col": "ordered_at",
        "monetary_value_col": "dollar_value",
        "observation_end": OBSERVATION_END,
        "calibration_end": CALIBRATION_END,
    }

    # when both are summarised
    on_polars = rfm_summary(transactions, **arguments)
    on_spark = pl.from_pandas(rfm_summary(spark_transactions, **arguments).toPandas())

    # then the rows agree: counts and days exactly (weeks are days / 7, which the two
    # engines may divide in another way), mean spend to 1e-9
    assert on_spark["customer_id"].to_list() == on_polars["customer_id"].to_list()
    for column in ("frequency", "frequency_holdout"):
        assert on_spark[column].to_list() == on_polars[column].to_list(), column
    for column in ("recency", "T", "duration_holdout"):
        days_on_spark = [round(weeks * 7, 9) for weeks in on_spark[column]]
        assert days_on_spark == [round(weeks * 7, 9) for weeks in on_polars[column]], column
    for column in ("monetary_value", "monetary_value_holdout"):
        assert on_spark[column].to_list() == pytest.approx(on_polars[column].to_list(), rel=1e-9)
