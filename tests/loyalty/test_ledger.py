"""Points ledger actions: earning, activation, refunds (pending first, then available, then
debt), redemption, adjustments, expiry, idempotency and refused input."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from patron.loyalty.errors import (
    IdempotencyConflictError,
    InsufficientPointsError,
    LoyaltyInputError,
    MemberNotFoundError,
)
from patron.loyalty.ledger import (
    activate_pending_points,
    adjust_points,
    award_points_for_order,
    expire_points,
    redeem_points,
    reverse_points_for_refund,
)
from patron.loyalty.members import REFERRAL_ALPHABET, enrol_member, get_member
from patron.loyalty.models import LedgerTransaction, LotConsumption, Member, PointLot, Programme
from patron.loyalty.programme import configure_programme, get_programme
from patron.loyalty.selectors import (
    MemberBalances,
    ledger_entries,
    next_expiry,
    programme_overview,
)
from tests.loyalty.points_helpers import (
    assert_ledger_consistent,
    ledger_size,
    make_customer,
    make_order,
    make_refund,
)

pytestmark = pytest.mark.django_db

T0 = timezone.make_aware(datetime(2026, 1, 10, 12, 0))
DAY = timedelta(days=1)


@pytest.fixture
def programme() -> Programme:
    return configure_programme(get_programme(), pending_days=15, points_per_unit=1)


@pytest.fixture
def member(programme: Programme) -> Member:
    return enrol_member(make_customer(), as_of=T0)


def balances(
    pending: int = 0,
    available: int = 0,
    expired: int = 0,
    redeemed: int = 0,
    lifetime_earned: int = 0,
    debt: int = 0,
) -> MemberBalances:
    return MemberBalances(pending, available, expired, redeemed, lifetime_earned, debt)


def earn(member: Member, total: str | int, at: datetime = T0) -> LedgerTransaction:
    order = make_order(member.customer, total, at)
    return award_points_for_order(order, idempotency_key=f"paid:{order.external_id}", as_of=at)


# --------------------------------------------------------------------------- members


def test_enrol_member_is_idempotent_and_gives_a_readable_referral_code(
    programme: Programme,
) -> None:
    customer = make_customer()

    first = enrol_member(customer, as_of=T0)
    second = enrol_member(customer, as_of=T0 + DAY)

    assert first.pk == second.pk
    assert Member.objects.filter(customer=customer).count() == 1
    assert len(first.referral_code) == 8
    assert set(first.referral_code) <= set(REFERRAL_ALPHABET)
    assert not set("01OIL") & set(REFERRAL_ALPHABET)


def test_referral_codes_differ_between_members(programme: Programme) -> None:
    codes = {enrol_member(make_customer(), as_of=T0).referral_code for _ in range(50)}

    assert len(codes) == 50


def test_get_member_of_an_unknown_customer_is_refused(programme: Programme) -> None:
    with pytest.raises(MemberNotFoundError, match="nobody"):
        get_member("nobody")


# --------------------------------------------------------------------------- earning


def test_award_puts_points_in_pending_with_a_lot(member: Member) -> None:
    entry = earn(member, "123.45")

    assert (entry.kind, entry.points, entry.spend_amount) == ("earn", 123, Decimal("123.45"))
    assert assert_ledger_consistent(member) == balances(pending=123, lifetime_earned=123)
    lot = PointLot.objects.get(earned_by=entry)
    assert (lot.points, lot.remaining_points) == (123, 123)
    assert lot.available_at == T0 + 15 * DAY
    assert lot.expires_at is None
    assert lot.activated_by is None


def test_award_is_applied_once_per_key_and_once_per_order(member: Member) -> None:
    order = make_order(member.customer, 100, T0)
    first = award_points_for_order(order, idempotency_key="k1", as_of=T0)
    size = ledger_size()

    again = award_points_for_order(order, idempotency_key="k1", as_of=T0)
    other_key = award_points_for_order(order, idempotency_key="k2", as_of=T0)

    assert again.pk == first.pk
    assert other_key.pk == first.pk
    assert ledger_size() == size
    assert assert_ledger_consistent(member).pending == 100


def test_a_key_reused_for_another_order_is_a_conflict(member: Member) -> None:
    award_points_for_order(make_order(member.customer, 100, T0), idempotency_key="k", as_of=T0)
    size = ledger_size()

    with pytest.raises(IdempotencyConflictError, match="'k'"):
        award_points_for_order(make_order(member.customer, 50, T0), idempotency_key="k", as_of=T0)
    with pytest.raises(IdempotencyConflictError, match="recorded a earn, not a redeem"):
        redeem_points(member, 5, idempotency_key="k", as_of=T0)

    assert ledger_size() == size


@pytest.mark.parametrize("status", ["placed", "cancelled", "returned"])
def test_an_unpaid_order_earns_nothing_and_writes_nothing(member: Member, status: str) -> None:
    order = make_order(member.customer, 100, T0, status=status)
    size = ledger_size()

    with pytest.raises(LoyaltyInputError, match=r"order\.status"):
        award_points_for_order(order, idempotency_key="k", as_of=T0)

    assert ledger_size() == size


def test_award_enrols_a_customer_who_is_not_yet_a_member(programme: Programme) -> None:
    customer = make_customer()

    entry = award_points_for_order(make_order(customer, 80, T0), idempotency_key="k", as_of=T0)

    assert entry.member.customer == customer
    assert assert_ledger_consistent(entry.member).pending == 80


def test_an_old_order_whose_return_window_passed_is_available_at_once(member: Member) -> None:
    entry = earn(member, 50, at=T0)

    order = make_order(member.customer, 70, T0 - 30 * DAY)
    award_points_for_order(order, idempotency_key="old", as_of=T0)

    assert entry.points == 50
    assert assert_ledger_consistent(member) == balances(
        pending=50, available=70, lifetime_earned=120
    )


# --------------------------------------------------------------------------- activation


def test_activation_after_the_pending_days_and_only_once(member: Member) -> None:
    earn(member, 100, at=T0)
    earn(member, 40, at=T0 + 5 * DAY)

    early = activate_pending_points(T0 + 15 * DAY - timedelta(seconds=1))
    first = activate_pending_points(T0 + 15 * DAY)
    second = activate_pending_points(T0 + 15 * DAY)

    assert early.transactions == 0
    assert (first.members, first.transactions, first.points) == (1, 1, 100)
    assert second.transactions == 0
    assert assert_ledger_consistent(member) == balances(
        pending=40, available=100, lifetime_earned=140
    )


# --------------------------------------------------------------------------- refunds


def test_partial_refunds_add_up_to_the_whole(member: Member) -> None:
    order = make_order(member.customer, 100, T0)
    award_points_for_order(order, idempotency_key="paid", as_of=T0)
    reversed_points = []
    for number, amount in enumerate(["33.33", "33.33", "33.33", "0.01"]):
        refund = make_refund(order, amount, T0 + DAY)
        entry = reverse_points_for_refund(
            order, refund, idempotency_key=f"refund:{number}", as_of=T0 + DAY
        )
        reversed_points.append(entry.points)

    # Kept after each refund: floor(100 x remaining spend / 100) = 66, 33, 0, 0.
    assert reversed_points == [34, 33, 33, 0]
    assert assert_ledger_consistent(member) == balances()


def test_refund_takes_from_pending_first_then_available(member: Member) -> None:
    earn(member, 100, at=T0)
    activate_pending_points(T0 + 15 * DAY)
    order = make_order(member.customer, 60, T0 + 16 * DAY)
    award_points_for_order(order, idempotency_key="second", as_of=T0 + 16 * DAY)

    refund = make_refund(order, 60, T0 + 17 * DAY)
    entry = reverse_points_for_refund(order, refund, idempotency_key="r", as_of=T0 + 17 * DAY)

    legs = dict(entry.postings.values_list("account", "points"))
    assert legs == {"member_pending": -60, "programme_issued": 60}
    assert assert_ledger_consistent(member) == balances(available=100, lifetime_earned=100)


def test_refund_of_spent_points_is_a_recorded_debt_that_later_earning_repays(
    member: Member,
) -> None:
    order = make_order(member.customer, 100, T0)
    award_points_for_order(order, idempotency_key="paid", as_of=T0)
    activate_pending_points(T0 + 15 * DAY)
    redeem_points(member, 80, idempotency_key="spend", as_of=T0 + 16 * DAY)

    refund = make_refund(order, 100, T0 + 20 * DAY)
    entry = reverse_points_for_refund(order, refund, idempotency_key="r", as_of=T0 + 20 * DAY)

    assert entry.points == 100
    assert "80 already spent, recorded as debt" in entry.reason
    assert assert_ledger_consistent(member) == balances(redeemed=80, debt=80)

    # Later earning repays the debt when it becomes available, never before.
    earn(member, 50, at=T0 + 21 * DAY)
    assert assert_ledger_consistent(member) == balances(
        pending=50, redeemed=80, lifetime_earned=50, debt=80
    )
    activate_pending_points(T0 + 36 * DAY)
    assert assert_ledger_consistent(member) == balances(redeemed=80, lifetime_earned=50, debt=30)
    adjust_points(member, 45, reason="goodwill", actor="user:alice", as_of=T0 + 37 * DAY)
    assert assert_ledger_consistent(member) == balances(
        available=15, redeemed=80, lifetime_earned=95
    )
    kinds = [entry.kind for entry in ledger_entries(member)]
    assert kinds.count("debt_repay") == 2


def test_a_refund_recorded_before_the_award_lowers_what_the_order_earns(member: Member) -> None:
    order = make_order(member.customer, 100, T0)
    refund = make_refund(order, 40, T0)

    early = reverse_points_for_refund(order, refund, idempotency_key="r", as_of=T0)
    award = award_points_for_order(order, idempotency_key="paid", as_of=T0)
    late_duplicate = reverse_points_for_refund(order, refund, idempotency_key="r2", as_of=T0)

    assert early.points == 0
    assert award.points == 60
    assert late_duplicate.pk == early.pk
    assert assert_ledger_consistent(member) == balances(pending=60, lifetime_earned=60)


def test_refunds_beyond_the_order_total_are_refused(member: Member) -> None:
    order = make_order(member.customer, 100, T0)
    award_points_for_order(order, idempotency_key="paid", as_of=T0)
    reverse_points_for_refund(order, make_refund(order, 70, T0), idempotency_key="r1", as_of=T0)
    size = ledger_size()

    with pytest.raises(LoyaltyInputError, match=r"refund\.amount.*would total 140"):
        reverse_points_for_refund(order, make_refund(order, 70, T0), idempotency_key="r2", as_of=T0)

    assert ledger_size() == size


def test_a_refund_of_another_order_is_refused(member: Member) -> None:
    order = make_order(member.customer, 100, T0)
    other = make_order(member.customer, 100, T0)

    with pytest.raises(LoyaltyInputError, match=r"refund\.order"):
        reverse_points_for_refund(order, make_refund(other, 10, T0), idempotency_key="r", as_of=T0)


def test_buy_then_refund_loops_gain_no_points(member: Member) -> None:
    moment = T0
    for loop in range(20):
        order = make_order(member.customer, "99.99", moment)
        award_points_for_order(order, idempotency_key=f"paid:{loop}", as_of=moment)
        if loop % 2:
            # Some refunds come after the points became available, some in pieces.
            moment += 16 * DAY
            activate_pending_points(moment)
        for piece, amount in enumerate(["33.33", "33.33", "33.33"]):
            refund = make_refund(order, amount, moment)
            reverse_points_for_refund(
                order, refund, idempotency_key=f"refund:{loop}:{piece}", as_of=moment
            )
        with pytest.raises(InsufficientPointsError):
            redeem_points(member, 1, idempotency_key=f"try:{loop}", as_of=moment)
        moment += DAY

    assert assert_ledger_consistent(member) == balances()


# --------------------------------------------------------------------------- redemption


def test_redeem_spends_available_points_oldest_lot_first(member: Member) -> None:
    first = earn(member, 100, at=T0)
    second = earn(member, 50, at=T0 + DAY)
    activate_pending_points(T0 + 20 * DAY)

    entry = redeem_points(
        member, 120, idempotency_key="spend", reward="tote bag", as_of=T0 + 21 * DAY
    )

    taken = dict(
        LotConsumption.objects.filter(transaction=entry).values_list("lot__earned_by", "points")
    )
    assert taken == {first.pk: 100, second.pk: 20}
    assert entry.reason == "reward tote bag: "
    assert assert_ledger_consistent(member) == balances(
        available=30, redeemed=120, lifetime_earned=150
    )


def test_redeem_more_than_available_is_refused_and_writes_nothing(member: Member) -> None:
    earn(member, 100, at=T0)
    activate_pending_points(T0 + 15 * DAY)
    size = ledger_size()

    with pytest.raises(InsufficientPointsError, match="101 requested but only 100 available"):
        redeem_points(member, 101, idempotency_key="spend", as_of=T0 + 16 * DAY)

    assert ledger_size() == size
    assert assert_ledger_consistent(member).available == 100


def test_pending_points_cannot_be_redeemed(member: Member) -> None:
    earn(member, 100, at=T0)

    with pytest.raises(InsufficientPointsError, match="only 0 available"):
        redeem_points(member, 1, idempotency_key="spend", as_of=T0)


def test_a_duplicate_redemption_returns_the_first_and_another_payload_conflicts(
    member: Member,
) -> None:
    adjust_points(member, 100, reason="welcome", actor="user:alice", as_of=T0)
    first = redeem_points(member, 30, idempotency_key="spend", as_of=T0)

    again = redeem_points(member, 30, idempotency_key="spend", as_of=T0 + DAY)
    with pytest.raises(IdempotencyConflictError, match="different request"):
        redeem_points(member, 31, idempotency_key="spend", as_of=T0)

    assert again.pk == first.pk
    assert assert_ledger_consistent(member).available == 70


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (0, "must not be zero"),
        (-5, "must be positive"),
        (1.5, "whole number"),
        ("10", "whole number"),
        (True, "whole number"),
        (None, "whole number"),
    ],
)
def test_redeem_refuses_bad_points(member: Member, points: object, message: str) -> None:
    adjust_points(member, 100, reason="welcome", actor="user:alice", as_of=T0)
    size = ledger_size()

    with pytest.raises(LoyaltyInputError, match=message):
        redeem_points(member, points, idempotency_key="spend", as_of=T0)  # type: ignore[arg-type]

    assert ledger_size() == size


def test_redeem_refuses_a_non_member_and_a_blank_key(member: Member) -> None:
    with pytest.raises(LoyaltyInputError, match="member"):
        redeem_points(None, 5, idempotency_key="k")  # type: ignore[arg-type]
    with pytest.raises(LoyaltyInputError, match="idempotency_key"):
        redeem_points(member, 5, idempotency_key=" ")


# --------------------------------------------------------------------------- adjustments


def test_adjustment_is_available_at_once_and_records_who_and_why(member: Member) -> None:
    entry = adjust_points(member, 250, reason="complaint #12", actor="token:crm", as_of=T0)
    removed = adjust_points(member, -50, reason="typo", actor="user:bob", as_of=T0)

    assert (entry.actor, entry.reason, entry.kind) == ("token:crm", "complaint #12", "adjust")
    assert removed.points == -50
    # Removing points by hand does not unearn them.
    assert assert_ledger_consistent(member) == balances(available=200, lifetime_earned=250)


@pytest.mark.parametrize(
    ("points", "reason", "actor", "message"),
    [
        (0, "r", "user:a", "must not be zero"),
        (10, "", "user:a", "reason: is required"),
        (10, "  ", "user:a", "reason: is required"),
        (10, "r", "", "actor: is required"),
        (10, None, "user:a", "reason: must be a text"),
        (Decimal(10), "r", "user:a", "whole number"),
    ],
)
def test_adjustment_refuses_bad_input(
    member: Member, points: object, reason: object, actor: str, message: str
) -> None:
    size = ledger_size()

    with pytest.raises(LoyaltyInputError, match=message):
        adjust_points(member, points, reason=reason, actor=actor)  # type: ignore[arg-type]

    assert ledger_size() == size


def test_a_negative_adjustment_beyond_the_balance_is_refused(member: Member) -> None:
    adjust_points(member, 10, reason="welcome", actor="user:alice", as_of=T0)
    size = ledger_size()

    with pytest.raises(InsufficientPointsError):
        adjust_points(member, -11, reason="oops", actor="user:alice", as_of=T0)

    assert ledger_size() == size


# --------------------------------------------------------------------------- expiry


def test_expiry_is_fifo_and_never_takes_spent_points(member: Member, programme: Programme) -> None:
    configure_programme(programme, expiry_policy="months_after_earning", expiry_months=12)
    earn(member, 100, at=T0)
    earn(member, 50, at=T0 + 31 * DAY)
    activate_pending_points(T0 + 60 * DAY)
    redeem_points(member, 120, idempotency_key="spend", as_of=T0 + 61 * DAY)

    assert next_expiry(member) is not None
    assert next_expiry(member).points == 30  # type: ignore[union-attr]
    # The first lot (all spent) passes its expiry date: nothing expires.
    nothing = expire_points(T0 + 365 * DAY + DAY)
    # The second lot's 30 remaining points expire on 10 Feb 2027 + 12 months.
    after = expire_points(timezone.make_aware(datetime(2027, 2, 10, 12, 0)))
    again = expire_points(timezone.make_aware(datetime(2027, 3, 1)))

    assert nothing.points == 0
    assert (after.transactions, after.points) == (1, 30)
    assert again.transactions == 0
    assert next_expiry(member) is None
    assert assert_ledger_consistent(member) == balances(
        expired=30, redeemed=120, lifetime_earned=150
    )


def test_policy_never_expires_nothing(member: Member) -> None:
    earn(member, 100, at=T0)
    activate_pending_points(T0 + 15 * DAY)

    result = expire_points(T0 + 3650 * DAY)

    assert result.points == 0
    assert next_expiry(member) is None


def test_end_of_year_after_earning_expires_at_the_end_of_the_next_year(
    member: Member, programme: Programme
) -> None:
    configure_programme(programme, expiry_policy="end_of_year_after_earning")

    entry = earn(member, 10, at=timezone.make_aware(datetime(2026, 3, 1)))

    lot = PointLot.objects.get(earned_by=entry)
    assert lot.expires_at == timezone.make_aware(datetime(2028, 1, 1))


def test_months_after_earning_clamps_to_the_end_of_a_short_month(
    member: Member, programme: Programme
) -> None:
    configure_programme(programme, expiry_policy="months_after_earning", expiry_months=1)

    entry = earn(member, 10, at=timezone.make_aware(datetime(2026, 1, 31, 9, 30)))

    lot = PointLot.objects.get(earned_by=entry)
    assert lot.expires_at == timezone.make_aware(datetime(2026, 2, 28, 9, 30))


# --------------------------------------------------------------------------- selectors


def test_programme_overview_figures(member: Member, programme: Programme) -> None:
    configure_programme(programme, point_value_amount="0.05")
    other = enrol_member(make_customer(), as_of=T0)
    earn(member, 200, at=T0)
    earn(other, 100, at=T0)
    activate_pending_points(T0 + 15 * DAY)
    redeem_points(member, 50, idempotency_key="spend", as_of=T0 + 16 * DAY)

    overview = programme_overview(programme)

    assert overview.members == 2
    assert overview.members_per_tier == {"no tier": 2}
    assert (overview.points_issued, overview.points_redeemed, overview.points_expired) == (
        300,
        50,
        0,
    )
    assert overview.points_outstanding == 250
    assert overview.outstanding_liability == Decimal("12.5000")
    assert overview.redemption_rate == pytest.approx(50 / 300)


def test_ledger_entries_are_newest_first_with_postings(member: Member) -> None:
    earn(member, 100, at=T0)
    activate_pending_points(T0 + 15 * DAY)

    entries = list(ledger_entries(member))

    assert [entry.kind for entry in entries] == ["activate", "earn"]
    assert sorted(p.points for p in entries[0].postings.all()) == [-100, 100]
