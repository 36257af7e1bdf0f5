"""Reads of orders, refunds and events."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce

from patron.core.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from patron.customers.models import Customer
from patron.orders.choices import OrderStatusChoices
from patron.orders.models import Order, Refund

_MONEY = DecimalField(max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES)


def counted_orders() -> QuerySet[Order]:
    """Orders that count for spend and frequency: every order but cancelled ones."""
    return Order.objects.exclude(status=OrderStatusChoices.CANCELLED)


def with_order_stats(customers: QuerySet[Customer]) -> QuerySet[Customer]:
    """Annotate customers with ``orders_count``, ``total_spent`` (net of refunds),
    ``first_order_at`` and ``last_order_at``; cancelled orders do not count."""
    orders = counted_orders().filter(customer=OuterRef("pk")).order_by().values("customer")
    refunds = (
        Refund.objects.filter(order__customer=OuterRef("pk"))
        .exclude(order__status=OrderStatusChoices.CANCELLED)
        .order_by()
        .values("order__customer")
    )
    zero = Value(Decimal(0), output_field=_MONEY)
    return customers.annotate(
        orders_count=Coalesce(Subquery(orders.annotate(n=Count("pk")).values("n")), 0),
        gross_spent=Coalesce(
            Subquery(orders.annotate(s=Sum("total_amount")).values("s"), output_field=_MONEY),
            zero,
        ),
        refunded=Coalesce(
            Subquery(refunds.annotate(s=Sum("amount")).values("s"), output_field=_MONEY), zero
        ),
        first_order_at=Subquery(orders.annotate(t=Min("ordered_at")).values("t")),
        last_order_at=Subquery(orders.annotate(t=Max("ordered_at")).values("t")),
    ).annotate(total_spent=ExpressionWrapper(F("gross_spent") - F("refunded"), output_field=_MONEY))
