"""The UCI Online Retail log (2010-12-01 to 2011-12-09) as order lines, for the churn tests.

Read as its SOURCE.md says: an invoice number starting with ``C`` is a cancellation or
return (left out: it is not a purchase, and it names no invoice it cancels), and lines
without a CustomerID are guests (left out: nobody to score). The rest become order lines
``order_id, customer_id, ordered_at, quantity, unit_price`` (the invoice is the order).
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

import polars as pl

from patron.engine.frames import order_summary

ONLINE_RETAIL_AS_OF = dt.date(2011, 12, 9)
"""The last day of the log."""


@cache
def _online_retail_orders(path: Path) -> pl.DataFrame:
    raw = pl.read_csv(
        path,
        schema_overrides={
            "InvoiceNo": pl.String,
            "StockCode": pl.String,
            "CustomerID": pl.Int64,
            "Quantity": pl.Int64,
            "UnitPrice": pl.Float64,
        },
        columns=["InvoiceNo", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"],
    )
    lines = raw.filter(
        ~pl.col("InvoiceNo").str.starts_with("C") & pl.col("CustomerID").is_not_null()
    ).select(
        pl.col("InvoiceNo").alias("order_id"),
        pl.col("CustomerID").cast(pl.String).alias("customer_id"),
        pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S").alias("ordered_at"),
        pl.col("Quantity").alias("quantity"),
        pl.col("UnitPrice").alias("unit_price"),
    )
    summary = order_summary(lines)
    assert isinstance(summary, pl.DataFrame)
    return summary


def online_retail_orders(shared_data: Path) -> pl.DataFrame:
    """The Online Retail order table (:func:`order_summary` of its customer order lines)."""
    return _online_retail_orders(shared_data / "online_retail" / "online_retail.csv.gz")
