"""Tiers: defining the ladder, measuring a member's qualifying points or spend over the
programme's window (never the current balance), upgrades at once, downgrades after a grace
period, and the append-only history of changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from patron.loyalty.errors import LoyaltyInputError
from patron.loyalty.locks import lock_point_balances
from patron.loyalty.models import LedgerTransaction, Member, Programme, Tier, TierChange
from patron.loyalty.models.programme import TierMetricChoices, TierWindowChoices
from patron.loyalty.programme import add_months, get_programme, start_of_year, to_decimal, to_int


def define_tier(
    name: str,
    threshold: object,
    *,
    earn_multiplier: object = Decimal(1),
    birthday_bonus_points: int = 0,
    has_free_shipping: bool = False,
    programme: Programme | None = None,
) -> Tier:
    """Create or update the tier called ``name``. ``threshold`` is in points or in money,
    as the programme's tier metric says; the lowest tier usually has threshold 0."""
    if not isinstance(name, str) or not name.strip():
        raise LoyaltyInputError("name", "must be a non-empty text")
    threshold_value = to_decimal("threshold", threshold).quantize(Decimal("0.0001"))
    multiplier = to_decimal("earn_multiplier", earn_multiplier).quantize(Decimal("0.0001"))
    bonus = to_int("birthday_bonus_points", birthday_bonus_points)
    if not isinstance(has_free_shipping, bool):
        raise LoyaltyInputError("has_free_shipping", "must be true or false")
    programme = programme or get_programme()
    clash = (
        Tier.objects.filter(programme=programme, threshold=threshold_value)
        .exclude(name=name.strip())
        .first()
    )
    if clash is not None:
        raise LoyaltyInputError("threshold", f"tier {clash.name} already has {threshold_value}")
    tier, _ = Tier.objects.update_or_create(
        programme=programme,
        name=name.strip(),
        defaults={
            "threshold": threshold_value,
            "earn_multiplier": multiplier,
            "birthday_bonus_points": bonus,
            "has_free_shipping": has_free_shipping,
        },
    )
    return tier


def window_start(programme: Programme, as_of: datetime) -> datetime | None:
    """First instant of the tier window ending at ``as_of`` (None: lifetime)."""
    if programme.tier_window == TierWindowChoices.ROLLING_12_MONTHS:
        return add_months(as_of, -12)
    if programme.tier_window == TierWindowChoices.CALENDAR_YEAR:
        return start_of_year(timezone.localtime(as_of).year)
    return None


def qualifying_value(member: Member, as_of: datetime) -> Decimal:
    """The member's tier metric over the window ending at ``as_of``: points earned on orders
    net of refund reversals, or net spend of earning orders net of refunds. Redemptions,
    expiry and adjustments do not count, so spending points never costs a tier."""
    programme = member.programme
    transactions = LedgerTransaction.objects.filter(member=member, occurred_at__lte=as_of)
    start = window_start(programme, as_of)
    if start is not None:
        transactions = transactions.filter(occurred_at__gt=start)
    if programme.tier_metric == TierMetricChoices.SPEND:
        total = transactions.aggregate(total=Sum("spend_amount"))["total"]
    else:
        total = transactions.aggregate(total=Sum("qualifying_points"))["total"]
    return Decimal(total or 0)


def qualifying_values(
    member_ids: list[int], programme: Programme, as_of: datetime
) -> dict[int, Decimal]:
    """:func:`qualifying_value` of many members of one programme in one query."""
    transactions = LedgerTransaction.objects.filter(
        member_id__in=member_ids, occurred_at__lte=as_of
    )
    start = window_start(programme, as_of)
    if start is not None:
        transactions = transactions.filter(occurred_at__gt=start)
    column = (
        "spend_amount" if programme.tier_metric == TierMetricChoices.SPEND else "qualifying_points"
    )
    totals = dict(
        transactions.order_by()
        .values("member_id")
        .annotate(total=Sum(column))
        .values_list("member_id", "total")
    )
    return {member_id: Decimal(totals.get(member_id) or 0) for member_id in member_ids}


def in_window(programme: Programme, moment: datetime, as_of: datetime) -> bool:
    """Whether an event at ``moment`` counts towards the tier value at ``as_of``."""
    start = window_start(programme, as_of)
    return moment <= as_of and (start is None or moment > start)


def _target_tier(tiers: list[Tier], value: Decimal) -> Tier | None:
    reached = [tier for tier in tiers if tier.threshold <= value]
    return reached[-1] if reached else None


def _describe(programme: Programme, value: Decimal) -> str:
    metric = "points" if programme.tier_metric == TierMetricChoices.POINTS else programme.currency
    window = TierWindowChoices(programme.tier_window).label
    return f"{value.normalize():f} {metric} over {window}"


def enrolment_tier(programme: Programme, tiers: list[Tier]) -> tuple[Tier | None, str]:
    """The tier a member with no history starts in (``tiers`` by threshold) and the reason
    :func:`evaluate_member_tier` records for it on enrolment."""
    target = _target_tier(tiers, Decimal(0))
    if target is None:
        return None, ""
    return (
        target,
        f"upgrade: {_describe(programme, Decimal(0))} reached {target}'s threshold (enrolled)",
    )


def evaluate_member_tier(
    member: Member,
    as_of: datetime,
    cause: str,
    *,
    value: Decimal | None = None,
    tiers: list[Tier] | None = None,
) -> TierChange | None:
    """Move the member to the tier their qualifying value reaches: up at once; down only
    once the grace period has run without requalifying. Call it with the member's balance
    row locked (every ledger action does); returns the recorded change, if any. A batch
    may pass the ``value`` it tracks and the programme's ``tiers`` (by threshold)."""
    programme = member.programme
    if tiers is None:
        tiers = list(Tier.objects.filter(programme=programme).order_by("threshold"))
    if not tiers:
        return None
    if value is None:
        value = qualifying_value(member, as_of)
    target = _target_tier(tiers, value)
    current = member.tier
    if target == current:
        if member.downgrade_due_at is not None:
            member.downgrade_due_at = None
            member.save(update_fields=["downgrade_due_at"])
        return None
    is_upgrade = current is None or (target is not None and target.threshold > current.threshold)
    if is_upgrade:
        reason = f"upgrade: {_describe(programme, value)} reached {target}'s threshold ({cause})"
    else:
        if member.downgrade_due_at is None and programme.downgrade_grace_days > 0:
            member.downgrade_due_at = as_of + timedelta(days=programme.downgrade_grace_days)
            member.save(update_fields=["downgrade_due_at"])
            return None
        if member.downgrade_due_at is not None and as_of < member.downgrade_due_at:
            return None
        reason = (
            f"downgrade: {_describe(programme, value)} is below {current}'s threshold"
            + (
                f" after a {programme.downgrade_grace_days}-day grace period"
                if programme.downgrade_grace_days
                else ""
            )
            + f" ({cause})"
        )
    change = TierChange.objects.create(
        member=member,
        from_tier=current,
        to_tier=target,
        qualifying_value=value,
        reason=reason[:300],
        changed_at=as_of,
    )
    member.tier = target
    member.downgrade_due_at = None
    member.save(update_fields=["tier", "downgrade_due_at"])
    return change


@dataclass(frozen=True)
class TierReview:
    """What a review of every member's tier did."""

    members_reviewed: int
    upgrades: int
    downgrades: int


def review_tiers(as_of: datetime | None = None, programme: Programme | None = None) -> TierReview:
    """Re-evaluate every member's tier at ``as_of`` (windows roll, grace periods end).
    Running it twice at the same moment changes nothing the second time."""
    as_of = as_of or timezone.now()
    programme = programme or get_programme()
    reviewed = upgrades = downgrades = 0
    member_ids = list(
        Member.objects.filter(programme=programme).order_by("pk").values_list("pk", flat=True)
    )
    for member_id in member_ids:
        with transaction.atomic():
            lock_point_balances([member_id])
            member = Member.objects.select_related("programme", "tier").get(pk=member_id)
            change = evaluate_member_tier(member, as_of, "periodic review")
        reviewed += 1
        if change is not None:
            if change.from_tier is None or (
                change.to_tier is not None and change.to_tier.threshold > change.from_tier.threshold
            ):
                upgrades += 1
            else:
                downgrades += 1
    return TierReview(reviewed, upgrades, downgrades)
