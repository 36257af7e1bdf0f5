"""Tiers: thresholds on qualifying points or spend within a window (never the balance),
upgrades at once, downgrades after the grace period, history with reasons, the review and
the daily job."""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from patron.loyalty.errors import LoyaltyInputError
from patron.loyalty.ledger import (
    activate_pending_points,
    adjust_points,
    award_points_for_order,
    redeem_points,
    reverse_points_for_refund,
)
from patron.loyalty.members import enrol_member, enrol_members
from patron.loyalty.models import Member, Programme, Tier, TierChange
from patron.loyalty.programme import add_months, configure_programme, get_programme
from patron.loyalty.tiers import define_tier, qualifying_value, review_tiers
from tests.loyalty.points_helpers import (
    assert_ledger_consistent,
    ledger_size,
    make_customer,
    make_order,
    make_refund,
)

pytestmark = pytest.mark.django_db

T0 = timezone.make_aware(datetime(2026, 3, 1, 12, 0))
DAY = timedelta(days=1)


@pytest.fixture
def programme() -> Programme:
    programme = configure_programme(get_programme(), downgrade_grace_days=30)
    define_tier("Bronze", 0)
    define_tier("Silver", 500, earn_multiplier=1, has_free_shipping=True)
    define_tier("Gold", 2000, earn_multiplier=1, birthday_bonus_points=200)
    return programme


@pytest.fixture
def member(programme: Programme) -> Member:
    return enrol_member(make_customer(), as_of=T0)


def buy(member: Member, total: int | str, at: datetime) -> None:
    order = make_order(member.customer, total, at)
    award_points_for_order(order, idempotency_key=f"paid:{order.external_id}", as_of=at)


def order_id(member: Member) -> str:
    """External id of the member's latest order."""
    return member.customer.orders.order_by("-pk").values_list("external_id", flat=True)[0]


def tier_of(member: Member) -> str | None:
    member.refresh_from_db()
    return member.tier.name if member.tier else None


def history(member: Member) -> list[tuple[str | None, str | None]]:
    return [
        (
            change.from_tier.name if change.from_tier else None,
            change.to_tier.name if change.to_tier else None,
        )
        for change in TierChange.objects.filter(member=member).select_related(
            "from_tier", "to_tier"
        )
    ]


def test_a_new_member_starts_in_the_entry_tier(member: Member) -> None:
    assert tier_of(member) == "Bronze"
    change = TierChange.objects.get(member=member)
    assert change.reason == (
        "upgrade: 0 points over Rolling 12 months reached Bronze's threshold (enrolled)"
    )


def test_enrolling_many_at_once_gives_what_enrolling_each_gives(programme: Programme) -> None:
    one_by_one = enrol_member(make_customer(), as_of=T0)
    already = enrol_member(make_customer(), as_of=T0)
    customers = [make_customer() for _ in range(3)]

    member_ids = enrol_members(
        [already.customer_id, *(customer.pk for customer in customers)], as_of=T0
    )

    assert member_ids[already.customer_id] == already.pk
    assert Member.objects.count() == 5
    for customer in customers:
        member = Member.objects.get(pk=member_ids[customer.pk])
        assert (member.customer_id, member.enrolled_at, tier_of(member)) == (
            customer.pk,
            T0,
            "Bronze",
        )
        assert history(member) == history(one_by_one) == [(None, "Bronze")]
        assert TierChange.objects.get(member=member).reason == (
            TierChange.objects.get(member=one_by_one).reason
        )
        assert assert_ledger_consistent(member) == assert_ledger_consistent(one_by_one)
    codes = set(Member.objects.values_list("referral_code", flat=True))
    assert len(codes) == 5
    assert enrol_members([customer.pk for customer in customers], as_of=T0) == {
        customer.pk: member_ids[customer.pk] for customer in customers
    }
    assert Member.objects.count() == 5


def test_earning_upgrades_at_once_and_records_why(member: Member) -> None:
    buy(member, 499, T0)
    assert tier_of(member) == "Bronze"

    buy(member, 1, T0 + DAY)

    assert tier_of(member) == "Silver"
    change = TierChange.objects.filter(member=member).last()
    assert change is not None
    assert change.qualifying_value == 500
    assert change.changed_at == T0 + DAY
    assert change.reason == (
        "upgrade: 500 points over Rolling 12 months reached Silver's threshold "
        f"(order {order_id(member)})"
    )


def test_spending_points_never_costs_a_tier(member: Member) -> None:
    buy(member, 600, T0)
    activate_pending_points(T0 + 15 * DAY)

    redeem_points(member, 600, idempotency_key="spend", as_of=T0 + 16 * DAY)
    review = review_tiers(T0 + 17 * DAY)

    assert assert_ledger_consistent(member).available == 0
    assert tier_of(member) == "Silver"
    assert (review.upgrades, review.downgrades) == (0, 0)


def test_adjustments_do_not_count_towards_tiers(member: Member) -> None:
    adjust_points(member, 5000, reason="goodwill", actor="user:alice", as_of=T0)

    review_tiers(T0)

    assert tier_of(member) == "Bronze"
    assert qualifying_value(member, T0) == 0


def test_rolling_window_downgrade_waits_for_the_grace_period(member: Member) -> None:
    buy(member, 2500, T0)
    assert tier_of(member) == "Gold"
    year_later = add_months(T0, 12)

    # Exactly 12 months later the order is out of the window: the grace period starts.
    started = review_tiers(year_later)
    member.refresh_from_db()
    assert started.downgrades == 0
    assert tier_of(member) == "Gold"
    assert member.downgrade_due_at == year_later + 30 * DAY

    still = review_tiers(year_later + 29 * DAY)
    ended = review_tiers(year_later + 30 * DAY)
    again = review_tiers(year_later + 30 * DAY)

    assert still.downgrades == 0
    assert ended.downgrades == 1
    assert again.downgrades == 0
    assert tier_of(member) == "Bronze"
    assert history(member) == [(None, "Bronze"), ("Bronze", "Gold"), ("Gold", "Bronze")]
    last = TierChange.objects.filter(member=member).last()
    assert last is not None
    assert last.reason == (
        "downgrade: 0 points over Rolling 12 months is below Gold's threshold after a "
        "30-day grace period (periodic review)"
    )


def test_requalifying_during_the_grace_period_cancels_the_downgrade(member: Member) -> None:
    buy(member, 600, T0)
    year_later = add_months(T0, 12)
    review_tiers(year_later)
    member.refresh_from_db()
    assert member.downgrade_due_at is not None

    buy(member, 550, year_later + 10 * DAY)
    review_tiers(year_later + 40 * DAY)

    member.refresh_from_db()
    assert tier_of(member) == "Silver"
    assert member.downgrade_due_at is None
    assert history(member) == [(None, "Bronze"), ("Bronze", "Silver")]


def test_a_refund_lowers_the_qualifying_points_and_starts_the_grace(member: Member) -> None:
    order = make_order(member.customer, 600, T0)
    award_points_for_order(order, idempotency_key="paid", as_of=T0)
    assert tier_of(member) == "Silver"

    refund = make_refund(order, 200, T0 + 2 * DAY)
    reverse_points_for_refund(order, refund, idempotency_key="refund", as_of=T0 + 2 * DAY)

    member.refresh_from_db()
    assert qualifying_value(member, T0 + 2 * DAY) == 400
    assert member.downgrade_due_at == T0 + 32 * DAY
    review_tiers(T0 + 32 * DAY)
    assert tier_of(member) == "Bronze"


def test_without_grace_a_downgrade_is_immediate(member: Member, programme: Programme) -> None:
    configure_programme(programme, downgrade_grace_days=0)
    buy(member, 600, T0)

    review_tiers(add_months(T0, 12))

    assert tier_of(member) == "Bronze"


def test_spend_thresholds_over_the_calendar_year(programme: Programme) -> None:
    configure_programme(
        programme, tier_metric="spend", tier_window="calendar_year", downgrade_grace_days=0
    )
    define_tier("Silver", 800)  # now 800 CNY of spend
    new_year_eve = timezone.make_aware(datetime(2026, 12, 31, 20, 0))
    member = enrol_member(make_customer(), as_of=new_year_eve)

    buy(member, "799.99", new_year_eve)
    assert tier_of(member) == "Bronze"
    buy(member, "0.01", new_year_eve)
    assert tier_of(member) == "Silver"

    # Midnight in the shop's zone starts a new year with nothing spent.
    review_tiers(timezone.make_aware(datetime(2027, 1, 1, 0, 0, 1)))
    assert tier_of(member) == "Bronze"


def test_lifetime_window_never_forgets(programme: Programme) -> None:
    configure_programme(programme, tier_window="lifetime")
    member = enrol_member(make_customer(), as_of=T0)
    buy(member, 2000, T0)

    review = review_tiers(T0 + 3650 * DAY)

    assert tier_of(member) == "Gold"
    assert review.members_reviewed == 1


def test_define_tier_checks_its_input(programme: Programme) -> None:
    with pytest.raises(LoyaltyInputError, match="threshold: tier Silver already has 500"):
        define_tier("Platinum", 500)
    with pytest.raises(LoyaltyInputError, match="threshold: must be at least 0"):
        define_tier("Lead", -1)
    with pytest.raises(LoyaltyInputError, match="birthday_bonus_points"):
        define_tier("Gold", 2000, birthday_bonus_points=-5)

    updated = define_tier("Gold", 3000, birthday_bonus_points=300)

    assert Tier.objects.filter(programme=programme).count() == 3
    assert (updated.threshold, updated.birthday_bonus_points) == (3000, 300)


def test_daily_job_twice_on_the_same_day_changes_nothing_the_second_time(
    programme: Programme,
) -> None:
    configure_programme(programme, expiry_policy="months_after_earning", expiry_months=1)
    member = enrol_member(make_customer(), as_of=T0)
    buy(member, 600, T0)
    day = (T0 + 40 * DAY).date().isoformat()

    first, second = StringIO(), StringIO()
    call_command("loyalty", "daily", "--as-of", day, stdout=first)
    size = ledger_size()
    changes = TierChange.objects.count()
    call_command("loyalty", "daily", "--as-of", day, stdout=second)

    assert first.getvalue().splitlines()[:2] == [
        "activated 600 points (1 transactions, 1 members)",
        "expired 600 points (1 transactions, 1 members)",
    ]
    assert second.getvalue().splitlines() == [
        "activated 0 points (0 transactions, 0 members)",
        "expired 0 points (0 transactions, 0 members)",
        "referrals: 0 rewarded, 0 refused, 0 pending (0 points)",
        "birthday rewards: 0, anniversary rewards: 0",
        "reviewed 1 members: 0 upgrades, 0 downgrades",
    ]
    assert ledger_size() == size
    assert TierChange.objects.count() == changes
    assert assert_ledger_consistent(member).expired == 600


def test_review_tiers_command(member: Member) -> None:
    out = StringIO()

    call_command("loyalty", "review-tiers", "--as-of", "2026-03-02", stdout=out)

    assert out.getvalue() == "reviewed 1 members: 0 upgrades, 0 downgrades\n"
