"""Birthday and anniversary care: the tier's birthday bonus and the policy's anniversary
points on the right day of the shop's calendar (29 February on 28 February in other years),
once per member and year, balanced in the ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.utils import timezone

from patron.customers.models import Customer
from patron.loyalty.care import (
    celebrated_days,
    configure_care_policy,
    grant_anniversary_rewards,
    grant_birthday_rewards,
)
from patron.loyalty.errors import LoyaltyInputError
from patron.loyalty.members import enrol_member
from patron.loyalty.models import CareGrant, LedgerTransaction, Member, Programme, Tier
from patron.loyalty.programme import configure_programme, get_programme
from patron.loyalty.tiers import define_tier
from tests.loyalty.points_helpers import assert_ledger_consistent, ledger_size

pytestmark = pytest.mark.django_db

SILVER_BONUS = 100
GOLD_BONUS = 300
ANNIVERSARY_POINTS = 250


@pytest.fixture
def programme() -> Programme:
    programme = configure_programme(get_programme(), pending_days=15, points_per_unit=1)
    define_tier("Silver", 0, birthday_bonus_points=SILVER_BONUS, programme=programme)
    define_tier("Gold", 1000, birthday_bonus_points=GOLD_BONUS, programme=programme)
    configure_care_policy(programme, anniversary_points=ANNIVERSARY_POINTS)
    return programme


def local(*args: int) -> datetime:
    return timezone.make_aware(datetime(*args))


def member_born(
    birthday: date | None, enrolled_at: datetime | None = None, tier: str = ""
) -> Member:
    customer = Customer.objects.create(
        external_id=f"born-{Customer.objects.count()}", birthday=birthday
    )
    member = enrol_member(customer, as_of=enrolled_at or local(2020, 6, 1, 12))
    if tier:
        # The tier a member reached by earning; how they got there is the tiers' tests' job.
        Member.objects.filter(pk=member.pk).update(tier=Tier.objects.get(name=tier))
        member.refresh_from_db()
    return member


def granted(grants: list[CareGrant]) -> dict[int, int]:
    return {grant.member_id: grant.points for grant in grants}


# --------------------------------------------------------------------------- birthdays


def test_members_born_on_the_day_get_their_tiers_bonus(programme: Programme) -> None:
    silver = member_born(date(1990, 5, 10))
    gold = member_born(date(1985, 5, 10), tier="Gold")
    member_born(date(1990, 5, 11))
    member_born(None)

    grants = grant_birthday_rewards(date(2026, 5, 10))

    assert silver.tier == Tier.objects.get(name="Silver")
    assert granted(grants) == {silver.pk: SILVER_BONUS, gold.pk: GOLD_BONUS}
    entry = LedgerTransaction.objects.get(idempotency_key=f"birthday:{gold.pk}:2026")
    assert (entry.kind, entry.points, entry.actor) == ("adjust", GOLD_BONUS, "programme")
    assert entry.reason == "birthday bonus 2026 (Gold tier)"
    assert grants[0].granted_on == date(2026, 5, 10)
    assert assert_ledger_consistent(gold).available == GOLD_BONUS
    assert assert_ledger_consistent(silver).available == SILVER_BONUS


def test_birthdays_are_granted_once_a_year(programme: Programme) -> None:
    member = member_born(date(1990, 5, 10))
    grant_birthday_rewards(date(2026, 5, 10))
    size = ledger_size()

    again = grant_birthday_rewards(date(2026, 5, 10))
    at_noon = grant_birthday_rewards(local(2026, 5, 10, 12))

    assert (again, at_noon) == ([], [])
    assert ledger_size() == size
    next_year = grant_birthday_rewards(date(2027, 5, 10))
    assert granted(next_year) == {member.pk: SILVER_BONUS}
    assert assert_ledger_consistent(member).available == 2 * SILVER_BONUS


def test_a_tier_without_a_birthday_bonus_grants_nothing(programme: Programme) -> None:
    define_tier("Silver", 0, birthday_bonus_points=0, programme=programme)
    member_born(date(1990, 5, 10))

    assert grant_birthday_rewards(date(2026, 5, 10)) == []
    assert ledger_size() == (0, 0, 0, 0)


def test_the_day_is_the_shops_day(programme: Programme) -> None:
    # 17:00 UTC on 9 May is 01:00 on 10 May in Asia/Shanghai (the default shop zone).
    tenth = member_born(date(1990, 5, 10))
    member_born(date(1990, 5, 9))
    moment = datetime(2026, 5, 9, 17, 0, tzinfo=UTC)

    grants = grant_birthday_rewards(moment)

    assert granted(grants) == {tenth.pk: SILVER_BONUS}
    assert LedgerTransaction.objects.get().occurred_at == moment


def test_29_february_is_celebrated_on_28_february_in_other_years(programme: Programme) -> None:
    leapling = member_born(date(2000, 2, 29))
    born_28th = member_born(date(2000, 2, 28))

    non_leap_28 = grant_birthday_rewards(date(2027, 2, 28))
    non_leap_1_march = grant_birthday_rewards(date(2027, 3, 1))
    leap_28 = grant_birthday_rewards(date(2028, 2, 28))
    leap_29 = grant_birthday_rewards(date(2028, 2, 29))

    assert granted(non_leap_28) == {leapling.pk: SILVER_BONUS, born_28th.pk: SILVER_BONUS}
    assert non_leap_1_march == []
    assert granted(leap_28) == {born_28th.pk: SILVER_BONUS}
    assert granted(leap_29) == {leapling.pk: SILVER_BONUS}
    assert assert_ledger_consistent(leapling).available == 2 * SILVER_BONUS


def test_celebrated_days() -> None:
    assert celebrated_days(date(2027, 2, 28)) == [(2, 28), (2, 29)]
    assert celebrated_days(date(2028, 2, 28)) == [(2, 28)]
    assert celebrated_days(date(2028, 2, 29)) == [(2, 29)]
    assert celebrated_days(date(2027, 3, 1)) == [(3, 1)]


def test_someone_who_joins_after_the_day_waits_for_next_year(programme: Programme) -> None:
    member_born(date(1990, 5, 10), enrolled_at=local(2026, 5, 11, 9))

    assert grant_birthday_rewards(date(2026, 5, 10)) == []


def test_a_naive_moment_is_bad_input(programme: Programme) -> None:
    with pytest.raises(LoyaltyInputError, match="as_of"):
        grant_birthday_rewards(datetime(2026, 5, 10, 12))


# --------------------------------------------------------------------------- anniversaries


def test_anniversaries_grant_the_policys_points_once_a_year(programme: Programme) -> None:
    # Enrolled at 23:30 on 15 March in Shanghai (15:30 UTC): the local day counts.
    member = member_born(None, enrolled_at=local(2024, 3, 15, 23, 30))
    member_born(None, enrolled_at=local(2024, 3, 16, 0, 30))

    assert grant_anniversary_rewards(date(2024, 3, 15)) == []  # the day they joined
    first = grant_anniversary_rewards(date(2025, 3, 15))
    again = grant_anniversary_rewards(date(2025, 3, 15))
    second = grant_anniversary_rewards(date(2026, 3, 15))

    assert granted(first) == {member.pk: ANNIVERSARY_POINTS}
    assert again == []
    assert granted(second) == {member.pk: ANNIVERSARY_POINTS}
    entry = LedgerTransaction.objects.get(idempotency_key=f"anniversary:{member.pk}:2026")
    assert entry.reason == "membership anniversary: 2 years"
    assert assert_ledger_consistent(member).available == 2 * ANNIVERSARY_POINTS


def test_a_29_february_enrolment_is_celebrated_on_28_february(programme: Programme) -> None:
    member = member_born(None, enrolled_at=local(2024, 2, 29, 10))

    assert granted(grant_anniversary_rewards(date(2025, 2, 28))) == {member.pk: ANNIVERSARY_POINTS}
    assert grant_anniversary_rewards(date(2025, 3, 1)) == []
    assert grant_anniversary_rewards(date(2028, 2, 28)) == []
    assert granted(grant_anniversary_rewards(date(2028, 2, 29))) == {member.pk: ANNIVERSARY_POINTS}


def test_no_anniversary_points_configured_grants_nothing(programme: Programme) -> None:
    configure_care_policy(programme, anniversary_points=0)
    member_born(None, enrolled_at=local(2024, 3, 15, 10))

    assert grant_anniversary_rewards(date(2025, 3, 15)) == []
    assert CareGrant.objects.count() == 0


def test_birthday_and_anniversary_on_one_day_both_count(programme: Programme) -> None:
    member = member_born(date(1990, 6, 1), enrolled_at=local(2020, 6, 1, 12), tier="Gold")
    day = date(2026, 6, 1)

    grant_birthday_rewards(day)
    grant_anniversary_rewards(day)
    grant_birthday_rewards(day)
    grant_anniversary_rewards(local(2026, 6, 1, 20))

    balances = assert_ledger_consistent(member)
    assert (balances.available, balances.lifetime_earned) == (
        GOLD_BONUS + ANNIVERSARY_POINTS,
        GOLD_BONUS + ANNIVERSARY_POINTS,
    )
    assert sorted(CareGrant.objects.values_list("kind", "year")) == [
        ("anniversary", 2026),
        ("birthday", 2026),
    ]
