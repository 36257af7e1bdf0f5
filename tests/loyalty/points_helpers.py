"""Builders and ledger invariant checks shared by the points tests (ledger, tiers, programme,
concurrency). The checks recompute everything from the raw tables with plain Python."""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from patron.catalog.models import Category, Product
from patron.customers.models import Customer
from patron.loyalty.models import (
    LedgerTransaction,
    LotConsumption,
    Member,
    PointBalance,
    PointLot,
    Posting,
)
from patron.loyalty.selectors import MemberBalances, cached_balances, member_balances
from patron.orders.choices import OrderStatusChoices
from patron.orders.models import Order, OrderLine, Refund

_counter = itertools.count(1)


def make_customer(external_id: str | None = None) -> Customer:
    return Customer.objects.create(external_id=external_id or f"c{next(_counter)}")


def make_order(
    customer: Customer,
    total: Decimal | str | int,
    ordered_at: datetime,
    *,
    channel: str = "web",
    status: str = OrderStatusChoices.PAID,
    currency: str = "CNY",
    lines: list[tuple[Product | None, Decimal]] | None = None,
    discount: Decimal | str | int = 0,
) -> Order:
    """An order; ``lines`` are (product, line total) pairs, whose sum is the subtotal."""
    total = Decimal(total)
    discount = Decimal(discount)
    subtotal = sum((amount for _, amount in lines), Decimal(0)) if lines else total + discount
    order = Order.objects.create(
        external_id=f"o{next(_counter)}",
        customer=customer,
        ordered_at=ordered_at,
        status=status,
        channel=channel,
        currency=currency,
        subtotal_amount=subtotal,
        discount_amount=discount,
        total_amount=total,
    )
    for number, (product, amount) in enumerate(lines or [], start=1):
        OrderLine.objects.create(
            order=order,
            line_key=f"l{number}",
            line_number=number,
            product=product,
            quantity=1,
            unit_price_amount=amount,
            line_total_amount=amount,
        )
    return order


def make_refund(order: Order, amount: Decimal | str | int, refunded_at: datetime) -> Refund:
    return Refund.objects.create(
        external_id=f"r{next(_counter)}",
        order=order,
        amount=Decimal(amount),
        currency=order.currency,
        refunded_at=refunded_at,
    )


def make_product(category: Category | None = None) -> Product:
    return Product.objects.create(external_id=f"p{next(_counter)}", category=category)


def make_category(name: str, parent: Category | None = None) -> Category:
    path = f"{parent.path} > {name}" if parent else name
    return Category.objects.create(name=name, parent=parent, path=path)


def balances_by_hand(member: Member) -> MemberBalances:
    """Balances recomputed from the posting rows one by one (independent of the selector)."""
    sums: dict[str, int] = defaultdict(int)
    added_by_hand = 0
    for account, points in Posting.objects.filter(transaction__member=member).values_list(
        "account", "points"
    ):
        sums[account] += points
        if account == "programme_adjustments" and points < 0:
            added_by_hand -= points
    return MemberBalances(
        pending=sums["member_pending"],
        available=sums["member_available"],
        expired=sums["programme_expired"],
        redeemed=sums["programme_redeemed"],
        lifetime_earned=-sums["programme_issued"] + added_by_hand,
        debt=-sums["member_debt"],
    )


def assert_ledger_consistent(member: Member) -> MemberBalances:
    """Every invariant of a member's points; returns the balances."""
    # Postings of each transaction sum to zero, and no posting is of another member.
    per_transaction: dict[int, int] = defaultdict(int)
    for transaction_id, points, posting_member in Posting.objects.filter(
        transaction__member=member
    ).values_list("transaction_id", "points", "member_id"):
        per_transaction[transaction_id] += points
        assert posting_member == member.pk
    assert all(total == 0 for total in per_transaction.values()), per_transaction
    # Balances from postings = selector = cached row.
    by_hand = balances_by_hand(member)
    assert member_balances(member) == by_hand
    assert cached_balances(member) == by_hand
    # Nothing negative except the debt account, and debt only when nothing is available.
    assert by_hand.pending >= 0
    assert by_hand.available >= 0
    assert by_hand.debt >= 0
    assert by_hand.debt == 0 or by_hand.available == 0
    removed_by_hand = sum(
        points
        for points in Posting.objects.filter(
            transaction__member=member, account="programme_adjustments", points__gt=0
        ).values_list("points", flat=True)
    )
    assert by_hand.pending + by_hand.available - by_hand.debt == (
        by_hand.lifetime_earned - by_hand.redeemed - by_hand.expired - removed_by_hand
    )
    assert by_hand.lifetime_earned >= 0
    # Lots: remaining = points - consumptions; pending/available = remaining of the lots.
    taken: dict[int, int] = defaultdict(int)
    for lot_id, points in LotConsumption.objects.filter(lot__member=member).values_list(
        "lot_id", "points"
    ):
        taken[lot_id] += points
    pending = available = 0
    for lot in PointLot.objects.filter(member=member):
        assert lot.remaining_points == lot.points - taken[lot.pk], lot
        if lot.activated_by_id is None:
            pending += lot.remaining_points
        else:
            available += lot.remaining_points
    assert (pending, available) == (by_hand.pending, by_hand.available)
    # Every consumption of an expiry took only what the lot still had (never spent points):
    # the lot's expire transaction took exactly what was left after the earlier consumptions.
    for consumption in LotConsumption.objects.filter(
        lot__member=member, transaction__kind="expire"
    ).select_related("lot", "transaction"):
        earlier = sum(
            c.points
            for c in LotConsumption.objects.filter(lot=consumption.lot, pk__lt=consumption.pk)
        )
        assert consumption.points == consumption.lot.points - earlier
    assert PointBalance.objects.filter(member=member).count() == 1
    return by_hand


def ledger_size() -> tuple[int, int, int, int]:
    """Row counts of the ledger tables (to prove a refused action wrote nothing)."""
    return (
        LedgerTransaction.objects.count(),
        Posting.objects.count(),
        PointLot.objects.count(),
        LotConsumption.objects.count(),
    )
