"""Orders settling their points: refunds that grow, cancellations, the programme's start,
and ``sync_order_points`` (what imports call) applying each order's state once."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from patron.loyalty.coupons import create_coupon_template, create_shared_coupon, redeem_coupon
from patron.loyalty.errors import LoyaltyInputError
from patron.loyalty.ledger import (
    activate_pending_points,
    award_points_for_order,
    redeem_points,
    reverse_points_for_cancellation,
    reverse_points_for_refund,
)
from patron.loyalty.members import enrol_member
from patron.loyalty.models import LedgerTransaction, Member, Programme
from patron.loyalty.models.coupons import CouponRedemption
from patron.loyalty.order_points import sync_order_points
from patron.loyalty.programme import configure_programme, get_programme
from patron.loyalty.selectors import member_balances
from patron.orders.choices import OrderStatusChoices
from patron.orders.models import Order, Refund
from tests.loyalty.points_helpers import (
    assert_ledger_consistent,
    ledger_size,
    make_customer,
    make_order,
    make_refund,
)

pytestmark = pytest.mark.django_db

T0 = timezone.make_aware(datetime(2026, 3, 2, 10, 0))
DAY = timedelta(days=1)


@pytest.fixture
def programme() -> Programme:
    return configure_programme(get_programme(), pending_days=15, points_per_unit=1)


@pytest.fixture
def member(programme: Programme) -> Member:
    return enrol_member(make_customer(), as_of=T0)


def _earned(order: Order) -> LedgerTransaction:
    return award_points_for_order(order, idempotency_key=f"paid:{order.external_id}", as_of=T0)


def _set_status(order: Order, status: str) -> Order:
    Order.objects.filter(pk=order.pk).update(status=status)
    order.refresh_from_db()
    return order


# --------------------------------------------------------------------------- growing refunds


def test_a_refund_that_grows_reverses_only_the_difference(member: Member) -> None:
    order = make_order(member.customer, 100, T0)
    _earned(order)
    refund = make_refund(order, 30, T0 + DAY)
    first = reverse_points_for_refund(order, refund, idempotency_key="r-30", as_of=T0 + DAY)

    Refund.objects.filter(pk=refund.pk).update(amount=Decimal(50))
    refund.refresh_from_db()
    second = reverse_points_for_refund(order, refund, idempotency_key="r-50", as_of=T0 + DAY)
    again = reverse_points_for_refund(order, refund, idempotency_key="r-50-bis", as_of=T0 + DAY)

    assert (first.points, first.refunded_amount) == (30, Decimal(30))
    assert (second.points, second.refunded_amount) == (20, Decimal(20))
    assert again.pk == second.pk
    assert member_balances(member).pending == 50
    assert assert_ledger_consistent(member).lifetime_earned == 50


def test_a_refund_that_did_not_grow_returns_the_earlier_reversal(member: Member) -> None:
    order = make_order(member.customer, 100, T0)
    _earned(order)
    refund = make_refund(order, 40, T0 + DAY)
    first = reverse_points_for_refund(order, refund, idempotency_key="a", as_of=T0 + DAY)

    second = reverse_points_for_refund(order, refund, idempotency_key="b", as_of=T0 + DAY)

    assert second.pk == first.pk
    assert LedgerTransaction.objects.filter(kind="refund").count() == 1


def test_a_grown_refund_past_the_order_total_is_refused_and_writes_nothing(
    member: Member,
) -> None:
    order = make_order(member.customer, 100, T0)
    _earned(order)
    refund = make_refund(order, 60, T0 + DAY)
    reverse_points_for_refund(order, refund, idempotency_key="r-60", as_of=T0 + DAY)
    other = make_refund(order, 30, T0 + DAY)
    reverse_points_for_refund(order, other, idempotency_key="r2-30", as_of=T0 + DAY)
    before = ledger_size()

    Refund.objects.filter(pk=refund.pk).update(amount=Decimal(80))
    refund.refresh_from_db()
    with pytest.raises(LoyaltyInputError, match=r"would total 110\.0000, more than its 100"):
        reverse_points_for_refund(order, refund, idempotency_key="r-80", as_of=T0 + DAY)

    assert ledger_size() == before


# --------------------------------------------------------------------------- cancellations


def test_a_cancelled_order_gives_back_every_point_it_still_holds(member: Member) -> None:
    order = make_order(member.customer, 100, T0)
    _earned(order)
    refund = make_refund(order, 30, T0 + DAY)
    reverse_points_for_refund(order, refund, idempotency_key="r", as_of=T0 + DAY)
    order = _set_status(order, OrderStatusChoices.CANCELLED)

    entry = reverse_points_for_cancellation(order, idempotency_key="cancel", as_of=T0 + 2 * DAY)
    again = reverse_points_for_cancellation(order, idempotency_key="cancel-2", as_of=T0 + 3 * DAY)

    assert (entry.points, entry.refunded_amount, entry.spend_amount) == (
        70,
        Decimal(70),
        Decimal(-70),
    )
    assert entry.reason == f"cancellation of order {order.external_id} of 70.0000: 70 of 100 points"
    assert again.pk == entry.pk
    balances = assert_ledger_consistent(member)
    assert (balances.pending, balances.available, balances.lifetime_earned) == (0, 0, 0)


def test_a_cancellation_after_the_points_were_spent_records_a_debt(member: Member) -> None:
    order = make_order(member.customer, 100, T0)
    _earned(order)
    activate_pending_points(T0 + 16 * DAY)
    redeem_points(member, 80, idempotency_key="spend", as_of=T0 + 17 * DAY)
    order = _set_status(order, OrderStatusChoices.CANCELLED)

    entry = reverse_points_for_cancellation(order, idempotency_key="c", as_of=T0 + 18 * DAY)

    assert entry.points == 100
    balances = assert_ledger_consistent(member)
    assert (balances.available, balances.debt, balances.redeemed) == (0, 80, 80)


def test_cancelling_an_order_that_is_still_paid_is_refused(member: Member) -> None:
    order = make_order(member.customer, 100, T0)
    _earned(order)

    with pytest.raises(LoyaltyInputError, match="is paid; only cancelled or returned orders"):
        reverse_points_for_cancellation(order, idempotency_key="c", as_of=T0)

    assert not LedgerTransaction.objects.filter(kind="refund").exists()


# --------------------------------------------------------------------------- programme start


def test_orders_placed_before_the_programme_started_earn_nothing(member: Member) -> None:
    configure_programme(earns_from="2026-03-01")
    before = make_order(member.customer, 100, timezone.make_aware(datetime(2026, 2, 28, 23, 59)))
    after = make_order(member.customer, 100, timezone.make_aware(datetime(2026, 3, 1, 0, 0)))

    old = _earned(before)
    new = _earned(after)

    assert (old.points, old.reason) == (
        0,
        "placed before the programme started earning on 2026-03-01",
    )
    assert new.points == 100


def test_earns_from_must_be_a_date(programme: Programme) -> None:
    with pytest.raises(LoyaltyInputError, match="earns_from: must be an ISO 8601 date"):
        configure_programme(earns_from="March")

    programme.refresh_from_db()
    assert programme.earns_from is None


# --------------------------------------------------------------------------- sync


def test_without_a_programme_sync_enrols_nobody_and_writes_nothing() -> None:
    order = make_order(make_customer(), 100, T0)

    result = sync_order_points([order.pk], as_of=T0)

    assert result.programme is None
    assert str(result) == "no active loyalty programme: no points"
    assert not Programme.objects.exists()
    assert not Member.objects.exists()


def test_sync_earns_paid_orders_and_leaves_the_rest_alone(programme: Programme) -> None:
    configure_programme(earns_from="2026-01-01")
    customer = make_customer()
    paid = make_order(customer, 120, T0)
    delivered = make_order(customer, 80, T0, status=OrderStatusChoices.DELIVERED)
    placed = make_order(customer, 50, T0, status=OrderStatusChoices.PLACED)
    dollars = make_order(make_customer(), 70, T0, currency="USD")
    history = make_order(make_customer(), 90, timezone.make_aware(datetime(2025, 12, 1)))
    ids = [order.pk for order in (paid, delivered, placed, dollars, history)]

    result = sync_order_points(ids, as_of=T0)
    size = ledger_size()
    again = sync_order_points(ids, as_of=T0 + DAY)

    assert (result.orders, result.earned, result.points_earned) == (5, 2, 200)
    assert result.skipped == {"in USD, not CNY": 1, "placed before the programme started": 1}
    assert Member.objects.get().customer == customer
    assert (again.earned, again.reversed) == (0, 0)
    assert ledger_size() == size
    assert assert_ledger_consistent(Member.objects.get()).pending == 200


def test_sync_applies_refunds_cancellations_and_a_later_growth_once(
    programme: Programme,
) -> None:
    customer = make_customer()
    refunded = make_order(customer, 100, T0)
    cancelled = make_order(customer, 200, T0)
    sync_order_points([refunded.pk, cancelled.pk], as_of=T0)
    refund = make_refund(refunded, 25, T0 + DAY)
    _set_status(cancelled, OrderStatusChoices.CANCELLED)

    first = sync_order_points([refunded.pk, cancelled.pk], as_of=T0 + DAY)
    Refund.objects.filter(pk=refund.pk).update(amount=Decimal(40))
    grown = sync_order_points([refunded.pk, cancelled.pk], as_of=T0 + 2 * DAY)
    size = ledger_size()
    unchanged = sync_order_points([refunded.pk, cancelled.pk], as_of=T0 + 3 * DAY)

    assert (first.reversed, first.points_reversed) == (2, 25 + 200)
    assert (grown.reversed, grown.points_reversed) == (1, 15)
    assert (unchanged.earned, unchanged.reversed) == (0, 0)
    assert ledger_size() == size
    member = Member.objects.get(customer=customer)
    assert assert_ledger_consistent(member).pending == 60


def test_a_returned_order_with_a_refund_record_is_settled_by_the_refund(
    programme: Programme,
) -> None:
    order = make_order(make_customer(), 100, T0)
    sync_order_points([order.pk], as_of=T0)
    make_refund(order, 40, T0 + DAY)
    _set_status(order, OrderStatusChoices.RETURNED)

    result = sync_order_points([order.pk], as_of=T0 + DAY)

    assert (result.reversed, result.points_reversed) == (1, 40)
    assert not LedgerTransaction.objects.filter(kind="refund", refund__isnull=True).exists()


def test_sync_of_a_cancelled_order_releases_its_coupon_use(programme: Programme) -> None:
    customer = make_customer()
    template = create_coupon_template(
        name="10 off", kind="fixed_amount", value=Decimal(10), total_use_limit=1
    )
    coupon = create_shared_coupon(template, "TENOFF")
    order = make_order(customer, 100, T0)
    redeem_coupon(coupon.code, customer, order.external_id, Decimal(100), at=T0)
    _set_status(order, OrderStatusChoices.CANCELLED)

    result = sync_order_points([order.pk], as_of=T0 + DAY)

    assert result.coupons_released == 1
    redemption = CouponRedemption.objects.get()
    assert redemption.released_at == T0 + DAY
    coupon.refresh_from_db()
    assert coupon.times_used == 0


def test_sync_reports_a_refund_the_ledger_refuses_and_goes_on(programme: Programme) -> None:
    customer = make_customer()
    order = make_order(customer, 100, T0)
    other = make_order(customer, 50, T0)
    sync_order_points([order.pk, other.pk], as_of=T0)
    first = make_refund(order, 70, T0 + DAY)
    sync_order_points([order.pk], as_of=T0 + DAY)
    Refund.objects.filter(pk=first.pk).update(amount=Decimal(60))
    make_refund(order, 50, T0 + DAY)  # 70 applied + 50 > 100
    make_refund(other, 10, T0 + DAY)

    result = sync_order_points([order.pk, other.pk], as_of=T0 + 2 * DAY)

    assert len(result.problems) == 1
    assert "more than its 100" in result.problems[0]
    assert (result.reversed, result.points_reversed) == (1, 10)


def test_sync_orders_command_settles_every_order(programme: Programme) -> None:
    customer = make_customer()
    make_order(customer, 30, T0)
    make_order(customer, 20, T0)
    out = StringIO()

    call_command("loyalty", "sync-orders", "--as-of", "2026-03-02", stdout=out)

    assert out.getvalue().strip() == (
        "2 orders: 2 orders earned 50 points, 0 refunds or cancellations took back 0"
    )
    assert assert_ledger_consistent(Member.objects.get()).pending == 50


def test_a_late_redelivery_of_the_payment_after_a_cancellation_gets_its_answer(
    member: Member,
) -> None:
    order = make_order(member.customer, 100, T0)
    earned = _earned(order)
    order = _set_status(order, OrderStatusChoices.CANCELLED)

    again = award_points_for_order(order, idempotency_key=f"paid:{order.external_id}", as_of=T0)

    assert again.pk == earned.pk
    with pytest.raises(LoyaltyInputError, match="is cancelled; only paid orders earn"):
        award_points_for_order(order, idempotency_key="another-key", as_of=T0)


def test_sync_over_every_order_reads_them_in_chunks(
    programme: Programme, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks of 2 orders: no read of the orders stays open while a chunk writes (SQLite
    # refuses to drop the writes' staging table under an open statement).
    monkeypatch.setattr("patron.loyalty.order_points.READ_CHUNK", 2)
    customer = make_customer()
    for total in (10, 20, 30, 40, 50):
        make_order(customer, total, T0)

    result = sync_order_points(as_of=T0)

    assert (result.orders, result.earned, result.points_earned) == (5, 5, 150)
    assert assert_ledger_consistent(Member.objects.get()).pending == 150
