"""Batch earning: ``award_points_for_orders`` gives what ``award_points_for_order`` gives
order by order (points, reasons, lots, tiers, activations and debt repayment, duplicates),
in a number of statements that does not grow with the batch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from patron.catalog.models import Category
from patron.customers.models import Customer
from patron.loyalty.errors import IdempotencyConflictError, LoyaltyInputError
from patron.loyalty.ledger import (
    activate_pending_points,
    award_points_for_order,
    award_points_for_orders,
    redeem_points,
    reverse_points_for_refund,
)
from patron.loyalty.members import enrol_member
from patron.loyalty.models import Member, PointLot, Programme, TierChange
from patron.loyalty.programme import (
    add_promotion,
    configure_programme,
    get_programme,
    set_category_multiplier,
)
from patron.loyalty.tiers import define_tier
from patron.orders.models import Order
from tests.loyalty.points_helpers import (
    assert_ledger_consistent,
    ledger_size,
    make_category,
    make_customer,
    make_order,
    make_product,
    make_refund,
)

pytestmark = pytest.mark.django_db

AS_OF = timezone.make_aware(datetime(2026, 11, 20, 12, 0))
DAY = timedelta(days=1)


@pytest.fixture
def programme() -> Programme:
    programme = configure_programme(
        get_programme(),
        minimum_order_amount=10,
        earning_channels=["web", "app"],
        expiry_policy="months_after_earning",
        expiry_months=12,
    )
    define_tier("Bronze", 0)
    define_tier("Silver", 300, earn_multiplier="1.5")
    add_promotion("11.11", 2, AS_OF - 9 * DAY, AS_OF - 8 * DAY)
    set_category_multiplier(make_category("Beauty"), 3)
    return programme


@dataclass
class World:
    """The same shop history for a set of fresh customers."""

    customers: list[Customer]
    orders: list[Order]
    keys: list[str]


def build_world(beauty: Category) -> World:
    alice, bob, carol = make_customer(), make_customer(), make_customer()
    enrol_member(alice, as_of=AS_OF - 30 * DAY)
    enrol_member(bob, as_of=AS_OF - 90 * DAY)
    # Bob owes 60 points: earned 100, spent 100, then 60% refunded.
    bobs_old = make_order(bob, 100, AS_OF - 80 * DAY)
    award_points_for_order(bobs_old, idempotency_key=f"{bob.pk}:old", as_of=AS_OF - 80 * DAY)
    activate_pending_points(AS_OF - 60 * DAY)
    member = Member.objects.get(customer=bob)
    redeem_points(member, 100, idempotency_key=f"{bob.pk}:spend", as_of=AS_OF - 59 * DAY)
    reverse_points_for_refund(
        bobs_old,
        make_refund(bobs_old, 60, AS_OF - 50 * DAY),
        idempotency_key=f"{bob.pk}:refund",
        as_of=AS_OF - 50 * DAY,
    )
    already = make_order(alice, 40, AS_OF - 20 * DAY)
    award_points_for_order(already, idempotency_key=f"{alice.pk}:already", as_of=AS_OF)
    refunded_first = make_order(carol, 200, AS_OF - 2 * DAY)
    reverse_points_for_refund(
        refunded_first,
        make_refund(refunded_first, 50, AS_OF - DAY),
        idempotency_key=f"{carol.pk}:early-refund",
        as_of=AS_OF,
    )
    orders = [
        make_order(alice, 250, AS_OF - 3 * DAY),
        make_order(alice, 100, AS_OF - 9 * DAY + timedelta(hours=1)),  # 11.11: double
        make_order(alice, 100, AS_OF - DAY),  # Silver by now: 1.5x
        make_order(alice, 9, AS_OF - DAY),  # below the minimum
        make_order(alice, 100, AS_OF - DAY, channel="marketplace"),  # channel does not earn
        make_order(bob, 80, AS_OF - 40 * DAY),  # return window passed: repays the debt
        make_order(bob, 50, AS_OF - 35 * DAY),
        make_order(carol, 120, AS_OF, lines=[(make_product(beauty), Decimal(120))]),
        refunded_first,  # earns on 150 only (x 1.5: Silver by then)
        already,  # awarded before the batch, under another key
    ]
    keys = [f"{order.customer_id}:{order.external_id}" for order in orders]
    keys[-1] = f"{alice.pk}:already"
    # The same order twice: with its key again, and under another key.
    orders += [orders[0], orders[1]]
    keys += [keys[0], f"{alice.pk}:again"]
    return World([alice, bob, carol], orders, keys)


def snapshot(world: World, results: list[Any]) -> dict[str, Any]:
    members = [Member.objects.get(customer=customer) for customer in world.customers]
    return {
        "results": [
            (entry.kind, entry.points, entry.spend_amount, entry.reason.split(" (")[0])
            for entry in results
        ],
        "same_as": [
            [index for index, other in enumerate(results) if other.pk == entry.pk]
            for entry in results
        ],
        "balances": [assert_ledger_consistent(member) for member in members],
        "tiers": [member.tier.name if member.tier else None for member in members],
        "tier_changes": [
            [
                (change.to_tier.name if change.to_tier else None, change.reason.split(" (")[0])
                for change in TierChange.objects.filter(member=member).select_related("to_tier")
            ]
            for member in members
        ],
        "lots": [
            sorted(
                (
                    lot.points,
                    lot.remaining_points,
                    lot.available_at,
                    lot.expires_at,
                    lot.activated_by_id is not None,
                )
                for lot in PointLot.objects.filter(member=member)
            )
            for member in members
        ],
    }


def test_a_batch_gives_what_one_order_at_a_time_gives(programme: Programme) -> None:
    beauty = Category.objects.get(name="Beauty")
    one_by_one = build_world(beauty)
    batch = build_world(beauty)

    expected = snapshot(
        one_by_one,
        [
            award_points_for_order(order, idempotency_key=key, as_of=AS_OF)
            for order, key in zip(one_by_one.orders, one_by_one.keys, strict=True)
        ],
    )
    got = snapshot(
        batch, award_points_for_orders(batch.orders, idempotency_keys=batch.keys, as_of=AS_OF)
    )

    assert got == expected
    # The scenario exercises what it claims to.
    points = [result[1] for result in got["results"]]
    assert points[:8] == [250, 200, 150, 0, 0, 80, 50, 360]
    # Carol's beauty order (120 x 3) made her Silver: her next order earns 150 x 1.5.
    assert points[8] == 225
    assert got["tiers"] == ["Silver", "Bronze", "Silver"]
    assert got["balances"][1].debt == 0


def test_a_second_delivery_of_the_batch_writes_nothing(programme: Programme) -> None:
    world = build_world(Category.objects.get(name="Beauty"))
    first = award_points_for_orders(world.orders, idempotency_keys=world.keys, as_of=AS_OF)
    size = ledger_size()

    again = award_points_for_orders(world.orders, idempotency_keys=world.keys, as_of=AS_OF)

    assert [entry.pk for entry in again] == [entry.pk for entry in first]
    assert ledger_size() == size


def test_a_conflicting_key_refuses_the_whole_batch(programme: Programme) -> None:
    customer = make_customer()
    first = make_order(customer, 100, AS_OF)
    award_points_for_order(first, idempotency_key="taken", as_of=AS_OF)
    size = ledger_size()
    others = [make_order(customer, 50, AS_OF), make_order(customer, 60, AS_OF)]

    with pytest.raises(IdempotencyConflictError, match="'taken'"):
        award_points_for_orders(others, idempotency_keys=["fresh", "taken"], as_of=AS_OF)
    with pytest.raises(IdempotencyConflictError, match="two orders of the batch share it"):
        award_points_for_orders(others, idempotency_keys=["same", "same"], as_of=AS_OF)

    assert ledger_size() == size


@pytest.mark.parametrize(
    ("orders", "keys", "field"),
    [
        ("not a list", [], "orders"),
        ([None], ["k"], r"orders\[0\]"),
        ([], ["k"], "idempotency_keys"),
    ],
)
def test_batch_input_is_checked(
    programme: Programme, orders: Any, keys: list[str], field: str
) -> None:
    with pytest.raises(LoyaltyInputError, match=field):
        award_points_for_orders(orders, idempotency_keys=keys, as_of=AS_OF)


def test_an_unpaid_order_refuses_the_batch_before_anything_is_written(
    programme: Programme,
) -> None:
    customer = make_customer()
    orders = [make_order(customer, 50, AS_OF), make_order(customer, 50, AS_OF, status="placed")]
    size = ledger_size()

    with pytest.raises(LoyaltyInputError, match=r"orders\[1\]\.status"):
        award_points_for_orders(orders, idempotency_keys=["a", "b"], as_of=AS_OF)

    assert ledger_size() == size


def test_statements_do_not_grow_with_the_batch(programme: Programme) -> None:
    def statements(count: int, age: timedelta = DAY) -> int:
        customers = [make_customer() for _ in range(5)]
        for customer in customers:
            enrol_member(customer, as_of=AS_OF - 400 * DAY)
        orders = [make_order(customers[i % 5], 20, AS_OF - age) for i in range(count)]
        with CaptureQueriesContext(connection) as queries:
            award_points_for_orders(
                orders, idempotency_keys=[f"k:{order.pk}" for order in orders], as_of=AS_OF
            )
        return len(queries.captured_queries)

    assert statements(50) == statements(10)
    # Orders past their return window also become available set-based.
    assert statements(50, 40 * DAY) == statements(10, 40 * DAY)
