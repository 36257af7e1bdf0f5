"""Member care: birthday bonus points (a tier benefit) and membership anniversary points,
granted once per member and year by the daily job.

Days are the shop's calendar days (``TIME_ZONE``). A birthday or an enrolment on 29 February
is celebrated on 28 February in years without one. Each grant is a ledger adjustment made by
the programme under the key ``{kind}:{member}:{year}`` plus a :class:`CareGrant` row in the
same transaction, so running a day twice grants nothing twice. Messages are not sent here
(there is no messaging layer yet): the grant rows are what one will read.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from patron.core.bulk import chunks
from patron.loyalty.errors import LoyaltyInputError
from patron.loyalty.ledger import adjust_points
from patron.loyalty.locks import lock_point_balances
from patron.loyalty.models import CareGrant, CarePolicy, Member, Programme
from patron.loyalty.models.referrals import CareKindChoices
from patron.loyalty.programme import get_programme, to_int

#: Who the ledger names as the maker of programme-granted points.
PROGRAMME_ACTOR = "programme"
_MAX_POLICY_POINTS = 10**9


@dataclass(frozen=True)
class CareDay:
    """The shop's calendar day a care job runs for, and the moment its grants carry."""

    day: date
    moment: datetime


def care_day(as_of: date | datetime | None) -> CareDay:
    """``as_of`` as a day of the shop's calendar: a datetime's local date (and the datetime
    itself as the grant's moment), or a date (granted at its local midnight)."""
    if as_of is None:
        as_of = timezone.now()
    if isinstance(as_of, datetime):
        if timezone.is_naive(as_of):
            raise LoyaltyInputError("as_of", "must be timezone-aware")
        return CareDay(timezone.localtime(as_of).date(), as_of)
    if isinstance(as_of, date):
        return CareDay(as_of, timezone.make_aware(datetime.combine(as_of, time.min)))
    raise LoyaltyInputError("as_of", f"must be a date or a datetime, not {as_of!r}")


def celebrated_days(day: date) -> list[tuple[int, int]]:
    """The (month, day) pairs celebrated on ``day``: itself, plus 29 February on
    28 February of a year without one."""
    pairs = [(day.month, day.day)]
    if day.month == 2 and day.day == 28 and not calendar.isleap(day.year):
        pairs.append((2, 29))
    return pairs


def get_care_policy(programme: Programme | None = None) -> CarePolicy:
    """The programme's care policy, created with the defaults on first use."""
    programme = programme or get_programme()
    policy, _created = CarePolicy.objects.get_or_create(programme=programme)
    return policy


def configure_care_policy(
    programme: Programme | None = None, *, anniversary_points: int | None = None
) -> CarePolicy:
    """Change the care policy; settings left as None keep their value."""
    policy = get_care_policy(programme)
    if anniversary_points is not None:
        policy.anniversary_points = to_int(
            "anniversary_points", anniversary_points, maximum=_MAX_POLICY_POINTS
        )
    policy.save()
    return policy


def _grant(member: Member, kind: str, points: int, when: CareDay, reason: str) -> CareGrant | None:
    """Grant ``points`` once for (member, kind, year); None when granted before."""
    year = when.day.year
    if CareGrant.objects.filter(member=member, kind=kind, year=year).exists():
        return None
    try:
        with transaction.atomic():
            lock_point_balances([member.pk])
            if CareGrant.objects.filter(member=member, kind=kind, year=year).exists():
                return None  # a concurrent run granted it
            entry = adjust_points(
                member,
                points,
                reason=reason,
                actor=PROGRAMME_ACTOR,
                idempotency_key=f"{kind}:{member.pk}:{year}",
                as_of=when.moment,
            )
            return CareGrant.objects.create(
                member=member,
                kind=kind,
                year=year,
                granted_on=when.day,
                points=points,
                transaction=entry,
            )
    except IntegrityError:
        # The grant row of a concurrent run (unique member, kind, year) won.
        if CareGrant.objects.filter(member=member, kind=kind, year=year).exists():
            return None
        raise


def _on_day(field: str, day: date) -> Q:
    condition = Q()
    for month, day_of_month in celebrated_days(day):
        condition |= Q(**{f"{field}__month": month, f"{field}__day": day_of_month})
    return condition


def _members(programme: Programme, when: CareDay) -> QuerySet[Member]:
    return (
        Member.objects.filter(programme=programme, enrolled_at__date__lte=when.day)
        .select_related("tier", "customer")
        .order_by("pk")
    )


#: Members whose birthdays are decrypted per round trip.
BIRTHDAY_BATCH = 5000


def _birthday_member_ids(programme: Programme, when: CareDay) -> list[int]:
    """Ids of the members with a bonus-carrying tier whose birthday is celebrated on the day.

    Birthdays are stored encrypted, so the database cannot compare their month and day: they
    are read in batches and compared after decryption, and no plain copy is ever kept.
    """
    wanted = set(celebrated_days(when.day))
    found: list[int] = []
    rows = (
        _members(programme, when)
        .filter(tier__birthday_bonus_points__gt=0, customer__birthday__isnull=False)
        .values_list("pk", "customer__birthday")
    )
    for member_pk, birthday in rows.iterator(chunk_size=BIRTHDAY_BATCH):
        if birthday is not None and (birthday.month, birthday.day) in wanted:
            found.append(member_pk)
    return found


def grant_birthday_rewards(
    as_of: date | datetime | None = None, programme: Programme | None = None
) -> list[CareGrant]:
    """Give each member whose birthday is ``as_of`` (the shop's day) the birthday bonus of
    their tier, once per member and year; members of a tier without one get nothing.
    Returns the grants made by this run."""
    when = care_day(as_of)
    programme = programme or get_programme()
    grants: list[CareGrant] = []
    members = (
        member
        for chunk in chunks(_birthday_member_ids(programme, when))
        for member in _members(programme, when).filter(pk__in=chunk)
    )
    for member in members:
        assert member.tier is not None
        grant = _grant(
            member,
            CareKindChoices.BIRTHDAY,
            member.tier.birthday_bonus_points,
            when,
            f"birthday bonus {when.day.year} ({member.tier.name} tier)",
        )
        if grant is not None:
            grants.append(grant)
    return grants


def grant_anniversary_rewards(
    as_of: date | datetime | None = None, programme: Programme | None = None
) -> list[CareGrant]:
    """Give each member enrolled on this day of an earlier year (in the shop's calendar)
    the policy's anniversary points, once per member and year. Returns the grants made by
    this run."""
    when = care_day(as_of)
    programme = programme or get_programme()
    points = get_care_policy(programme).anniversary_points
    if points == 0:
        return []
    grants: list[CareGrant] = []
    # The month/day lookups of a datetime field are taken in the current time zone.
    members = _members(programme, when).filter(
        _on_day("enrolled_at", when.day), enrolled_at__year__lt=when.day.year
    )
    for member in members:
        years = when.day.year - timezone.localtime(member.enrolled_at).year
        grant = _grant(
            member,
            CareKindChoices.ANNIVERSARY,
            points,
            when,
            f"membership anniversary: {years} year{'s' if years > 1 else ''}",
        )
        if grant is not None:
            grants.append(grant)
    return grants
