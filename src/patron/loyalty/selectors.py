"""Reads of the loyalty programme: balances from postings, the ledger, expiry, overview."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from patron.core.money import quantize_amount
from patron.loyalty.models import (
    LedgerTransaction,
    Member,
    PointBalance,
    PointLot,
    Posting,
    Programme,
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
    row = PointBalance.objects.get(member=member)
    return MemberBalances(
        pending=row.pending,
        available=row.available,
        expired=row.expired,
        redeemed=row.redeemed,
        lifetime_earned=row.lifetime_earned,
        debt=row.debt,
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
    first = (
        PointLot.objects.filter(member=member, remaining_points__gt=0, expires_at__isnull=False)
        .order_by("expires_at")
        .values_list("expires_at", flat=True)
        .first()
    )
    if first is None:
        return None
    total = PointLot.objects.filter(
        member=member, remaining_points__gt=0, expires_at=first
    ).aggregate(total=Sum("remaining_points"))["total"]
    return Expiry(points=int(total or 0), expires_at=first)


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
