"""The CDNOW sample of the BTYD papers (2,357 customers), read in plain Python for CLV tests.

Fader, Hardie & Lee (2005) calibrate on the first 39 weeks (1997-01-01 to 1997-09-30: a
customer who first bought on 1997-01-01 has T = 272 days = 38.86 weeks in the published
summary) and forecast the next 39 weeks (1997-10-01 to 1998-06-30). A purchase occasion is
one customer's rows of one day. Time is in weeks = days / 7.

Loaders:

* :func:`cdnow_summary` - the published calibration summary as a Polars frame with the model
  columns ``customer_id, frequency, recency, T, monetary_value`` (what every model's ``fit``
  reads);
* :func:`cdnow_sample_transactions` - the raw sample as a transactions frame
  (``customer_id, master_id, ordered_at, number_of_cds, dollar_value``), the input of
  ``rfm_summary``;
* :func:`cdnow_holdout_purchases` - each customer's actual repeat purchases (distinct days) in
  the 39-week holdout, counted by loops over the raw rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from functools import cache
from pathlib import Path

import polars as pl

CALIBRATION_END = dt.date(1997, 9, 30)
OBSERVATION_END = dt.date(1998, 6, 30)
HOLDOUT_WEEKS = 39.0
"""1997-10-01 to 1998-06-30: 273 days."""


@cache
def _summary_rows(path: Path) -> tuple[tuple[int, int, float, float, float], ...]:
    rows = []
    with path.open(encoding="ascii", newline="") as file_in:
        for record in csv.DictReader(file_in):
            rows.append(
                (
                    int(record["ID"]),
                    int(record["x"]),
                    float(record["t_x"]),
                    float(record["T"]),
                    float(record["zbar"]),
                )
            )
    return tuple(rows)


def cdnow_summary_rows(shared_data: Path) -> tuple[tuple[int, int, float, float, float], ...]:
    """The published summary's rows: (sample id, x, t_x, T, zbar), as in the file."""
    return _summary_rows(shared_data / "cdnow" / "cdnow_customers_summary_with_transactions.csv")


def cdnow_summary(shared_data: Path) -> pl.DataFrame:
    """The published 39-week calibration summary in the models' column names.

    ``customer_id`` is the sample id (1 to 2,357), ``frequency = x``, ``recency = t_x``,
    ``T``, ``monetary_value = zbar`` (0 for customers without a repeat purchase).
    """
    rows = cdnow_summary_rows(shared_data)
    return pl.DataFrame(
        {
            "customer_id": [row[0] for row in rows],
            "frequency": [float(row[1]) for row in rows],
            "recency": [row[2] for row in rows],
            "T": [row[3] for row in rows],
            "monetary_value": [row[4] for row in rows],
        },
        schema={
            "customer_id": pl.Int64,
            "frequency": pl.Float64,
            "recency": pl.Float64,
            "T": pl.Float64,
            "monetary_value": pl.Float64,
        },
    )


@cache
def _sample_rows(path: Path) -> tuple[tuple[int, str, dt.date, int, float], ...]:
    rows = []
    with path.open(encoding="ascii") as lines_in:
        for line in lines_in:
            if not line.strip():
                continue
            master_id, sample_id, day, cds, dollars = line.split()
            ordered = dt.date(int(day[:4]), int(day[4:6]), int(day[6:]))
            rows.append((int(sample_id), master_id, ordered, int(cds), float(dollars)))
    return tuple(rows)


def cdnow_sample_rows(shared_data: Path) -> tuple[tuple[int, str, dt.date, int, float], ...]:
    """The raw sample's rows: (sample id, master id, day, number_of_cds, dollar_value)."""
    return _sample_rows(shared_data / "cdnow" / "CDNOW_sample.txt")


def cdnow_sample_transactions(shared_data: Path) -> pl.DataFrame:
    """The raw CDNOW sample as a transactions table (one row per line of the file).

    ``customer_id`` is the sample id, so that it matches :func:`cdnow_summary`;
    ``ordered_at`` is a Date.
    """
    rows = cdnow_sample_rows(shared_data)
    return pl.DataFrame(
        {
            "customer_id": [row[0] for row in rows],
            "master_id": [row[1] for row in rows],
            "ordered_at": [row[2] for row in rows],
            "number_of_cds": [row[3] for row in rows],
            "dollar_value": [row[4] for row in rows],
        },
        schema={
            "customer_id": pl.Int64,
            "master_id": pl.String,
            "ordered_at": pl.Date,
            "number_of_cds": pl.Int64,
            "dollar_value": pl.Float64,
        },
    )


def cdnow_holdout_purchases(shared_data: Path) -> dict[int, int]:
    """Each sample customer's number of purchase days in the holdout (after the calibration end).

    Every sample customer first bought in the calibration period, so all holdout purchases
    are repeat purchases. Customers without one map to 0.
    """
    days: dict[int, set[dt.date]] = {}
    for sample_id, _, day, _, _ in cdnow_sample_rows(shared_data):
        days.setdefault(sample_id, set())
        if CALIBRATION_END < day <= OBSERVATION_END:
            days[sample_id].add(day)
    return {sample_id: len(holdout) for sample_id, holdout in sorted(days.items())}


def hypergeometric_2f1(a: float, b: float, c: float, z: float) -> float:
    """Gauss's hypergeometric function by its defining power series, for 0 <= z < 1.

    A plain-Python oracle for the models' closed forms (which call scipy through other
    transformations); summed until a term no longer changes the total.
    """
    assert 0.0 <= z < 1.0
    total = 1.0
    term = 1.0
    n = 0
    while True:
        term *= (a + n) * (b + n) / ((c + n) * (n + 1)) * z
        n += 1
        total += term
        if abs(term) <= 1e-16 * abs(total) and n > 10:
            return total
        assert n < 1_000_000, "series did not converge"


def agrees_to_three_digits(fitted: float, published: float) -> bool:
    """Whether ``fitted`` is within half a unit of the third significant digit of ``published``."""
    unit = 10.0 ** (math.floor(math.log10(abs(published))) - 2)
    return abs(fitted - published) <= unit / 2
