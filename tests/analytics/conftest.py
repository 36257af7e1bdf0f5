"""A small demo shop imported into the store, and plain-SQL readings of it for the tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection

from patron.demo.generator import DemoConfig, DemoWorld, generate_world
from patron.ingest.services import ImportOptions, RecordKind, import_frames

AS_OF = dt.date(2025, 6, 1)


@pytest.fixture(scope="session")
def analytics_world() -> DemoWorld:
    """120 customers of the demo world: every kind of order (cancelled, refunded, returned)."""
    return generate_world(DemoConfig(customers=120, seed=3, as_of=AS_OF, products=240))


@pytest.fixture
def demo_store(db: None, analytics_world: DemoWorld) -> DemoWorld:
    """The world's customers, products and orders imported into the store (no events: the
    analytics read orders only)."""
    options = ImportOptions(source="test", strict=True)
    for kind, frame in (
        (RecordKind.CUSTOMERS, analytics_world.customers),
        (RecordKind.PRODUCTS, analytics_world.products),
        (RecordKind.ORDERS, analytics_world.orders),
    ):
        summary = import_frames(kind, [frame], options=options)
        assert summary.rejected == 0
    return analytics_world


@dataclass(frozen=True)
class StoreCustomer:
    """One customer's counted orders as read with plain SQL (the tests' independent truth)."""

    external_id: str
    order_days: tuple[dt.date, ...]  # shop-local days of the counted orders, oldest first
    order_ids: tuple[str, ...]  # external order ids, in the same order
    order_nets: tuple[Decimal, ...]  # max(total - refunds, 0) of each, in the same order
    monetary: Decimal  # their sum
    first_channel: str


def store_customers(as_of: dt.date) -> dict[str, StoreCustomer]:
    """Every customer with a counted (not cancelled) order placed by the end of the shop-local
    day ``as_of``, read with one SQL statement and summed in plain Python."""
    zone = ZoneInfo(str(settings.TIME_ZONE))
    sql = """
        SELECT c.external_id, o.external_id, o.ordered_at, o.total_amount, o.channel,
               (SELECT SUM(r.amount) FROM orders_refund r WHERE r.order_id = o.id)
        FROM orders_order o JOIN customers_customer c ON c.id = o.customer_id
        WHERE o.status <> 'cancelled'
    """
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    orders: dict[str, list[tuple[dt.datetime, str, Decimal, str]]] = {}
    for customer_id, order_id, ordered_at, total, channel, refunded in rows:
        if isinstance(ordered_at, str):
            ordered_at = dt.datetime.fromisoformat(ordered_at)
        if ordered_at.tzinfo is None:  # SQLite keeps UTC, naive
            ordered_at = ordered_at.replace(tzinfo=dt.UTC)
        local = ordered_at.astimezone(zone)
        if local.date() > as_of:
            continue
        net = max(Decimal(str(total)) - Decimal(str(refunded or 0)), Decimal(0))
        orders.setdefault(customer_id, []).append(
            (local.replace(tzinfo=None), order_id, net, channel)
        )
    customers = {}
    for customer_id, history in orders.items():
        history.sort(key=lambda order: (order[0].date(), order[1]))
        customers[customer_id] = StoreCustomer(
            external_id=customer_id,
            order_days=tuple(order[0].date() for order in history),
            order_ids=tuple(order[1] for order in history),
            order_nets=tuple(order[2] for order in history),
            monetary=sum((order[2] for order in history), Decimal(0)),
            first_channel=history[0][3],
        )
    return customers
