"""Inputs shared by the engine tests: the real CDNOW log and the demo shop, as order lines.

Also a plain-Python reading of an order-lines table into counted orders, written without the
engine (dicts and loops over the rows), for tests to compute their expected figures from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from patron.demo.generator import DemoConfig, generate_world

DEMO_AS_OF = dt.date(2025, 6, 1)
CDNOW_AS_OF = dt.date(1998, 6, 30)
"""The last day of the CDNOW log (purchases from 1997-01-01 to 1998-06-30)."""


@cache
def _cdnow_rows(path: Path) -> tuple[tuple[str, dt.date, int, float], ...]:
    rows = []
    with path.open(encoding="ascii") as lines_in:
        header = next(lines_in).split()
        assert header == ["customer_id", "date", "number_of_cds", "dollar_value"]
        for line in lines_in:
            customer, day, cds, dollars = line.split()
            ordered = dt.date(int(day[:4]), int(day[4:6]), int(day[6:]))
            rows.append((customer, ordered, int(cds), float(dollars)))
    return tuple(rows)


def cdnow_rows(shared_data: Path) -> tuple[tuple[str, dt.date, int, float], ...]:
    """The CDNOW master log's rows: (customer_id, day, number_of_cds, dollar_value)."""
    return _cdnow_rows(shared_data / "cdnow" / "CDNOW_master.txt")


def cdnow_lines(shared_data: Path) -> pl.DataFrame:
    """The CDNOW log as an order-lines table.

    CDNOW has no order id: one customer's rows of one day are one purchase occasion (the BTYD
    treatment of Fader, Hardie & Lee 2005), so ``order_id`` is ``customer_id-YYYYMMDD``.
    ``ordered_at`` is a Date (the demo shop gives datetimes, so both kinds get tested).
    """
    rows = cdnow_rows(shared_data)
    return pl.DataFrame(
        {
            "order_id": [f"{row[0]}-{row[1]:%Y%m%d}" for row in rows],
            "customer_id": [row[0] for row in rows],
            "ordered_at": [row[1] for row in rows],
            "quantity_cds": [row[2] for row in rows],
            "line_total": [row[3] for row in rows],
        },
        schema={
            "order_id": pl.String,
            "customer_id": pl.String,
            "ordered_at": pl.Date,
            "quantity_cds": pl.Int64,
            "line_total": pl.Float64,
        },
    )


@cache
def demo_orders(customers: int, seed: int) -> pl.DataFrame:
    """The demo shop's order lines (quantity, unit_price, discount, refunds, cancellations)."""
    return generate_world(DemoConfig(customers=customers, seed=seed, as_of=DEMO_AS_OF)).orders


@dataclass(frozen=True)
class PlainOrder:
    """One counted order, computed from the rows in plain Python."""

    customer_id: str
    order_id: str
    ordered_at: dt.date | dt.datetime
    day: dt.date
    channel: str
    gross: Decimal
    net: Decimal


def _money(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(str(value))


def plain_orders(lines: pl.DataFrame, as_of: dt.date | None = None) -> list[PlainOrder]:
    """Counted orders of an order-lines table, by loops over its rows (no engine code).

    The rules of docs/data-formats.md: an order's total is the sum of its line totals less its
    discount, never below zero; net spend subtracts refunds, never below zero; cancelled orders
    (any line saying so) count for nothing; orders after ``as_of`` (whole day) are left out.
    Sorted by order_id.
    """
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for row in lines.iter_rows(named=True):
        grouped.setdefault(str(row["order_id"]), []).append(row)
    orders = []
    for order_id, rows in sorted(grouped.items()):
        first = rows[0]
        if any(row.get("status") == "cancelled" for row in rows):
            continue
        ordered_at = min(row["ordered_at"] for row in rows)
        day = ordered_at.date() if isinstance(ordered_at, dt.datetime) else ordered_at
        if as_of is not None and day > as_of:
            continue
        if "line_total" in first:
            lines_amount = sum((_money(row["line_total"]) for row in rows), Decimal(0))
        else:
            lines_amount = sum(
                (_money(row["quantity"]) * _money(row["unit_price"]) for row in rows), Decimal(0)
            )
        gross = max(lines_amount - _money(first.get("discount")), Decimal(0))
        net = max(gross - _money(first.get("refund_amount")), Decimal(0))
        orders.append(
            PlainOrder(
                customer_id=str(first["customer_id"]),
                order_id=order_id,
                ordered_at=ordered_at,
                day=day,
                channel=first.get("channel") or "",
                gross=gross,
                net=net,
            )
        )
    return orders


def orders_by_customer(orders: Iterable[PlainOrder]) -> dict[str, list[PlainOrder]]:
    """Each customer's counted orders, in order of (day, order_id)."""
    by_customer: dict[str, list[PlainOrder]] = {}
    for order in orders:
        by_customer.setdefault(order.customer_id, []).append(order)
    for customer_orders in by_customer.values():
        customer_orders.sort(key=lambda order: (order.day, order.order_id))
    return by_customer
