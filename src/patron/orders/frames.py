"""Reads of purchased lines and behaviour events as Polars tables, for the engines.

One SQL statement each, read straight into Polars (the ORM would build a model instance per
line). Customers and products are named by their primary keys; times are UTC, naive (what
the engines' day arithmetic expects).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import polars as pl
from django.db import connection
from django.db.models import Max

from patron.core.bulk import is_postgres
from patron.core.sql import columns, fetch_all
from patron.orders.choices import EventTypeChoices, OrderStatusChoices
from patron.orders.models import Event, Order, OrderLine

#: Orders whose lines are purchases: paid and on their way or arrived. Placed (unpaid),
#: cancelled and returned orders are not.
PURCHASED_STATUSES = (
    OrderStatusChoices.PAID,
    OrderStatusChoices.SHIPPED,
    OrderStatusChoices.DELIVERED,
)

PURCHASE_LINES_SCHEMA: dict[str, Any] = {
    "order_id": pl.Int64,
    "customer_id": pl.Int64,
    "product_id": pl.Int64,
    "occurred_at": pl.Datetime("us"),
    "quantity": pl.Int64,
}
BEHAVIOUR_EVENTS_SCHEMA: dict[str, Any] = {
    "customer_id": pl.Int64,
    "product_id": pl.Int64,
    "occurred_at": pl.Datetime("us"),
    "event_type": pl.String,
}


def _moment(column: str) -> str:
    # SQLite: the column's text, parsed by Polars (Django's per-row converter is slow).
    return column if is_postgres() else f"{column} || ''"


def _read(sql: str, parameters: Sequence[Any], schema: dict[str, Any]) -> pl.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(sql, list(parameters))
        rows = cursor.fetchall()
    read_schema = dict(schema)
    read_schema["occurred_at"] = pl.Datetime("us", "UTC") if is_postgres() else pl.String
    frame = pl.DataFrame(rows, schema=read_schema, orient="row")
    if is_postgres():
        moment = pl.col("occurred_at").dt.replace_time_zone(None)
    else:
        moment = pl.col("occurred_at").str.to_datetime(time_unit="us")
    return frame.with_columns(moment.alias("occurred_at"))


def purchase_lines_frame(until: dt.datetime | None = None) -> pl.DataFrame:
    """Every purchased order line with a product, as ``order_id, customer_id, product_id,
    occurred_at, quantity`` (:data:`PURCHASE_LINES_SCHEMA`; ``occurred_at`` is the order's
    time, UTC naive), for orders placed before ``until`` (all when None).

    Only orders in :data:`PURCHASED_STATUSES` count (not placed, cancelled or returned ones);
    the units refunded on a line are taken off its quantity and a line refunded whole is left
    out; an order whose refunds without lines reach its total is left out whole.
    """
    quote = connection.ops.quote_name
    statuses = ", ".join(["%s"] * len(PURCHASED_STATUSES))
    sql = (
        f"SELECT o.id, o.customer_id, l.product_id, {_moment('o.ordered_at')}, "
        "l.quantity - COALESCE(rl.quantity, 0) "
        f"FROM {quote('orders_orderline')} l "
        f"JOIN {quote('orders_order')} o ON o.id = l.order_id "
        "LEFT JOIN (SELECT order_line_id, SUM(quantity) AS quantity "
        f"FROM {quote('orders_refundline')} GROUP BY order_line_id) rl "
        "ON rl.order_line_id = l.id "
        "LEFT JOIN (SELECT r.order_id, SUM(r.amount) AS amount "
        f"FROM {quote('orders_refund')} r WHERE NOT EXISTS (SELECT 1 FROM "
        f"{quote('orders_refundline')} x WHERE x.refund_id = r.id) GROUP BY r.order_id) ro "
        "ON ro.order_id = o.id "
        f"WHERE o.status IN ({statuses}) AND l.product_id IS NOT NULL "
        "AND l.quantity > COALESCE(rl.quantity, 0) "
        "AND (ro.amount IS NULL OR o.total_amount <= 0 OR ro.amount < o.total_amount)"
    )
    parameters: list[Any] = [str(status) for status in PURCHASED_STATUSES]
    if until is not None:
        sql += " AND o.ordered_at < %s"
        parameters.append(connection.ops.adapt_datetimefield_value(until))
    return _read(sql, parameters, PURCHASE_LINES_SCHEMA)


def behaviour_events_frame(
    event_types: Sequence[str] = (EventTypeChoices.VIEW, EventTypeChoices.ADD_TO_CART),
    until: dt.datetime | None = None,
) -> pl.DataFrame:
    """Behaviour events of known customers on a product, of ``event_types``, before ``until``
    (all when None), as ``customer_id, product_id, occurred_at, event_type``
    (:data:`BEHAVIOUR_EVENTS_SCHEMA`)."""
    quote = connection.ops.quote_name
    kinds = ", ".join(["%s"] * len(event_types))
    sql = (
        f"SELECT customer_id, product_id, {_moment('occurred_at')}, event_type "
        f"FROM {quote('orders_event')} WHERE customer_id IS NOT NULL "
        f"AND product_id IS NOT NULL AND event_type IN ({kinds})"
    )
    parameters: list[Any] = [str(kind) for kind in event_types]
    if until is not None:
        sql += " AND occurred_at < %s"
        parameters.append(connection.ops.adapt_datetimefield_value(until))
    return _read(sql, parameters, BEHAVIOUR_EVENTS_SCHEMA)


def latest_activity_at() -> dt.datetime | None:
    """The time of the latest order or behaviour event in the store (aware, UTC), or None."""
    moments = [
        Order.objects.aggregate(latest=Max("ordered_at"))["latest"],
        Event.objects.filter(customer__isnull=False).aggregate(latest=Max("occurred_at"))["latest"],
    ]
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None


def interacted_product_ids(customer_id: int, limit: int = 50) -> list[tuple[int, str]]:
    """The customer's latest distinct products bought, put in the cart or viewed, newest
    first, as ``(product_id, kind)`` with kind ``purchase``, ``add_to_cart`` or ``view``."""
    # Two statements of SQL (patron.core.sql): recommendations computed at serving time
    # start here.
    seen: dict[int, str] = {}
    line, order, event = columns(OrderLine, "ol"), columns(Order, "o"), columns(Event, "e")
    statuses = ", ".join(["%s"] * len(PURCHASED_STATUSES))
    lines = fetch_all(
        f"SELECT {line.column('product_id')} FROM {order.table} "
        f"JOIN {line.table} ON {line.column('order_id')} = {order.column('id')} "
        f"WHERE {order.column('customer_id')} = %s AND {order.column('status')} IN ({statuses}) "
        f"AND {line.column('product_id')} IS NOT NULL "
        f"ORDER BY {order.column('ordered_at')} DESC LIMIT %s",
        [customer_id, *PURCHASED_STATUSES, limit * 2],
    )
    for (product_id,) in lines:
        seen.setdefault(product_id, EventTypeChoices.PURCHASE)
    events = fetch_all(
        f"SELECT {event.column('product_id')}, {event.column('event_type')} FROM {event.table} "
        f"WHERE {event.column('customer_id')} = %s AND {event.column('product_id')} IS NOT NULL "
        f"AND {event.column('event_type')} IN (%s, %s) "
        f"ORDER BY {event.column('occurred_at')} DESC LIMIT %s",
        [customer_id, EventTypeChoices.ADD_TO_CART, EventTypeChoices.VIEW, limit * 2],
    )
    for product_id, kind in events:
        seen.setdefault(product_id, kind)
    return list(seen.items())[:limit]
