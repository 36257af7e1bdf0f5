"""Reads of orders, refunds and events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncWeek

from patron.core.money import (
    MONEY_DECIMAL_PLACES,
    MONEY_MAX_DIGITS,
    default_currency,
    round_for_currency,
)
from patron.customers.models import Customer
from patron.orders.choices import OrderStatusChoices
from patron.orders.models import Event, Order, OrderLine, Refund

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


@dataclass(frozen=True)
class ShopHeadline:
    """The shop's headline figures as of a moment (see :func:`shop_headline`)."""

    as_of: datetime
    customers: int
    orders: int
    revenue: Decimal
    currency: str
    buying_customers: int
    repeat_customers: int
    active_customers: int
    active_days: int

    @property
    def repeat_purchase_rate(self) -> Decimal | None:
        """Share of buying customers with two or more counted orders (None without buyers)."""
        if not self.buying_customers:
            return None
        return Decimal(self.repeat_customers) / Decimal(self.buying_customers)


@dataclass(frozen=True)
class WeekFigures:
    """Counted orders and their net revenue in one week (weeks start on Monday)."""

    week_start: date
    orders: int
    revenue: Decimal


def shop_headline(as_of: datetime, active_days: int = 90) -> ShopHeadline:
    """Headline figures of the shop for orders placed up to ``as_of``.

    - ``customers``: every customer in the store;
    - ``orders``: counted orders (all but cancelled ones);
    - ``revenue``: their totals less the refunds on them, in the shop's currency;
    - ``repeat_customers`` / ``buying_customers``: customers with two or more / one or more
      counted orders (their ratio is the repeat purchase rate);
    - ``active_customers``: customers with a counted order or a behaviour event in the
      ``active_days`` days before ``as_of``.

    Every figure is one SQL aggregate, so the cost stays flat in Python for large shops.
    """
    orders = counted_orders().filter(ordered_at__lte=as_of)
    order_figures = orders.aggregate(orders=Count("pk"), gross=Sum("total_amount"))
    refunded = Refund.objects.filter(order__in=orders.values("pk")).aggregate(s=Sum("amount"))["s"]
    per_customer = orders.order_by().values("customer").annotate(n=Count("pk"))
    buyers = per_customer.aggregate(
        buying=Count("customer"), repeat=Count("customer", filter=Q(n__gte=2))
    )
    since = as_of - timedelta(days=active_days)
    recent_buyers = orders.filter(ordered_at__gt=since).values("customer_id")
    recent_visitors = Event.objects.filter(
        occurred_at__gt=since, occurred_at__lte=as_of, customer__isnull=False
    ).values("customer_id")
    active_customers = Customer.objects.filter(
        Q(pk__in=recent_buyers) | Q(pk__in=recent_visitors)
    ).count()
    gross = order_figures["gross"] or Decimal(0)
    currency = default_currency()
    return ShopHeadline(
        as_of=as_of,
        customers=Customer.objects.count(),
        orders=order_figures["orders"],
        revenue=round_for_currency(gross - (refunded or Decimal(0)), currency),
        currency=currency,
        buying_customers=buyers["buying"],
        repeat_customers=buyers["repeat"],
        active_customers=active_customers,
        active_days=active_days,
    )


@dataclass(frozen=True)
class PeriodComparison:
    """Counted orders and their net revenue in the ``days`` before a moment, and in the
    ``days`` before those (see :func:`compare_recent_periods`)."""

    days: int
    orders: int
    previous_orders: int
    revenue: Decimal
    previous_revenue: Decimal

    @property
    def orders_change(self) -> Decimal | None:
        """Relative change of orders against the previous period (None when it had none)."""
        return _relative_change(Decimal(self.orders), Decimal(self.previous_orders))

    @property
    def revenue_change(self) -> Decimal | None:
        """Relative change of net revenue against the previous period (None when it had none)."""
        return _relative_change(self.revenue, self.previous_revenue)


def _relative_change(current: Decimal, previous: Decimal) -> Decimal | None:
    if previous <= 0:
        return None
    return (current - previous) / previous


def compare_recent_periods(as_of: datetime, days: int = 30) -> PeriodComparison:
    """Counted orders and net revenue of the last ``days`` before ``as_of`` against the
    ``days`` before them; an order's refunds count in the period the order was placed in."""
    start = as_of - timedelta(days=days)
    previous_start = start - timedelta(days=days)
    current = Q(ordered_at__gt=start, ordered_at__lte=as_of)
    previous = Q(ordered_at__gt=previous_start, ordered_at__lte=start)
    orders = counted_orders().aggregate(
        orders=Count("pk", filter=current),
        previous_orders=Count("pk", filter=previous),
        gross=Sum("total_amount", filter=current),
        previous_gross=Sum("total_amount", filter=previous),
    )
    refunds = Refund.objects.exclude(order__status=OrderStatusChoices.CANCELLED).aggregate(
        refunded=Sum("amount", filter=Q(order__ordered_at__gt=start, order__ordered_at__lte=as_of)),
        previous_refunded=Sum(
            "amount", filter=Q(order__ordered_at__gt=previous_start, order__ordered_at__lte=start)
        ),
    )
    currency = default_currency()
    zero = Decimal(0)
    return PeriodComparison(
        days=days,
        orders=orders["orders"],
        previous_orders=orders["previous_orders"],
        revenue=round_for_currency(
            (orders["gross"] or zero) - (refunds["refunded"] or zero), currency
        ),
        previous_revenue=round_for_currency(
            (orders["previous_gross"] or zero) - (refunds["previous_refunded"] or zero), currency
        ),
    )


def weekly_orders_revenue(time_zone: tzinfo | None = None) -> list[WeekFigures]:
    """Counted orders and net revenue per week (Monday start, in the shop's time zone), oldest
    first, with empty weeks between the first and the last filled in as zeros.

    A refund lowers the revenue of the week its order was placed in, so a week's figure is
    what that week's orders finally brought in.
    """
    zone = time_zone or ZoneInfo(settings.TIME_ZONE)
    per_week = (
        counted_orders()
        .annotate(week=TruncWeek("ordered_at", tzinfo=zone))
        .order_by()
        .values("week")
        .annotate(orders=Count("pk"), gross=Sum("total_amount"))
    )
    refunds = (
        Refund.objects.exclude(order__status=OrderStatusChoices.CANCELLED)
        .annotate(week=TruncWeek("order__ordered_at", tzinfo=zone))
        .order_by()
        .values("week")
        .annotate(refunded=Sum("amount"))
    )
    refunded_by_week = {_week_date(row["week"], zone): row["refunded"] for row in refunds}
    figures = {
        _week_date(row["week"], zone): (row["orders"], row["gross"] or Decimal(0))
        for row in per_week
    }
    if not figures:
        return []
    currency = default_currency()
    weeks: list[WeekFigures] = []
    week = min(figures)
    last = max(figures)
    while week <= last:
        count, gross = figures.get(week, (0, Decimal(0)))
        net = gross - (refunded_by_week.get(week) or Decimal(0))
        weeks.append(WeekFigures(week, count, round_for_currency(net, currency)))
        week += timedelta(days=7)
    return weeks


def _week_date(week: datetime | date, zone: tzinfo) -> date:
    """The local date of a truncated week (backends return an aware datetime or a date)."""
    if isinstance(week, datetime):
        return (week.astimezone(zone) if week.tzinfo else week).date()
    return week


def customer_lifetime(customer: Customer) -> Customer:
    """The customer annotated by :func:`with_order_stats` (lifetime orders and net spend)."""
    return with_order_stats(Customer.objects.filter(pk=customer.pk)).get()


def customer_orders(customer: Customer, limit: int = 100) -> list[Order]:
    """The customer's latest orders (cancelled ones included), newest first, with their lines,
    the lines' products and the refunds fetched in three more queries."""
    return list(
        Order.objects.filter(customer=customer)
        .order_by("-ordered_at", "-pk")
        .prefetch_related(
            Prefetch(
                "lines",
                queryset=OrderLine.objects.select_related("product").order_by("line_number"),
            ),
            "refunds",
        )[:limit]
    )


def customer_events(customer: Customer, limit: int = 50) -> list[Event]:
    """The customer's latest behaviour events, newest first, with their products."""
    return list(
        Event.objects.filter(customer=customer)
        .select_related("product")
        .order_by("-occurred_at", "-pk")[:limit]
    )
