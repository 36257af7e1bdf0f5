"""Reads of the loyalty programme: balances from postings, the ledger, expiry, overview."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from patron.core.money import quantize_amount
from patron.core.sql import columns, fetch_one
from patron.customers.models import Customer
from patron.loyalty.models import (
    CategoryMultiplier,
    Coupon,
    CouponTemplate,
    LedgerTransaction,
    Member,
    PointBalance,
    PointLot,
    Posting,
    Programme,
    Promotion,
    Reward,
    Tier,
    TierChange,
)
from patron.loyalty.models.ledger import AccountChoices

Account = AccountChoices


@dataclass(frozen=True)
class MemberBalances:
    """A member's points: ``pending``, ``available`` and ``debt`` are account balances;
    ``lifetime_earned`` (earned on orders net of refunds, plus points added by hand),
    ``redeemed`` and ``expired`` are totals. With the points removed by hand,
    ``pending + available - debt = lifetime_earned - redeemed - expired - removed``."""

    pending: int
    available: int
    expired: int
    redeemed: int
    lifetime_earned: int
    debt: int


def _account_sums(postings: QuerySet[Posting]) -> tuple[dict[str, int], int]:
    """Sum of postings per account, and the points added by hand (the credit side of the
    adjustments account)."""
    rows = (
        postings.order_by()
        .values("account")
        .annotate(total=Sum("points"), negative=Sum("points", filter=Q(points__lt=0)))
        .values_list("account", "total", "negative")
    )
    sums: dict[str, int] = {}
    added_by_hand = 0
    for account, total, negative in rows:
        sums[account] = int(total)
        if account == Account.PROGRAMME_ADJUSTMENTS:
            added_by_hand = -int(negative or 0)
    return sums, added_by_hand


def balances_from_postings(sums: dict[str, int], added_by_hand: int) -> MemberBalances:
    """Balances from the sums of postings per account and the points added by hand."""
    return MemberBalances(
        pending=sums.get(Account.MEMBER_PENDING, 0),
        available=sums.get(Account.MEMBER_AVAILABLE, 0),
        expired=sums.get(Account.PROGRAMME_EXPIRED, 0),
        redeemed=sums.get(Account.PROGRAMME_REDEEMED, 0),
        lifetime_earned=-sums.get(Account.PROGRAMME_ISSUED, 0) + added_by_hand,
        debt=-sums.get(Account.MEMBER_DEBT, 0),
    )


def member_balances(member: Member) -> MemberBalances:
    """The member's balances, summed from the ledger's postings (the source of truth)."""
    return balances_from_postings(*_account_sums(Posting.objects.filter(member=member)))


def cached_balances(member: Member) -> MemberBalances:
    """The member's cached balance row (always equal to :func:`member_balances`)."""
    balance = columns(PointBalance, "b")
    row = fetch_one(
        f"SELECT {balance.sql} FROM {balance.table} WHERE {balance.column('member_id')} = %s",
        [member.pk],
    )
    if row is None:
        raise PointBalance.DoesNotExist(f"member #{member.pk} has no point balance")
    cached = balance.instance(row)
    assert cached is not None
    return MemberBalances(
        pending=cached.pending,
        available=cached.available,
        expired=cached.expired,
        redeemed=cached.redeemed,
        lifetime_earned=cached.lifetime_earned,
        debt=cached.debt,
    )


def ledger_entries(member: Member) -> QuerySet[LedgerTransaction]:
    """The member's ledger transactions, newest first, with their postings."""
    return (
        LedgerTransaction.objects.filter(member=member)
        .select_related("order", "refund")
        .prefetch_related("postings")
        .order_by("-occurred_at", "-pk")
    )


@dataclass(frozen=True)
class Expiry:
    """Points that expire together next."""

    points: int
    expires_at: datetime


def next_expiry(member: Member) -> Expiry | None:
    """The next date on which some of the member's points (pending or available) expire,
    and how many; None when nothing is due to expire."""
    lot = columns(PointLot, "l")
    expires_at = lot.column("expires_at")
    # On the path of every member read: one statement, not two compiled queries.
    row = fetch_one(
        f"SELECT {expires_at}, SUM({lot.column('remaining_points')}) FROM {lot.table} "
        f"WHERE {lot.column('member_id')} = %s AND {lot.column('remaining_points')} > 0 "
        f"AND {expires_at} IS NOT NULL GROUP BY {expires_at} ORDER BY {expires_at} LIMIT 1",
        [member.pk],
    )
    if row is None:
        return None
    return Expiry(points=int(row[1]), expires_at=lot.value("expires_at", row[0]))


@dataclass(frozen=True)
class ProgrammeOverview:
    """Headline figures of a programme. Liability is the money value of the points members
    hold (pending + available - debt) at the point value; the redemption rate is redeemed
    over points issued (earned on orders net of refunds, plus points added by hand)."""

    members: int
    members_per_tier: dict[str, int]
    points_issued: int
    points_redeemed: int
    points_expired: int
    points_outstanding: int
    outstanding_liability: Decimal
    currency: str
    redemption_rate: float | None


def programme_overview(programme: Programme) -> ProgrammeOverview:
    """Members per tier and the programme's points figures, from the postings."""
    per_tier = dict(
        Member.objects.filter(programme=programme)
        .order_by()
        .values("tier__name")
        .annotate(n=Count("pk"))
        .values_list("tier__name", "n")
    )
    totals = balances_from_postings(
        *_account_sums(Posting.objects.filter(transaction__programme=programme))
    )
    outstanding = totals.pending + totals.available - totals.debt
    return ProgrammeOverview(
        members=sum(per_tier.values()),
        members_per_tier={(name or "no tier"): count for name, count in per_tier.items()},
        points_issued=totals.lifetime_earned,
        points_redeemed=totals.redeemed,
        points_expired=totals.expired,
        points_outstanding=outstanding,
        outstanding_liability=quantize_amount(outstanding * programme.point_value_amount),
        currency=programme.currency,
        redemption_rate=(
            totals.redeemed / totals.lifetime_earned if totals.lifetime_earned > 0 else None
        ),
    )


# --------------------------------------------------------------------------- dashboard


def find_programme() -> Programme | None:
    """The shop's programme as :func:`~patron.loyalty.programme.get_programme` finds it (the
    first active one), or None before one exists. A read: it never creates the programme."""
    return Programme.objects.filter(is_active=True).order_by("pk").first()


@dataclass(frozen=True)
class TierSummary:
    """A rung of the ladder, how many members are on it and their share of all members
    (None without members); ``tier`` None: members without a tier (the programme has no tier
    with threshold 0, or none at all)."""

    tier: Tier | None
    members: int
    share: float | None


def tier_summaries(programme: Programme) -> list[TierSummary]:
    """Every tier of the programme by threshold with its members (empty tiers included), then
    the members without a tier when there are any."""
    counts: dict[int | None, int] = dict(
        Member.objects.filter(programme=programme)
        .order_by()
        .values("tier_id")
        .annotate(n=Count("pk"))
        .values_list("tier_id", "n")
    )
    total = sum(counts.values())

    def summary(tier: Tier | None, members: int) -> TierSummary:
        return TierSummary(tier, members, members / total if total else None)

    summaries = [
        summary(tier, counts.get(tier.pk, 0))
        for tier in Tier.objects.filter(programme=programme).order_by("threshold")
    ]
    if counts.get(None):
        summaries.append(summary(None, counts[None]))
    return summaries


@dataclass(frozen=True)
class MonthPoints:
    """Points of one calendar month (shop time): ``issued`` as in :class:`ProgrammeOverview`
    (earned on orders net of refund reversals, plus points added by hand; a month of large
    refunds can be negative), ``redeemed`` and ``expired``."""

    month: date
    issued: int
    redeemed: int
    expired: int


def points_by_month(
    programme: Programme, *, months: int = 12, as_of: datetime | None = None
) -> list[MonthPoints]:
    """Points issued, redeemed and expired per month over the ``months`` calendar months up
    to the month of ``as_of`` (now), from the postings; months without postings are zero.
    Empty when the programme has no postings in the period."""
    zone = timezone.get_current_timezone()
    last = timezone.localtime(as_of or timezone.now(), zone).date().replace(day=1)
    first = last
    for _ in range(months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
    start = datetime(first.year, first.month, 1, tzinfo=zone)
    rows = (
        Posting.objects.filter(
            transaction__programme=programme, transaction__occurred_at__gte=start
        )
        .annotate(month=TruncMonth("transaction__occurred_at", tzinfo=zone))
        .order_by()
        .values("month", "account")
        .annotate(total=Sum("points"), negative=Sum("points", filter=Q(points__lt=0)))
        .values_list("month", "account", "total", "negative")
    )
    sums: dict[date, dict[str, int]] = defaultdict(dict)
    added_by_hand: dict[date, int] = defaultdict(int)
    for moment, account, total, negative in rows:
        month = timezone.localtime(moment, zone).date() if isinstance(moment, datetime) else moment
        if month > last:
            continue  # postings dated after as_of's month
        sums[month][account] = int(total)
        if account == Account.PROGRAMME_ADJUSTMENTS:
            added_by_hand[month] = -int(negative or 0)
    if not sums:
        return []
    result = []
    month = first
    while month <= last:
        totals = balances_from_postings(sums.get(month, {}), added_by_hand.get(month, 0))
        result.append(MonthPoints(month, totals.lifetime_earned, totals.redeemed, totals.expired))
        month = (month + timedelta(days=32)).replace(day=1)
    return result


@dataclass(frozen=True)
class LedgerLine:
    """A ledger transaction as a member's statement shows it: how it moved the member's
    pending and available points and the debt owed (positive: more owed)."""

    entry: LedgerTransaction
    pending_change: int
    available_change: int
    debt_change: int


def ledger_lines(member: Member, limit: int) -> list[LedgerLine]:
    """The member's latest ``limit`` ledger transactions, newest first, with their effect on
    the member's accounts (summed from the transaction's postings)."""
    lines = []
    for entry in ledger_entries(member)[:limit]:
        change: dict[str, int] = defaultdict(int)
        for posting in entry.postings.all():
            change[posting.account] += posting.points
        lines.append(
            LedgerLine(
                entry,
                pending_change=change[Account.MEMBER_PENDING],
                available_change=change[Account.MEMBER_AVAILABLE],
                debt_change=-change[Account.MEMBER_DEBT],
            )
        )
    return lines


@dataclass(frozen=True)
class MemberSummary:
    """What the customer page shows of a member: tier, balances, the next expiry, the latest
    ledger lines (of ``entries_total``) and the latest tier change."""

    member: Member
    balances: MemberBalances
    next_expiry: Expiry | None
    lines: list[LedgerLine]
    entries_total: int
    last_tier_change: TierChange | None


def member_summary(customer: Customer, *, entries: int = 20) -> MemberSummary | None:
    """The customer's membership of the shop's programme (see :func:`find_programme`), or
    None when there is no programme or the customer is not a member."""
    programme = find_programme()
    if programme is None:
        return None
    member = (
        Member.objects.select_related("programme", "tier")
        .filter(programme=programme, customer=customer)
        .first()
    )
    if member is None:
        return None
    return MemberSummary(
        member=member,
        balances=member_balances(member),
        next_expiry=next_expiry(member),
        lines=ledger_lines(member, entries),
        entries_total=LedgerTransaction.objects.filter(member=member).count(),
        last_tier_change=(
            TierChange.objects.filter(member=member)
            .select_related("from_tier", "to_tier")
            .order_by("-changed_at", "-pk")
            .first()
        ),
    )


def programme_promotions(programme: Programme) -> QuerySet[Promotion]:
    """The programme's promotions, latest start first."""
    return Promotion.objects.filter(programme=programme).order_by("-starts_at", "-pk")


def programme_category_multipliers(programme: Programme) -> QuerySet[CategoryMultiplier]:
    """The programme's category multipliers, by category path."""
    return (
        CategoryMultiplier.objects.filter(programme=programme)
        .select_related("category")
        .order_by("category__path")
    )


def programme_rewards(programme: Programme) -> QuerySet[Reward]:
    """The programme's reward catalogue, active first then by points cost, with the number of
    redemptions of each (``redemptions_count``)."""
    return (
        Reward.objects.filter(programme=programme)
        .select_related("coupon_template")
        .prefetch_related("eligible_tiers")
        .annotate(redemptions_count=Count("redemptions"))
        .order_by("-is_active", "points_cost", "pk")
    )


def coupon_templates() -> QuerySet[CouponTemplate]:
    """Every coupon template, newest first, with its number of codes (``codes_count``)."""
    return (
        CouponTemplate.objects.prefetch_related("categories")
        .annotate(codes_count=Count("coupons"))
        .order_by("-created_at", "-pk")
    )


def coupon_codes(
    template: CouponTemplate, *, created_since: datetime | None = None
) -> QuerySet[Coupon]:
    """The codes of ``template`` in the order they were made, with the customer each is
    assigned to; ``created_since`` keeps those made at or after that moment (one batch)."""
    codes = Coupon.objects.filter(template=template).select_related("customer")
    if created_since is not None:
        codes = codes.filter(created_at__gte=created_since)
    return codes.order_by("pk")
