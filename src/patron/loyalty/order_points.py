"""Keep the points ledger in step with the shop's orders as they are recorded.

Imports and the ingest API write orders set-based; afterwards they hand the orders they
inserted or changed to :func:`sync_order_points`, which applies what each order's current
state asks of the ledger and nothing twice:

* a paid order that has not earned earns (in batches, see ``award_points_for_orders``);
* a refund that has grown since it was last applied reverses the points of the difference;
* an order cancelled or returned after it earned gives back what it still holds (a returned
  order with refund records is settled by those records instead), and a cancelled order
  releases the coupon codes it redeemed.

Orders placed before the programme's ``earns_from`` and orders in another currency than the
programme's are left alone (no member is enrolled for them). Without an active programme
nothing happens: a shop that has not set one up imports its history untouched.
``patron loyalty sync-orders`` runs the same over every order (after a programme is set up
on a store that already holds orders, or to catch up after a failure).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from patron.loyalty.coupons import release_coupon_use
from patron.loyalty.errors import LoyaltyError
from patron.loyalty.ledger import (
    award_points_for_orders,
    reverse_points_for_cancellation,
    reverse_points_for_refund,
)
from patron.loyalty.models import LedgerTransaction, Programme
from patron.loyalty.models.coupons import CouponRedemption
from patron.loyalty.models.ledger import TransactionKindChoices
from patron.loyalty.programme import CANCELLED_STATUSES, PAID_STATUSES
from patron.loyalty.selectors import find_programme
from patron.orders.choices import OrderStatusChoices
from patron.orders.models import Order, Refund

#: Orders read per step, and orders earned per database transaction.
READ_CHUNK = 2_000
EARN_BATCH = 500


@dataclass
class OrderPointsSync:
    """What one sync did. ``programme`` is None when no programme is active (nothing done)."""

    programme: Programme | None
    orders: int = 0
    earned: int = 0
    points_earned: int = 0
    reversed: int = 0
    points_reversed: int = 0
    coupons_released: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    #: Orders the ledger refused (with why), e.g. refunds that add up to more than the order.
    problems: list[str] = field(default_factory=list)

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` orders left alone for ``reason``."""
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def __str__(self) -> str:
        if self.programme is None:
            return "no active loyalty programme: no points"
        text = (
            f"{self.earned:,} orders earned {self.points_earned:,} points, "
            f"{self.reversed:,} refunds or cancellations took back {self.points_reversed:,}"
        )
        if self.coupons_released:
            text += f", {self.coupons_released:,} coupon uses released"
        if self.problems:
            text += f"; {len(self.problems):,} refused by the ledger"
        if self.skipped:
            text += "; left alone: " + ", ".join(
                f"{count:,} {reason}" for reason, count in sorted(self.skipped.items())
            )
        return text


def sync_order_points(
    order_ids: Iterable[int] | None = None,
    *,
    as_of: datetime | None = None,
    programme: Programme | None = None,
) -> OrderPointsSync:
    """Apply to the ledger what the current state of the orders ``order_ids`` (primary keys;
    None: every order) asks for: earn, reverse refunds, give back cancelled orders' points and
    coupon uses. Running it again changes nothing (every action has its idempotency key)."""
    programme = programme or find_programme()
    result = OrderPointsSync(programme)
    if programme is None:
        return result
    as_of = as_of or timezone.now()
    for chunk in _chunks(order_ids):
        _sync_chunk(chunk, programme, as_of, result)
    return result


def _chunks(order_ids: Iterable[int] | None) -> Iterator[list[int]]:
    if order_ids is None:
        # Keyset pages, each read whole: no cursor stays open while a chunk writes (SQLite
        # cannot drop the writes' staging table under an open statement).
        last = 0
        while chunk := list(
            Order.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", flat=True)[:READ_CHUNK]
        ):
            yield chunk
            last = chunk[-1]
        return
    ids = sorted(set(order_ids))
    for start in range(0, len(ids), READ_CHUNK):
        yield ids[start : start + READ_CHUNK]


def _sync_chunk(
    chunk: list[int], programme: Programme, as_of: datetime, result: OrderPointsSync
) -> None:
    orders = list(Order.objects.filter(pk__in=chunk).order_by("pk"))
    result.orders += len(orders)
    eligible: list[Order] = []
    for order in orders:
        if programme.earns_from is not None and order.ordered_at < programme.earns_from:
            result.skip("placed before the programme started")
        elif order.currency.upper() != programme.currency.upper():
            result.skip(f"in {order.currency}, not {programme.currency}")
        else:
            eligible.append(order)
    if not eligible:
        return
    earned: set[int] = set()
    cancelled: set[int] = set()
    applied: dict[int, Decimal] = defaultdict(Decimal)  # refund pk -> amount reversed so far
    for order_id, kind, refund_id, amount in LedgerTransaction.objects.filter(
        order_id__in=[order.pk for order in eligible],
        kind__in=[TransactionKindChoices.EARN, TransactionKindChoices.REFUND],
    ).values_list("order_id", "kind", "refund_id", "refunded_amount"):
        if kind == TransactionKindChoices.EARN:
            earned.add(order_id)
        elif refund_id is None:
            cancelled.add(order_id)
        else:
            applied[refund_id] += amount

    to_earn = [o for o in eligible if o.status in PAID_STATUSES and o.pk not in earned]
    for start in range(0, len(to_earn), EARN_BATCH):
        batch = to_earn[start : start + EARN_BATCH]
        entries = award_points_for_orders(
            batch,
            idempotency_keys=[f"order:{order.external_id}:earn" for order in batch],
            as_of=as_of,
            programme=programme,
        )
        result.earned += len(entries)
        result.points_earned += sum(entry.points for entry in entries)
        earned.update(order.pk for order in batch)

    holding = {order.pk: order for order in eligible if order.pk in earned}
    refunded_orders: set[int] = set()
    for refund in Refund.objects.filter(order_id__in=list(holding)).order_by("refunded_at", "pk"):
        refunded_orders.add(refund.order_id)
        if refund.amount <= applied[refund.pk]:
            continue
        try:
            entry = reverse_points_for_refund(
                holding[refund.order_id],
                refund,
                idempotency_key=f"refund:{refund.external_id}:{refund.amount}",
                as_of=as_of,
                programme=programme,
            )
        except LoyaltyError as error:
            result.problems.append(f"refund {refund.external_id}: {error}")
            continue
        result.reversed += 1
        result.points_reversed += entry.points

    for order in holding.values():
        if order.status not in CANCELLED_STATUSES or order.pk in cancelled:
            continue
        if order.status == OrderStatusChoices.RETURNED and order.pk in refunded_orders:
            continue  # the return's refund records say how much came back
        try:
            entry = reverse_points_for_cancellation(
                order,
                idempotency_key=f"order:{order.external_id}:cancel",
                as_of=as_of,
                programme=programme,
            )
        except LoyaltyError as error:
            result.problems.append(f"order {order.external_id}: {error}")
            continue
        result.reversed += 1
        result.points_reversed += entry.points

    cancelled_ids = [o.external_id for o in eligible if o.status == OrderStatusChoices.CANCELLED]
    if cancelled_ids:
        for code, shop_order_id in (
            CouponRedemption.objects.filter(order_id__in=cancelled_ids, released_at__isnull=True)
            .order_by("pk")
            .values_list("coupon__code", "order_id")
        ):
            release_coupon_use(code, shop_order_id, at=as_of)
            result.coupons_released += 1
