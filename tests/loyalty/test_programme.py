"""Programme configuration and earning rules: rate and rounding, category multipliers,
promotions, tier multipliers, channels, minimum order, currency, validation errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from patron.loyalty.errors import LoyaltyInputError
from patron.loyalty.ledger import award_points_for_order
from patron.loyalty.members import enrol_member
from patron.loyalty.models import Programme
from patron.loyalty.programme import (
    add_promotion,
    configure_programme,
    get_programme,
    set_category_multiplier,
)
from patron.loyalty.tiers import define_tier
from tests.loyalty.points_helpers import (
    assert_ledger_consistent,
    ledger_size,
    make_category,
    make_customer,
    make_order,
    make_product,
)

pytestmark = pytest.mark.django_db

T0 = timezone.make_aware(datetime(2026, 11, 11, 10, 0))


@pytest.fixture
def programme() -> Programme:
    return get_programme()


def points_for(total: str | int, **order: Any) -> tuple[int, str]:
    customer = make_customer()
    placed = make_order(customer, total, order.pop("at", T0), **order)
    entry = award_points_for_order(placed, idempotency_key=f"paid:{placed.external_id}", as_of=T0)
    assert_ledger_consistent(entry.member)
    return entry.points, entry.reason


def test_the_default_programme_is_created_once_with_sensible_defaults() -> None:
    first = get_programme()
    second = get_programme()

    assert first.pk == second.pk
    assert (first.currency, first.points_per_unit, first.rounding) == ("CNY", Decimal(1), "floor")
    assert (first.pending_days, first.expiry_policy, first.earning_channels) == (15, "never", [])
    assert first.point_value_amount == Decimal("0.01")


@pytest.mark.parametrize(
    ("rounding", "total", "expected"),
    [
        ("floor", "10.99", 10),
        ("half_up", "10.49", 10),
        ("half_up", "10.50", 11),
        ("ceiling", "10.01", 11),
        ("ceiling", "10.00", 10),
    ],
)
def test_rounding_rules(programme: Programme, rounding: str, total: str, expected: int) -> None:
    configure_programme(programme, rounding=rounding)

    assert points_for(total)[0] == expected


def test_rate_applies_to_net_spend_after_the_order_discount(programme: Programme) -> None:
    configure_programme(programme, points_per_unit="2.5")

    points, reason = points_for("39.90", discount="10")

    # floor(39.90 x 2.5) = floor(99.75)
    assert points == 99
    assert reason == "39.90 CNY x 2.5 pt = 99"


def test_category_multipliers_weight_each_line_and_reach_sub_categories(
    programme: Programme,
) -> None:
    beauty = make_category("Beauty")
    lipstick = make_category("Lipstick", parent=beauty)
    kitchen = make_category("Kitchen")
    set_category_multiplier(beauty, 3)
    set_category_multiplier(kitchen, "0.5")
    lines = [
        (make_product(lipstick), Decimal(100)),  # inherits Beauty's 3x
        (make_product(kitchen), Decimal(60)),
        (make_product(None), Decimal(40)),  # no category: 1x
    ]

    # Subtotal 200, discount 20: each line keeps 90% of its total.
    points, reason = points_for(180, lines=lines, discount=20)

    # (100 x 3 + 60 x 0.5 + 40) x 0.9 = 370 x 0.9 = 333
    assert points == 333
    assert reason == "180.00 CNY x 1 pt x category-weighted 333.00 = 333"


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (T0 - timedelta(seconds=1), 100),  # before the start
        (T0, 200),  # the start is inside
        (T0 + timedelta(hours=23, minutes=59), 200),
        (T0 + timedelta(days=1), 100),  # the end is outside
    ],
)
def test_promotion_multiplies_orders_placed_inside_its_window(
    programme: Programme, at: datetime, expected: int
) -> None:
    add_promotion("11.11", 2, T0, T0 + timedelta(days=1))

    assert points_for(100, at=at)[0] == expected


def test_overlapping_promotions_do_not_stack(programme: Programme) -> None:
    add_promotion("11.11", 2, T0, T0 + timedelta(days=1))
    add_promotion("members week", 3, T0 - timedelta(days=3), T0 + timedelta(days=3))

    points, reason = points_for(100)

    assert points == 300
    assert "promotion members week 3" in reason


def test_tier_multiplier_applies_to_the_members_tier(programme: Programme) -> None:
    define_tier("Gold", 0, earn_multiplier="1.5")
    customer = make_customer()
    enrol_member(customer, as_of=T0)

    order = make_order(customer, 100, T0)
    entry = award_points_for_order(order, idempotency_key="paid", as_of=T0)

    assert entry.points == 150
    assert entry.reason == "100.00 CNY x 1 pt x tier Gold 1.5 = 150"


def test_an_order_from_a_channel_that_does_not_earn_earns_zero_with_the_reason(
    programme: Programme,
) -> None:
    configure_programme(programme, earning_channels=["web", "mini_program"])

    points, reason = points_for(100, channel="marketplace")

    assert points == 0
    assert reason == "orders from channel marketplace do not earn points"
    assert points_for(100, channel="mini_program")[0] == 100


def test_an_order_below_the_minimum_earns_zero_with_the_reason(programme: Programme) -> None:
    configure_programme(programme, minimum_order_amount="50")

    assert points_for("49.99") == (
        0,
        "order total 49.99 is below the minimum of 50.00 CNY",
    )
    assert points_for("50.00")[0] == 50


def test_an_order_in_another_currency_is_refused_and_writes_nothing(programme: Programme) -> None:
    order = make_order(make_customer(), 100, T0, currency="USD")
    size = ledger_size()

    with pytest.raises(
        LoyaltyInputError, match=r"order\.currency: order o\d+ is in USD, the programme in CNY"
    ):
        award_points_for_order(order, idempotency_key="paid", as_of=T0)

    assert ledger_size() == size


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"points_per_unit": -1}, "points_per_unit"),
        ({"points_per_unit": 1.5}, "points_per_unit"),
        ({"points_per_unit": "abc"}, "points_per_unit"),
        ({"rounding": "banker"}, "rounding"),
        ({"pending_days": -1}, "pending_days"),
        ({"pending_days": "15"}, "pending_days"),
        ({"earning_channels": ["web", "fax"]}, "earning_channels"),
        ({"earning_channels": "web"}, "earning_channels"),
        ({"expiry_policy": "months_after_earning"}, "expiry_months"),
        ({"expiry_policy": "months_after_earning", "expiry_months": 0}, "expiry_months"),
        ({"expiry_policy": "sometimes"}, "expiry_policy"),
        ({"point_value_amount": "-0.01"}, "point_value_amount"),
        ({"minimum_order_amount": None}, "minimum_order_amount"),
        ({"currency": "yuan"}, "currency"),
        ({"tier_window": "forever"}, "tier_window"),
        ({"tier_metric": "balance"}, "tier_metric"),
        ({"name": " "}, "name"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_configure_programme_names_the_bad_field_and_changes_nothing(
    programme: Programme, changes: dict[str, Any], field: str
) -> None:
    before = Programme.objects.values().get(pk=programme.pk)

    with pytest.raises(LoyaltyInputError) as raised:
        # A valid change next to the bad one is not saved either.
        configure_programme(programme, **{"downgrade_grace_days": 7, **changes})

    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")
    assert Programme.objects.values().get(pk=programme.pk) == before


def test_configure_programme_saves_valid_changes(programme: Programme) -> None:
    configure_programme(
        programme,
        points_per_unit="2",
        earning_channels=["web", "app", "web"],
        expiry_policy="months_after_earning",
        expiry_months=24,
        currency="usd",
    )

    saved = Programme.objects.get(pk=programme.pk)
    assert (saved.points_per_unit, saved.earning_channels) == (Decimal(2), ["app", "web"])
    assert (saved.expiry_policy, saved.expiry_months, saved.currency) == (
        "months_after_earning",
        24,
        "USD",
    )


def test_promotion_and_multiplier_input_is_checked(programme: Programme) -> None:
    with pytest.raises(LoyaltyInputError, match="ends_at: must be after starts_at"):
        add_promotion("back to front", 2, T0, T0)
    with pytest.raises(LoyaltyInputError, match="starts_at: must be a timezone-aware"):
        add_promotion("naive", 2, datetime(2026, 1, 1), T0)
    with pytest.raises(LoyaltyInputError, match="multiplier: must be at least 0"):
        set_category_multiplier(make_category("Toys"), -1)
