"""Hypothesis stateful test of the points ledger against a plain-Python reference model.

Random orders (earning or not; one by one or in batches), partial and full refunds (new
ones, or an earlier one growing), cancellations, redemptions, adjustments, activations and
expiries while a clock advances, duplicate deliveries (same payload: the first result;
another payload: a conflict). After every step: each transaction's postings sum to zero,
balances from postings = selector = cached row, nothing negative except the recorded debt,
every event applied once (one transaction per key, as many transactions as the model
expects), expiry never took spent points, and the balances and every lot (remaining points,
dates, state) equal the model's.

The profile is derandomized (the same 50 runs of up to 40 steps every time) so CI is
reproducible; ``PATRON_HYPOTHESIS_EXAMPLES=500 PATRON_HYPOTHESIS_RANDOM=1`` (and
``PATRON_HYPOTHESIS_STEPS``) run a longer random search.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from patron.loyalty.errors import IdempotencyConflictError, InsufficientPointsError
from patron.loyalty.ledger import (
    activate_pending_points,
    adjust_points,
    award_points_for_order,
    award_points_for_orders,
    expire_points,
    redeem_points,
    reverse_points_for_cancellation,
    reverse_points_for_refund,
)
from patron.loyalty.members import enrol_member
from patron.loyalty.models import LedgerTransaction, LotConsumption, Member, PointLot
from patron.loyalty.programme import configure_programme, get_programme
from patron.loyalty.selectors import MemberBalances
from patron.orders.choices import OrderStatusChoices
from patron.orders.models import Order, Refund
from tests.loyalty.points_helpers import (
    assert_ledger_consistent,
    make_customer,
    make_order,
    make_refund,
)

T0 = timezone.make_aware(datetime(2026, 1, 1, 9, 0))
PENDING_DAYS = 15
EXPIRY_MONTHS = 3
MINIMUM_ORDER = Decimal(5)
EARNING_CHANNELS = ["web", "app"]
EXAMPLES = int(os.environ.get("PATRON_HYPOTHESIS_EXAMPLES", "50"))
STEPS = int(os.environ.get("PATRON_HYPOTHESIS_STEPS", "40"))
RANDOM = os.environ.get("PATRON_HYPOTHESIS_RANDOM", "") == "1"


def months_later(moment: datetime, months: int) -> datetime:
    """Calendar months later in the shop's zone (the model's own copy of the rule)."""
    local = timezone.localtime(moment)
    year, month = divmod(local.month - 1 + months, 12)
    year += local.year
    month += 1
    days = [31, 29 if year % 4 == 0 else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return local.replace(year=year, month=month, day=min(local.day, days[month - 1]))


@dataclass
class ModelLot:
    key: str
    points: int
    remaining: int
    earned_at: datetime
    available_at: datetime
    expires_at: datetime
    sequence: int
    activated: bool = False


@dataclass
class ModelOrder:
    order: Any
    total: Decimal
    earned: int
    lot: ModelLot | None
    refunded: Decimal = Decimal(0)
    reversed: int = 0
    last_refund: Refund | None = None
    cancelled: bool = False


@dataclass
class Model:
    """The ledger as a list of lots and six counters: what the rules say should happen."""

    lots: list[ModelLot] = field(default_factory=list)
    pending: int = 0
    available: int = 0
    debt: int = 0
    redeemed: int = 0
    expired: int = 0
    lifetime_earned: int = 0
    transactions: int = 0

    def balances(self) -> MemberBalances:
        return MemberBalances(
            self.pending,
            self.available,
            self.expired,
            self.redeemed,
            self.lifetime_earned,
            self.debt,
        )

    def fifo(self, *, activated: bool, exclude: ModelLot | None = None) -> list[ModelLot]:
        lots = [
            lot
            for lot in self.lots
            if lot.activated == activated and lot.remaining > 0 and lot is not exclude
        ]
        return sorted(lots, key=lambda lot: (lot.earned_at, lot.sequence))

    def take(self, lots: list[ModelLot], points: int) -> int:
        """Take up to ``points`` from ``lots`` in order; returns what was taken."""
        taken = 0
        for lot in lots:
            part = min(lot.remaining, points - taken)
            lot.remaining -= part
            taken += part
        return taken

    def repay_debt(self) -> None:
        repay = min(self.debt, self.available)
        if repay > 0:
            self.take(self.fifo(activated=True), repay)
            self.available -= repay
            self.debt -= repay
            self.transactions += 1


@dataclass
class Delivery:
    """An applied event that can be delivered again, and the transaction it produced."""

    replay: Callable[[], LedgerTransaction]
    transaction_pk: int


class LedgerMachine(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        # Each example runs in a savepoint that teardown rolls back: a clean ledger each time.
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        self.programme = configure_programme(
            get_programme(),
            pending_days=PENDING_DAYS,
            points_per_unit=1,
            rounding="floor",
            minimum_order_amount=MINIMUM_ORDER,
            earning_channels=EARNING_CHANNELS,
            expiry_policy="months_after_earning",
            expiry_months=EXPIRY_MONTHS,
        )
        self.member: Member = enrol_member(make_customer(), as_of=T0, programme=self.programme)
        self.clock = T0
        self.model = Model()
        self.sequence = 0
        self.deliveries: list[Delivery] = []
        self.redemptions: list[tuple[str, int]] = []
        self.key_number = 0

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.atomic.__exit__(None, None, None)

    def next_key(self, kind: str) -> str:
        self.key_number += 1
        return f"{kind}:{self.key_number}"

    def new_lot(self, key: str, points: int, *, activated: bool) -> ModelLot:
        self.sequence += 1
        lot = ModelLot(
            key=key,
            points=points,
            remaining=points,
            earned_at=self.clock,
            available_at=self.clock + timedelta(days=0 if activated else PENDING_DAYS),
            expires_at=months_later(self.clock, EXPIRY_MONTHS),
            sequence=self.sequence,
            activated=activated,
        )
        self.model.lots.append(lot)
        return lot

    # ------------------------------------------------------------------ rules

    @initialize(target=orders, yuan=st.integers(min_value=20, max_value=200))
    def start_with_available_points(self, yuan: int) -> ModelOrder:
        """Every run starts with one order whose points have become available."""
        placed = self.place_order(yuan=yuan, fen=0, channel="web")
        self.advance_clock(days=PENDING_DAYS, run_jobs=True)
        return placed

    @rule(
        target=orders,
        yuan=st.integers(min_value=0, max_value=200),
        fen=st.integers(min_value=0, max_value=99),
        channel=st.sampled_from(["web", "web", "app", "store"]),
    )
    def place_order(self, yuan: int, fen: int, channel: str) -> ModelOrder:
        total = Decimal(yuan) + Decimal(fen) / 100
        order = make_order(self.member.customer, total, self.clock, channel=channel)
        key = self.next_key("paid")
        entry = award_points_for_order(
            order, idempotency_key=key, as_of=self.clock, programme=self.programme
        )
        return self.expect_award(order, total, channel, key, entry)

    @rule(
        target=orders,
        sales=st.lists(
            st.tuples(st.integers(min_value=0, max_value=120), st.sampled_from(["web", "store"])),
            min_size=1,
            max_size=4,
        ),
        repeat_first=st.booleans(),
    )
    def place_orders_in_a_batch(
        self, sales: list[tuple[int, str]], repeat_first: bool
    ) -> MultipleResults[ModelOrder]:
        """Orders awarded by ``award_points_for_orders``, sometimes with the first order
        delivered twice in the batch."""
        batch = [
            make_order(self.member.customer, Decimal(yuan), self.clock, channel=channel)
            for yuan, channel in sales
        ]
        keys = [self.next_key("paid") for _ in batch]
        orders = batch + batch[:1] if repeat_first else batch
        entries = award_points_for_orders(
            orders,
            idempotency_keys=keys + keys[:1] if repeat_first else keys,
            as_of=self.clock,
            programme=self.programme,
        )
        if repeat_first:
            assert entries[-1].pk == entries[0].pk
        placed = [
            self.expect_award(order, Decimal(yuan), channel, key, entry)
            for order, (yuan, channel), key, entry in zip(batch, sales, keys, entries, strict=False)
        ]
        return multiple(*placed)

    def expect_award(
        self, order: Any, total: Decimal, channel: str, key: str, entry: LedgerTransaction
    ) -> ModelOrder:
        earns = channel in EARNING_CHANNELS and total >= MINIMUM_ORDER and total > 0
        expected = math.floor(total) if earns else 0
        assert entry.points == expected
        self.model.transactions += 1
        lot = None
        if expected:
            lot = self.new_lot(key, expected, activated=False)
            self.model.pending += expected
            self.model.lifetime_earned += expected
        self.deliveries.append(
            Delivery(
                lambda: award_points_for_order(
                    order, idempotency_key=key, as_of=self.clock, programme=self.programme
                ),
                entry.pk,
            )
        )
        return ModelOrder(order=order, total=total, earned=expected, lot=lot)

    @rule(
        placed=orders,
        percent=st.sampled_from([100, 100, 75, 50, 34, 10, 1]),
        grow=st.booleans(),
    )
    def refund(self, placed: ModelOrder, percent: int, grow: bool) -> None:
        """A new refund, or (``grow``) the order's last refund growing by the amount, as a
        later import row says: only the difference is reversed."""
        left = placed.total - placed.refunded
        if left <= 0:
            return
        amount = max(Decimal("0.01"), (left * percent / 100).quantize(Decimal("0.01")))
        amount = min(amount, left)
        if grow and placed.last_refund is not None:
            Refund.objects.filter(pk=placed.last_refund.pk).update(amount=F("amount") + amount)
            # A new instance: earlier deliveries replay with the amount they were sent with.
            refund = Refund.objects.get(pk=placed.last_refund.pk)
        else:
            refund = make_refund(placed.order, amount, self.clock)
        placed.last_refund = refund
        key = self.next_key("refund")
        entry = reverse_points_for_refund(
            placed.order, refund, idempotency_key=key, as_of=self.clock, programme=self.programme
        )
        placed.refunded += amount
        assert entry.points == self.expect_reversal(placed)
        assert entry.refunded_amount == amount
        self.deliveries.append(
            Delivery(
                lambda: reverse_points_for_refund(
                    placed.order, refund, idempotency_key=key, programme=self.programme
                ),
                entry.pk,
            )
        )

    @rule(placed=orders)
    def cancel(self, placed: ModelOrder) -> None:
        """The order is cancelled: every point it still holds comes back."""
        if placed.cancelled:
            return
        Order.objects.filter(pk=placed.order.pk).update(status=OrderStatusChoices.CANCELLED)
        order = Order.objects.get(pk=placed.order.pk)
        key = self.next_key("cancel")
        entry = reverse_points_for_cancellation(
            order, idempotency_key=key, as_of=self.clock, programme=self.programme
        )
        assert entry.refunded_amount == placed.total - placed.refunded
        placed.refunded = placed.total
        placed.cancelled = True
        assert entry.points == self.expect_reversal(placed)
        # The same cancellation under another key (another source telling it) is the same.
        again = reverse_points_for_cancellation(
            order, idempotency_key=self.next_key("cancel"), programme=self.programme
        )
        assert again.pk == entry.pk
        self.deliveries.append(
            Delivery(
                lambda: reverse_points_for_cancellation(
                    order, idempotency_key=key, programme=self.programme
                ),
                entry.pk,
            )
        )

    def expect_reversal(self, placed: ModelOrder) -> int:
        """Apply to the model the reversal that brings ``placed`` to its refunded amount;
        returns the points it takes back."""
        self.model.transactions += 1
        if not placed.earned:
            return 0
        kept = math.floor(
            Fraction(placed.earned)
            * Fraction(placed.total - placed.refunded)
            / Fraction(placed.total)
        )
        expected = placed.earned - kept - placed.reversed
        placed.reversed += expected
        model = self.model
        left_to_take = expected
        # The order's own lot, other pending lots, other available lots, then debt.
        own = [placed.lot] if placed.lot and placed.lot.remaining > 0 else []
        for lots, pending in (
            ([lot for lot in own if not lot.activated], True),
            ([lot for lot in own if lot.activated], False),
            (model.fifo(activated=False, exclude=placed.lot), True),
            (model.fifo(activated=True, exclude=placed.lot), False),
        ):
            taken = model.take(lots, left_to_take)
            left_to_take -= taken
            if pending:
                model.pending -= taken
            else:
                model.available -= taken
        model.debt += left_to_take
        model.lifetime_earned -= expected
        return expected

    @rule(percent=st.sampled_from([100, 100, 90, 60, 30, 5, 101]))
    def redeem(self, percent: int) -> None:
        # A share of what is available, so that most redemptions go through (and often all
        # of it, so that refunds run into spent points); 101% asks for one point more than
        # the balance and must be refused.
        available = self.model.available
        points = available + 1 if percent > 100 else max(1, available * percent // 100)
        key = self.next_key("redeem")
        if points > self.model.available:
            with pytest.raises(InsufficientPointsError):
                redeem_points(self.member, points, idempotency_key=key, as_of=self.clock)
            return
        entry = redeem_points(self.member, points, idempotency_key=key, as_of=self.clock)
        assert entry.points == points
        self.model.take(self.model.fifo(activated=True), points)
        self.model.available -= points
        self.model.redeemed += points
        self.model.transactions += 1
        self.redemptions.append((key, points))
        self.deliveries.append(
            Delivery(lambda: redeem_points(self.member, points, idempotency_key=key), entry.pk)
        )

    @rule(points=st.integers(min_value=-150, max_value=200).filter(bool))
    def adjust(self, points: int) -> None:
        key = self.next_key("adjust")
        if points < 0 and -points > self.model.available:
            with pytest.raises(InsufficientPointsError):
                adjust_points(
                    self.member, points, reason="test", actor="user:qa", idempotency_key=key
                )
            return
        entry = adjust_points(
            self.member,
            points,
            reason="test",
            actor="user:qa",
            idempotency_key=key,
            as_of=self.clock,
        )
        self.model.transactions += 1
        self.model.available += points
        if points > 0:
            self.model.lifetime_earned += points
            self.new_lot(key, points, activated=True)
            self.model.repay_debt()
        else:
            self.model.take(self.model.fifo(activated=True), -points)
        self.deliveries.append(
            Delivery(
                lambda: adjust_points(
                    self.member, points, reason="test", actor="user:qa", idempotency_key=key
                ),
                entry.pk,
            )
        )

    @rule(days=st.integers(min_value=1, max_value=40), run_jobs=st.booleans())
    def advance_clock(self, days: int, run_jobs: bool) -> None:
        """Days pass; with ``run_jobs`` the daily job runs (activation, then expiry)."""
        self.clock += timedelta(days=days)
        if run_jobs:
            self.activate()
            self.expire()

    def activate(self) -> None:
        activate_pending_points(self.clock, programme=self.programme)
        due = sorted(
            (
                lot
                for lot in self.model.lots
                if not lot.activated and lot.available_at <= self.clock
            ),
            key=lambda lot: (lot.available_at, lot.sequence),
        )
        for lot in due:
            lot.activated = True
            self.model.pending -= lot.remaining
            self.model.available += lot.remaining
            self.model.transactions += 1
        if due:
            self.model.repay_debt()

    def expire(self) -> None:
        result = expire_points(self.clock, programme=self.programme)
        expected = 0
        for lot in self.model.lots:
            if lot.activated and lot.remaining > 0 and lot.expires_at <= self.clock:
                expected += lot.remaining
                self.model.available -= lot.remaining
                self.model.expired += lot.remaining
                lot.remaining = 0
                self.model.transactions += 1
        assert result.points == expected

    @precondition(lambda self: self.deliveries)
    @rule(data=st.data())
    def deliver_again(self, data: st.DataObject) -> None:
        delivery = data.draw(st.sampled_from(self.deliveries))
        assert delivery.replay().pk == delivery.transaction_pk

    @precondition(lambda self: self.redemptions)
    @rule(data=st.data())
    def reuse_a_key_for_another_request(self, data: st.DataObject) -> None:
        key, points = data.draw(st.sampled_from(self.redemptions))
        with pytest.raises(IdempotencyConflictError):
            redeem_points(self.member, points + 1, idempotency_key=key)

    # ------------------------------------------------------------------ checks

    @invariant()
    def ledger_matches_the_model(self) -> None:
        balances = assert_ledger_consistent(self.member)
        assert balances == self.model.balances()
        assert LedgerTransaction.objects.filter(member=self.member).count() == (
            self.model.transactions
        )
        lots = {
            key: (remaining, available_at, expires_at, activated is not None)
            for key, remaining, available_at, expires_at, activated in PointLot.objects.filter(
                member=self.member
            ).values_list(
                "earned_by__idempotency_key",
                "remaining_points",
                "available_at",
                "expires_at",
                "activated_by",
            )
        }
        assert lots == {
            lot.key: (lot.remaining, lot.available_at, lot.expires_at, lot.activated)
            for lot in self.model.lots
        }
        # Expiry only ever took a lot's unspent rest, and only once per lot.
        expiries = list(
            LotConsumption.objects.filter(
                lot__member=self.member, transaction__kind="expire"
            ).values_list("lot_id", flat=True)
        )
        assert len(expiries) == len(set(expiries))


@pytest.mark.slow
@pytest.mark.django_db
def test_ledger_state_machine() -> None:
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            derandomize=not RANDOM,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        ),
    )
