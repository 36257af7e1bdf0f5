"""Referrals: every refusal at recording (unknown code, self-referral by each shared
identifier, already referred, already ordered, farming cap) writes nothing; settlement
rewards both sides only after the first order's return window, refuses cancelled and fully
refunded first orders, and grants nothing twice."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from patron.customers.models import Customer, CustomerIdentity
from patron.loyalty.errors import LoyaltyInputError
from patron.loyalty.ledger import award_points_for_order
from patron.loyalty.members import enrol_member
from patron.loyalty.models import LedgerTransaction, Member, Programme, Referral
from patron.loyalty.programme import configure_programme, get_programme
from patron.loyalty.referrals import (
    ALREADY_ORDERED,
    ALREADY_REFERRED,
    CAP_REACHED,
    FIRST_ORDER_CANCELLED,
    FIRST_ORDER_REFUNDED,
    SELF_SAME_CUSTOMER,
    SELF_SHARED_DEVICE,
    SELF_SHARED_EMAIL,
    SELF_SHARED_PHONE,
    UNKNOWN_CODE,
    ReferralRefusedError,
    configure_referral_policy,
    record_referral,
    settle_referrals,
)
from patron.orders.choices import OrderStatusChoices
from patron.orders.models import Event
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
PENDING_DAYS = 15
REFERRER_POINTS = 500
REFEREE_POINTS = 200
_events = itertools.count(1)


@pytest.fixture
def programme() -> Programme:
    programme = configure_programme(get_programme(), pending_days=PENDING_DAYS, points_per_unit=1)
    configure_referral_policy(
        programme,
        referrer_points=REFERRER_POINTS,
        referee_points=REFEREE_POINTS,
        max_referrals_per_period=3,
        period_days=30,
    )
    return programme


@pytest.fixture
def referrer(programme: Programme) -> Member:
    customer = Customer.objects.create(
        external_id="alice", phone="138 1234 5678", email="Alice@Example.com"
    )
    return enrol_member(customer, as_of=T0 - 100 * DAY)


def written() -> tuple[int, ...]:
    """Row counts that a refused referral must leave as they were."""
    return (*ledger_size(), Referral.objects.count(), Member.objects.count())


def refused(code: str, customer: Customer, referral_code: str, at: datetime = T0) -> str:
    before = written()
    with pytest.raises(ReferralRefusedError) as caught:
        record_referral(referral_code, customer, as_of=at)
    assert caught.value.code == code
    assert written() == before
    return str(caught.value)


def add_event(customer: Customer, device_id: str) -> None:
    Event.objects.create(
        external_id=f"e{next(_events)}",
        customer=customer,
        device_id=device_id,
        event_type="view",
        occurred_at=T0 - DAY,
    )


# --------------------------------------------------------------------------- recording


def test_a_new_customer_is_enrolled_and_the_referral_is_pending(referrer: Member) -> None:
    newcomer = make_customer()

    referral = record_referral(f" {referrer.referral_code.lower()} ", newcomer, as_of=T0)

    assert (referral.status, referral.referrer_id, referral.referred_at) == (
        "pending",
        referrer.pk,
        T0,
    )
    assert referral.referee.customer_id == newcomer.pk
    assert referral.referral_code == referrer.referral_code
    assert LedgerTransaction.objects.count() == 0


def test_an_unknown_code_is_refused(referrer: Member) -> None:
    message = refused(UNKNOWN_CODE, make_customer(), "ZZZZ2222")

    assert "ZZZZ2222" in message


def test_an_empty_code_is_bad_input(referrer: Member) -> None:
    with pytest.raises(LoyaltyInputError, match="referral_code"):
        record_referral("  ", make_customer(), as_of=T0)


def test_a_member_using_their_own_code_is_refused(referrer: Member) -> None:
    refused(SELF_SAME_CUSTOMER, referrer.customer, referrer.referral_code)


def test_a_customer_sharing_the_referrers_phone_is_refused(referrer: Member) -> None:
    # Same number written another way: normalised to +8613812345678 on both sides.
    twin = Customer.objects.create(external_id="twin", phone="+86 138-1234-5678")

    message = refused(SELF_SHARED_PHONE, twin, referrer.referral_code)

    assert message == ("self-referral: customer twin shares a phone number with the referrer alice")


def test_a_customer_sharing_the_referrers_email_is_refused(referrer: Member) -> None:
    twin = Customer.objects.create(external_id="twin", email="  alice@EXAMPLE.com ")

    message = refused(SELF_SHARED_EMAIL, twin, referrer.referral_code)

    assert "e-mail address" in message


def test_an_email_attached_by_identity_resolution_counts(referrer: Member) -> None:
    # A merged duplicate left the address as an identity of the newcomer, not on its profile.
    twin = Customer.objects.create(external_id="twin", email="twin@example.com")
    CustomerIdentity.objects.create(customer=twin, kind="email", value="alice@example.com")

    refused(SELF_SHARED_EMAIL, twin, referrer.referral_code)


def test_a_customer_on_the_referrers_device_is_refused(referrer: Member) -> None:
    # The referrer's device is a resolved identity; the newcomer browsed from it.
    CustomerIdentity.objects.create(customer=referrer.customer, kind="device", value="dev-42")
    twin = make_customer()
    add_event(twin, "dev-42")

    message = refused(SELF_SHARED_DEVICE, twin, referrer.referral_code)

    assert "device" in message


def test_devices_seen_only_in_events_count_on_both_sides(referrer: Member) -> None:
    add_event(referrer.customer, "tablet-7")
    twin = make_customer()
    add_event(twin, "tablet-7")

    refused(SELF_SHARED_DEVICE, twin, referrer.referral_code)


def test_unrelated_identifiers_are_not_a_self_referral(referrer: Member) -> None:
    add_event(referrer.customer, "phone-a")
    other = Customer.objects.create(external_id="bob", phone="13900000000", email="bob@example.com")
    add_event(other, "phone-b")

    assert record_referral(referrer.referral_code, other, as_of=T0).status == "pending"


def test_a_customer_referred_before_is_refused(referrer: Member) -> None:
    second_referrer = enrol_member(make_customer(), as_of=T0 - DAY)
    newcomer = make_customer()
    record_referral(referrer.referral_code, newcomer, as_of=T0)

    message = refused(ALREADY_REFERRED, newcomer, second_referrer.referral_code, T0 + DAY)

    assert "already referred by alice" in message


def test_a_customer_who_already_ordered_is_refused(referrer: Member) -> None:
    customer = make_customer()
    order = make_order(customer, 80, T0 - 5 * DAY)

    message = refused(ALREADY_ORDERED, customer, referrer.referral_code)

    assert order.external_id in message


def test_a_cancelled_earlier_order_does_not_make_a_customer_old(referrer: Member) -> None:
    customer = make_customer()
    make_order(customer, 80, T0 - 5 * DAY, status=OrderStatusChoices.CANCELLED)

    assert record_referral(referrer.referral_code, customer, as_of=T0).status == "pending"


def test_farming_is_capped_per_period_and_allowed_again_after_it(referrer: Member) -> None:
    # Cap 3 per 30 days: referrals on days 0, 10 and 20 fill it.
    for day in (0, 10, 20):
        record_referral(referrer.referral_code, make_customer(), as_of=T0 + day * DAY)

    message = refused(CAP_REACHED, make_customer(), referrer.referral_code, T0 + 29 * DAY)
    assert "3 referrals in the last 30 days" in message
    # Day 30: the day-0 referral left the window, so one more fits, and then none.
    record_referral(referrer.referral_code, make_customer(), as_of=T0 + 30 * DAY)
    refused(CAP_REACHED, make_customer(), referrer.referral_code, T0 + 30 * DAY)
    assert Referral.objects.filter(referrer=referrer).count() == 4


def test_the_cap_is_per_referrer(referrer: Member) -> None:
    for day in range(3):
        record_referral(referrer.referral_code, make_customer(), as_of=T0 + day * DAY)
    other = enrol_member(make_customer(), as_of=T0 - DAY)

    assert record_referral(other.referral_code, make_customer(), as_of=T0).status == "pending"


def test_policy_settings_are_checked(programme: Programme) -> None:
    with pytest.raises(LoyaltyInputError, match="period_days"):
        configure_referral_policy(programme, period_days=0)
    with pytest.raises(LoyaltyInputError, match="referrer_points"):
        configure_referral_policy(programme, referrer_points=-5)


# --------------------------------------------------------------------------- settlement


def refer_and_order(
    referrer: Member, total: int = 120, ordered_at: datetime = T0 + 2 * DAY
) -> tuple[Referral, Customer]:
    newcomer = make_customer()
    referral = record_referral(referrer.referral_code, newcomer, as_of=T0)
    order = make_order(newcomer, total, ordered_at)
    award_points_for_order(order, idempotency_key=f"paid:{order.external_id}", as_of=ordered_at)
    return referral, newcomer


def test_both_sides_are_rewarded_only_after_the_first_orders_return_window(
    referrer: Member,
) -> None:
    referral, _newcomer = refer_and_order(referrer, total=120, ordered_at=T0 + 2 * DAY)
    window_ends = T0 + 2 * DAY + PENDING_DAYS * DAY

    early = settle_referrals(window_ends - timedelta(seconds=1))
    assert (early.rewarded, early.refused, early.pending) == ([], [], 1)
    assert LedgerTransaction.objects.filter(kind="adjust").count() == 0

    done = settle_referrals(window_ends)

    assert [r.pk for r in done.rewarded] == [referral.pk]
    assert done.points == REFERRER_POINTS + REFEREE_POINTS
    referral.refresh_from_db()
    assert referral.status == "rewarded"
    assert referral.first_order is not None
    assert referral.settled_at == window_ends
    referrer_entry = LedgerTransaction.objects.get(
        idempotency_key=f"referral:{referral.pk}:referrer"
    )
    referee_entry = LedgerTransaction.objects.get(idempotency_key=f"referral:{referral.pk}:referee")
    assert (referrer_entry.member_id, referrer_entry.points, referrer_entry.actor) == (
        referrer.pk,
        REFERRER_POINTS,
        "programme",
    )
    assert (referee_entry.member_id, referee_entry.points) == (referral.referee_id, REFEREE_POINTS)
    assert referral.referrer_transaction_id == referrer_entry.pk
    # Reference amounts: the referrer has the bonus only; the newcomer the bonus (available
    # at once) plus the order's 120 points, still pending until the activation job runs.
    referrer_balances = assert_ledger_consistent(referrer)
    assert (referrer_balances.available, referrer_balances.lifetime_earned) == (500, 500)
    newcomer_balances = assert_ledger_consistent(referral.referee)
    assert (newcomer_balances.pending, newcomer_balances.available) == (120, 200)
    assert newcomer_balances.lifetime_earned == 320


def test_settling_twice_grants_nothing_twice(referrer: Member) -> None:
    refer_and_order(referrer)
    later = T0 + 40 * DAY
    first = settle_referrals(later)
    size = ledger_size()

    second = settle_referrals(later)
    third = settle_referrals(later + 30 * DAY)

    assert len(first.rewarded) == 1
    assert (second.rewarded, second.refused, second.pending, second.points) == ([], [], 0, 0)
    assert third.rewarded == []
    assert ledger_size() == size
    assert assert_ledger_consistent(referrer).available == REFERRER_POINTS


def test_a_referral_without_an_order_stays_pending(referrer: Member) -> None:
    referral = record_referral(referrer.referral_code, make_customer(), as_of=T0)

    result = settle_referrals(T0 + 100 * DAY)

    assert result.pending == 1
    referral.refresh_from_db()
    assert referral.status == "pending"


def test_a_cancelled_first_order_refuses_the_referral(referrer: Member) -> None:
    newcomer = make_customer()
    referral = record_referral(referrer.referral_code, newcomer, as_of=T0)
    order = make_order(newcomer, 300, T0 + DAY, status=OrderStatusChoices.CANCELLED)
    # A later good order does not rescue it: the first order decides.
    make_order(newcomer, 300, T0 + 3 * DAY)

    result = settle_referrals(T0 + 60 * DAY)

    assert [r.pk for r in result.refused] == [referral.pk]
    referral.refresh_from_db()
    assert (referral.status, referral.reason_code) == ("refused", FIRST_ORDER_CANCELLED)
    assert (
        referral.reason
        == f"first order {order.external_id} of {newcomer.external_id} was cancelled"
    )
    assert LedgerTransaction.objects.filter(kind="adjust").count() == 0


def test_a_fully_refunded_first_order_refuses_the_referral(referrer: Member) -> None:
    referral, newcomer = refer_and_order(referrer, total=150)
    order = newcomer.orders.get()
    make_refund(order, 100, T0 + 4 * DAY)
    make_refund(order, 50, T0 + 5 * DAY)

    result = settle_referrals(T0 + 60 * DAY)

    assert [r.pk for r in result.refused] == [referral.pk]
    referral.refresh_from_db()
    assert referral.reason_code == FIRST_ORDER_REFUNDED
    assert "fully refunded" in referral.reason
    assert assert_ledger_consistent(referrer).lifetime_earned == 0


def test_a_partly_refunded_first_order_still_rewards(referrer: Member) -> None:
    referral, newcomer = refer_and_order(referrer, total=150)
    make_refund(newcomer.orders.get(), 149, T0 + 4 * DAY)

    result = settle_referrals(T0 + 60 * DAY)

    assert [r.pk for r in result.rewarded] == [referral.pk]


def test_a_first_order_not_yet_paid_waits(referrer: Member) -> None:
    newcomer = make_customer()
    record_referral(referrer.referral_code, newcomer, as_of=T0)
    make_order(newcomer, 90, T0 + DAY, status=OrderStatusChoices.PLACED)

    assert settle_referrals(T0 + 60 * DAY).pending == 1


def test_zero_points_on_one_side_grants_only_the_other(
    programme: Programme, referrer: Member
) -> None:
    configure_referral_policy(programme, referee_points=0)
    referral, _newcomer = refer_and_order(referrer)

    result = settle_referrals(T0 + 60 * DAY)

    assert result.points == REFERRER_POINTS
    referral.refresh_from_db()
    assert referral.referee_transaction is None
    assert assert_ledger_consistent(referral.referee).available == 0


def test_many_referrals_balance_to_the_reference_amounts(
    programme: Programme, referrer: Member
) -> None:
    configure_referral_policy(programme, max_referrals_per_period=100)
    outcomes = []
    for index in range(6):
        newcomer = make_customer()
        record_referral(referrer.referral_code, newcomer, as_of=T0)
        status = OrderStatusChoices.CANCELLED if index % 3 == 0 else OrderStatusChoices.PAID
        make_order(newcomer, 50 + index, T0 + (index + 1) * DAY, status=status)
        outcomes.append(status == OrderStatusChoices.PAID)

    result = settle_referrals(T0 + 60 * DAY)
    settle_referrals(T0 + 61 * DAY)

    rewarded = sum(outcomes)
    assert (len(result.rewarded), len(result.refused)) == (rewarded, len(outcomes) - rewarded)
    assert assert_ledger_consistent(referrer).available == rewarded * REFERRER_POINTS
    for referral in Referral.objects.all():
        expected = REFEREE_POINTS if referral.status == "rewarded" else 0
        assert assert_ledger_consistent(referral.referee).available == expected


# --------------------------------------------------------------------------- concurrency

ROUNDS = 10
BARRIER_TIMEOUT = 120


def race(threads: int, attempt: Callable[[int], str]) -> list[str]:
    """Run ``attempt(worker)`` on ``threads`` real threads released together, each with its
    own connection (closed at its end); returns each worker's outcome."""
    start = threading.Barrier(threads, timeout=BARRIER_TIMEOUT)
    outcomes = [""] * threads

    def work(index: int) -> None:
        try:
            start.wait()
            outcomes[index] = attempt(index)
        except ReferralRefusedError as refusal:
            outcomes[index] = refusal.code
        except Exception as error:  # noqa: BLE001 - any other failure is reported by the test
            outcomes[index] = f"error: {error!r}"
        finally:
            connection.close()

    pool = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=BARRIER_TIMEOUT)
    return outcomes


def racers() -> int:
    """32 threads on PostgreSQL; SQLite's in-memory test database (the default) answers
    "table is locked" at once instead of letting writers wait, so there it is skipped."""
    if connection.vendor == "postgresql":
        return 32
    if connection.is_in_memory_db():
        pytest.skip("threads need PostgreSQL or a file SQLite test database")
    return 8


@pytest.mark.django_db(transaction=True)
def test_concurrent_referrals_never_pass_the_cap() -> None:
    threads = racers()
    programme = configure_programme(get_programme(), pending_days=PENDING_DAYS)
    configure_referral_policy(programme, max_referrals_per_period=3, period_days=30)
    for round_number in range(ROUNDS):
        code = enrol_member(make_customer(), as_of=T0 - DAY).referral_code
        newcomers = [make_customer() for _ in range(threads)]

        outcomes = race(
            threads,
            lambda index: record_referral(code, newcomers[index], as_of=T0).status,  # noqa: B023
        )

        assert sorted(outcomes) == ["pending"] * 3 + [CAP_REACHED] * (threads - 3), (
            round_number,
            outcomes,
        )
        assert Referral.objects.filter(referral_code=code).count() == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_settlements_grant_each_reward_once() -> None:
    threads = racers()
    programme = configure_programme(get_programme(), pending_days=PENDING_DAYS)
    configure_referral_policy(
        programme, referrer_points=REFERRER_POINTS, referee_points=REFEREE_POINTS
    )
    referrer = enrol_member(make_customer(), as_of=T0 - DAY)
    for _ in range(5):
        refer_and_order(referrer)

    outcomes = race(threads, lambda index: str(len(settle_referrals(T0 + 60 * DAY).rewarded)))

    assert sum(int(outcome) for outcome in outcomes) == 5, outcomes
    assert LedgerTransaction.objects.filter(kind="adjust").count() == 10
    assert assert_ledger_consistent(referrer).available == 5 * REFERRER_POINTS
    for referral in Referral.objects.all():
        assert referral.status == "rewarded"
        assert assert_ledger_consistent(referral.referee).available == REFEREE_POINTS
