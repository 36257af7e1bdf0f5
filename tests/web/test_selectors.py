"""The overview's selectors (in patron.orders.selectors) on known data."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from patron.customers.models import Customer
from patron.orders.models import Order
from patron.orders.selectors import (
    WeekFigures,
    compare_recent_periods,
    shop_headline,
    weekly_orders_revenue,
)
from tests.web.conftest import SHANGHAI, SmallShop, make_small_shop

pytestmark = pytest.mark.django_db


def test_shop_headline_counts_net_revenue_repeat_buyers_and_active_customers(
    small_shop: SmallShop,
) -> None:
    # when
    headline = shop_headline(small_shop.now)
    # then
    assert headline.customers == 3
    assert headline.orders == 4
    assert headline.revenue == Decimal("1874.40")
    assert headline.currency == "CNY"
    assert (headline.buying_customers, headline.repeat_customers) == (2, 2)
    assert headline.repeat_purchase_rate == Decimal(1)
    assert headline.active_customers == 3


def test_shop_headline_as_of_an_earlier_moment_ignores_later_orders_and_events() -> None:
    # given the small shop, looked at as it was 20 days ago
    now = datetime(2026, 6, 30, 12, tzinfo=SHANGHAI)
    make_small_shop(now)
    # when
    headline = shop_headline(now - timedelta(days=20))
    # then: O-1001 (30 days ago) and O-2001 (200 days ago) only, one each
    assert headline.orders == 2
    assert headline.revenue == Decimal("1758.00")
    assert (headline.buying_customers, headline.repeat_customers) == (2, 0)
    assert headline.repeat_purchase_rate == Decimal(0)
    # active in the 90 days before: 李娜 (order and events 30-31 days ago); Zhang Wei's only
    # order then was 180 days before, and Emma's view comes later
    assert headline.active_customers == 1


def test_shop_headline_of_an_empty_shop_has_no_repeat_rate() -> None:
    # when
    headline = shop_headline(datetime(2026, 1, 1, tzinfo=SHANGHAI))
    # then
    assert (headline.customers, headline.orders, headline.revenue) == (0, 0, Decimal("0.00"))
    assert headline.repeat_purchase_rate is None


def test_weekly_orders_revenue_uses_shop_weeks_and_fills_empty_weeks() -> None:
    # given Monday 2026-06-29 00:30 in Shanghai is still Sunday in UTC
    now = datetime(2026, 6, 29, 0, 30, tzinfo=SHANGHAI)
    make_small_shop(now)
    # when
    weeks = weekly_orders_revenue()
    # then: O-2001 200 days before (week of 2025-12-08) ... O-1002 3 days before with its
    # refund, O-2002 10 days before; O-1001 30 days before; the cancelled O-1003 not at all
    assert weeks[0] == WeekFigures(date(2025, 12, 8), 1, Decimal("1500.00"))
    assert len(weeks) == (date(2026, 6, 22) - date(2025, 12, 8)).days // 7 + 1
    by_week = {week.week_start: week for week in weeks if week.orders}
    assert by_week == {
        date(2025, 12, 8): WeekFigures(date(2025, 12, 8), 1, Decimal("1500.00")),
        date(2026, 5, 25): WeekFigures(date(2026, 5, 25), 1, Decimal("258.00")),
        date(2026, 6, 15): WeekFigures(date(2026, 6, 15), 1, Decimal("36.50")),
        date(2026, 6, 22): WeekFigures(date(2026, 6, 22), 1, Decimal("79.90")),
    }
    assert all(week.week_start.weekday() == 0 for week in weeks)
    assert sum(week.revenue for week in weeks) == Decimal("1874.40")


def test_weekly_orders_revenue_puts_a_monday_morning_order_in_its_shop_week() -> None:
    # given an order at 00:30 on Monday in Shanghai (16:30 on Sunday in UTC)
    customer = Customer.objects.create(external_id="C-1")
    Order.objects.create(
        external_id="O-1",
        customer=customer,
        ordered_at=datetime(2026, 6, 29, 0, 30, tzinfo=SHANGHAI),
        subtotal_amount=Decimal("10"),
        total_amount=Decimal("10"),
    )
    # when
    weeks = weekly_orders_revenue()
    # then
    assert weeks == [WeekFigures(date(2026, 6, 29), 1, Decimal("10.00"))]


def test_weekly_orders_revenue_of_an_empty_shop_is_empty() -> None:
    assert weekly_orders_revenue() == []


def test_compare_recent_periods_sets_the_last_30_days_against_the_30_before(
    small_shop: SmallShop,
) -> None:
    # when
    period = compare_recent_periods(small_shop.now, days=30)
    # then: last 30 days O-1002 (99.90 - 20.00 refunded) and O-2002 (36.50); the 30 before:
    # O-1001 (258.00, exactly 30 days before now, so in the earlier period)
    assert (period.orders, period.previous_orders) == (2, 1)
    assert (period.revenue, period.previous_revenue) == (Decimal("116.40"), Decimal("258.00"))
    assert period.orders_change == Decimal(1)
    assert period.revenue_change == (Decimal("116.40") - Decimal("258.00")) / Decimal("258.00")


def test_compare_recent_periods_without_earlier_orders_has_no_change(
    small_shop: SmallShop,
) -> None:
    # when
    period = compare_recent_periods(small_shop.now, days=5)
    # then: O-1002 only; nothing in the 5 days before
    assert (period.orders, period.previous_orders) == (1, 0)
    assert period.orders_change is None
    assert period.revenue_change is None
