"""Per-customer BTYD summaries (frequency, recency, T, monetary value) of a transaction log.

The definitions of the "buy till you die" literature (Fader, Hardie & Lee 2005), as in
lifetimes' ``summary_data_from_transaction_data``:

* a purchase occasion is one customer's transactions of one **day** (several on a day count
  once, their amounts add up);
* ``frequency`` - repeat occasions: occasions in the calibration period less the first;
* ``recency`` - age of the customer at the last occasion (last less first), 0 without repeats;
* ``T`` - age at the end of the calibration period (its end less the first occasion);
* ``monetary_value`` - mean amount of the repeat occasions (the first is left out, as the
  Gamma-Gamma model wants), 0 without repeats.

Choice of unit: the day is always the unit of collapsing; ``time_unit="W"`` only expresses
the ages in weeks, days / 7. This is the treatment of the papers (the published CDNOW summary
has T = 38.86 weeks = 272 days for a customer who first bought on 1997-01-01), whereas
lifetimes with ``freq="W"`` would also merge purchases of one calendar week and round ages
to whole weeks, losing the within-week timing the models use.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import narwhals as nw

from patron.engine.frames import (
    EngineInputError,
    date_day_number,
    day_number,
    prepare,
    require_date,
)

DAYS_PER_UNIT = {"D": 1.0, "W": 7.0}
"""Days in each supported time unit."""


def rfm_summary(
    transactions: Any,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None = None,
    *,
    observation_end: dt.date,
    calibration_end: dt.date | None = None,
    time_unit: str = "W",
) -> Any:
    """One row per customer with ``customer_id, frequency, recency, T`` (and ``monetary_value``).

    Parameters
    ----------
    transactions
        A native table (Polars, PySpark, ...), one row per transaction; the result has the
        same kind (eager in, eager out).
    customer_id_col, datetime_col
        Columns holding the customer and the date or datetime of the transaction.
    monetary_value_col
        Column holding the transaction's amount; without it no monetary columns are given.
    observation_end
        Last day of the data that counts (whole day); later transactions are ignored.
    calibration_end
        When given, the calibration period ends on this day (whole day): the summary columns
        describe it, and ``frequency_holdout`` (occasions after it, up to
        ``observation_end``), ``monetary_value_holdout`` (their mean amount, 0 without any)
        and ``duration_holdout`` (``observation_end - calibration_end``) are added.
    time_unit
        ``"W"`` (weeks = days / 7) or ``"D"`` (days) for ``recency``, ``T`` and
        ``duration_holdout``.

    Only customers whose first purchase falls on or before the calibration end (the
    observation end without one) are kept; rows are sorted by ``customer_id``. See the module
    docstring for the definitions.
    """
    require_date(observation_end, "observation_end")
    if calibration_end is not None:
        require_date(calibration_end, "calibration_end")
        if calibration_end >= observation_end:
            raise EngineInputError(
                f"calibration_end {calibration_end} must be before observation_end "
                f"{observation_end}"
            )
    if time_unit not in DAYS_PER_UNIT:
        raise EngineInputError(f"time_unit must be 'W' or 'D', got {time_unit!r}")
    unit = DAYS_PER_UNIT[time_unit]
    required = [customer_id_col, datetime_col]
    if monetary_value_col is not None:
        required.append(monetary_value_col)
    prepared = prepare(transactions, required, "transactions")
    end_day = date_day_number(observation_end)
    split_day = date_day_number(calibration_end if calibration_end is not None else observation_end)

    amount = (
        nw.col(monetary_value_col).cast(nw.Float64)
        if monetary_value_col is not None
        else nw.lit(0.0)
    )
    occasions = (
        prepared.frame.select(
            nw.col(customer_id_col).alias("customer_id"),
            day_number(nw.col(datetime_col)).alias("day"),
            amount.alias("amount"),
        )
        .filter(~nw.col("customer_id").is_null() & ~nw.col("day").is_null())
        .filter(nw.col("day") <= end_day)
        .group_by("customer_id", "day")
        .agg(nw.col("amount").sum())
    )
    calibration = occasions.filter(nw.col("day") <= split_day).with_columns(
        nw.col("day").min().over("customer_id").alias("first_day")
    )
    is_repeat = nw.col("day") > nw.col("first_day")
    summary = (
        calibration.group_by("customer_id")
        .agg(
            nw.col("first_day").min(),
            nw.col("day").max().alias("last_day"),
            nw.len().alias("occasions"),
            nw.when(is_repeat).then(nw.col("amount")).otherwise(0.0).sum().alias("repeat_amount"),
        )
        .with_columns((nw.col("occasions") - 1).cast(nw.Float64).alias("frequency"))
        .select(
            "customer_id",
            "frequency",
            ((nw.col("last_day") - nw.col("first_day")).cast(nw.Float64) / unit).alias("recency"),
            ((split_day - nw.col("first_day")).cast(nw.Float64) / unit).alias("T"),
            nw.when(nw.col("frequency") > 0)
            .then(nw.col("repeat_amount") / nw.col("frequency"))
            .otherwise(0.0)
            .alias("monetary_value"),
        )
    )
    output_columns = ["customer_id", "frequency", "recency", "T"]
    if monetary_value_col is not None:
        output_columns.append("monetary_value")
    if calibration_end is not None:
        holdout = (
            occasions.filter(nw.col("day") > split_day)
            .group_by("customer_id")
            .agg(
                nw.len().cast(nw.Float64).alias("frequency_holdout"),
                nw.col("amount").mean().alias("monetary_value_holdout"),
            )
        )
        summary = summary.join(holdout, on="customer_id", how="left").with_columns(
            nw.col("frequency_holdout").fill_null(0.0),
            nw.col("monetary_value_holdout").fill_null(0.0),
            nw.lit((end_day - split_day) / unit, dtype=nw.Float64).alias("duration_holdout"),
        )
        output_columns.append("frequency_holdout")
        if monetary_value_col is not None:
            output_columns.append("monetary_value_holdout")
        output_columns.append("duration_holdout")
    return prepared.output(summary.select(*output_columns).sort("customer_id"))
