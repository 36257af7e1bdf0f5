"""The programme's configuration and its earning rules (how many points an order earns,
when they become available and when they expire)."""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from django.db import transaction
from django.utils import timezone

from patron.catalog.models import Category
from patron.core.choices import ChannelChoices
from patron.core.money import quantize_amount, round_for_currency
from patron.loyalty.errors import LoyaltyInputError
from patron.loyalty.locks import lock_rows
from patron.loyalty.models import CategoryMultiplier, Programme, Promotion, Tier
from patron.loyalty.models.programme import (
    ExpiryPolicyChoices,
    RoundingChoices,
    TierMetricChoices,
    TierWindowChoices,
)
from patron.loyalty.selectors import find_programme
from patron.orders.choices import OrderStatusChoices
from patron.orders.models import Order

#: Order states in which an order has been paid and earns points.
PAID_STATUSES = frozenset(
    {OrderStatusChoices.PAID, OrderStatusChoices.SHIPPED, OrderStatusChoices.DELIVERED}
)
#: Orders that give back every point they still hold.
CANCELLED_STATUSES = frozenset({OrderStatusChoices.CANCELLED, OrderStatusChoices.RETURNED})
_MAX_PENDING_DAYS = 366
_MAX_EXPIRY_MONTHS = 120


def get_programme() -> Programme:
    """The shop's programme (the first active one), created with the defaults on first use."""
    programme = find_programme()
    if programme is not None:
        return programme
    with transaction.atomic():
        # Two first callers at once: the lock on the (empty) range does not exist, so re-read
        # inside the transaction; on SQLite BEGIN IMMEDIATE already serialises them.
        programme = find_programme()
        if programme is None:
            programme = Programme.objects.create(name="Loyalty programme")
    return programme


def to_decimal(field: str, value: object, *, minimum: Decimal | None = Decimal(0)) -> Decimal:
    """``value`` as a Decimal (from Decimal, int or a decimal string; floats are refused
    because they cannot hold money or rates exactly)."""
    if isinstance(value, bool | float):
        raise LoyaltyInputError(
            field, f"must be a Decimal, an integer or a decimal string, not {value!r}"
        )
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise LoyaltyInputError(field, f"{value!r} is not a number") from None
    else:
        raise LoyaltyInputError(field, f"must be a number, not {type(value).__name__}")
    if not result.is_finite():
        raise LoyaltyInputError(field, f"{value!r} is not a finite number")
    if minimum is not None and result < minimum:
        raise LoyaltyInputError(field, f"must be at least {minimum}, got {result}")
    return result


def to_int(field: str, value: object, *, minimum: int = 0, maximum: int | None = None) -> int:
    """``value`` as an int within bounds (booleans and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise LoyaltyInputError(field, f"must be an integer, not {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise LoyaltyInputError(field, f"must be {bounds}, got {value}")
    return value


def to_datetime(field: str, value: object) -> datetime:
    """``value`` as an aware date-time: a datetime or an ISO 8601 text; a date or a time
    without a zone is read in the shop's time zone."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise LoyaltyInputError(
                field, f"must be an ISO 8601 date or date-time, not {value!r}"
            ) from None
    if not isinstance(value, datetime):
        raise LoyaltyInputError(field, f"must be a date-time, not {type(value).__name__}")
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return value


def _day(moment: datetime) -> str:
    return timezone.localtime(moment).date().isoformat()


def _choice(field: str, value: object, choices: type[Any]) -> str:
    if not isinstance(value, str) or value not in choices.values:
        raise LoyaltyInputError(field, f"must be one of {', '.join(choices.values)}, got {value!r}")
    return value


def _validated_changes(programme: Programme, changes: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for field, value in changes.items():
        if field == "name":
            if not isinstance(value, str) or not value.strip():
                raise LoyaltyInputError(field, "must be a non-empty text")
            clean[field] = value.strip()[:200]
        elif field == "is_active":
            if not isinstance(value, bool):
                raise LoyaltyInputError(field, f"must be true or false, not {value!r}")
            clean[field] = value
        elif field == "currency":
            if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
                raise LoyaltyInputError(field, f"must be a 3-letter ISO 4217 code, got {value!r}")
            clean[field] = value.upper()
        elif field == "points_per_unit":
            clean[field] = to_decimal(field, value).quantize(Decimal("0.0001"))
        elif field in ("minimum_order_amount", "point_value_amount"):
            clean[field] = quantize_amount(to_decimal(field, value))
        elif field == "rounding":
            clean[field] = _choice(field, value, RoundingChoices)
        elif field == "earning_channels":
            if not isinstance(value, list | tuple):
                raise LoyaltyInputError(field, "must be a list of channels (empty: every channel)")
            for channel in value:
                _choice(field, channel, ChannelChoices)
            clean[field] = sorted(set(value))
        elif field == "pending_days":
            clean[field] = to_int(field, value, maximum=_MAX_PENDING_DAYS)
        elif field == "expiry_policy":
            clean[field] = _choice(field, value, ExpiryPolicyChoices)
        elif field == "expiry_months":
            clean[field] = (
                None
                if value is None
                else to_int(field, value, minimum=1, maximum=_MAX_EXPIRY_MONTHS)
            )
        elif field == "tier_metric":
            clean[field] = _choice(field, value, TierMetricChoices)
        elif field == "tier_window":
            clean[field] = _choice(field, value, TierWindowChoices)
        elif field == "earns_from":
            clean[field] = None if value is None else to_datetime(field, value)
        elif field == "downgrade_grace_days":
            clean[field] = to_int(field, value, maximum=_MAX_PENDING_DAYS)
        else:
            raise LoyaltyInputError(field, "is not a setting of the programme")
    policy = clean.get("expiry_policy", programme.expiry_policy)
    months = clean.get("expiry_months", programme.expiry_months)
    if policy == ExpiryPolicyChoices.MONTHS_AFTER_EARNING and months is None:
        raise LoyaltyInputError(
            "expiry_months", "is required when points expire N months after earning"
        )
    return clean


def configure_programme(programme: Programme | None = None, **changes: Any) -> Programme:
    """Change settings of the programme (the shop's programme by default) after checking every
    one; a bad value raises :class:`LoyaltyInputError` naming the field and changes nothing."""
    programme = programme or get_programme()
    clean = _validated_changes(programme, changes)
    with transaction.atomic():
        (locked,) = lock_rows(Programme.objects.filter(pk=programme.pk))
        for field, value in clean.items():
            setattr(locked, field, value)
        locked.save()
    # The caller's instance shows the new settings too (no stale copy after the call).
    for field, value in clean.items():
        setattr(programme, field, value)
    return locked


def set_category_multiplier(
    category: Category, multiplier: object, programme: Programme | None = None
) -> CategoryMultiplier:
    """Make lines of ``category`` (and its sub-categories without one of their own) earn
    ``multiplier`` times the base rate."""
    if not isinstance(category, Category) or category.pk is None:
        raise LoyaltyInputError("category", "must be a saved catalog category")
    value = to_decimal("multiplier", multiplier).quantize(Decimal("0.0001"))
    programme = programme or get_programme()
    row, _ = CategoryMultiplier.objects.update_or_create(
        programme=programme, category=category, defaults={"multiplier": value}
    )
    return row


def add_promotion(
    name: str,
    multiplier: object,
    starts_at: datetime,
    ends_at: datetime,
    programme: Programme | None = None,
) -> Promotion:
    """A time-boxed multiplier on orders placed in ``[starts_at, ends_at)``; when several
    promotions overlap, an order gets the largest one (they do not stack)."""
    if not isinstance(name, str) or not name.strip():
        raise LoyaltyInputError("name", "must be a non-empty text")
    value = to_decimal("multiplier", multiplier).quantize(Decimal("0.0001"))
    for field, moment in (("starts_at", starts_at), ("ends_at", ends_at)):
        if not isinstance(moment, datetime) or timezone.is_naive(moment):
            raise LoyaltyInputError(field, "must be a timezone-aware datetime")
    if ends_at <= starts_at:
        raise LoyaltyInputError("ends_at", "must be after starts_at")
    return Promotion.objects.create(
        programme=programme or get_programme(),
        name=name.strip(),
        multiplier=value,
        starts_at=starts_at,
        ends_at=ends_at,
    )


@dataclass(frozen=True)
class EarningQuote:
    """What an order earns: ``points`` (0 with ``reason`` when the order does not earn),
    the net ``spend`` it qualifies with, and the factors applied."""

    points: int
    spend: Decimal
    reason: str
    category_weighted_spend: Decimal = Decimal(0)
    tier_multiplier: Decimal = Decimal(1)
    promotion_multiplier: Decimal = Decimal(1)


def _category_multipliers(programme: Programme) -> dict[int, Decimal]:
    """Multiplier per category id, inherited down the tree where a child has none."""
    own = dict(
        CategoryMultiplier.objects.filter(programme=programme).values_list(
            "category_id", "multiplier"
        )
    )
    if not own:
        return {}
    parents = dict(Category.objects.values_list("pk", "parent_id"))
    resolved: dict[int, Decimal] = {}
    for category_id in parents:
        node: int | None = category_id
        seen = 0
        # Walk up to the nearest ancestor with a multiplier (bounded: a tree, not a cycle).
        while node is not None and node not in own and seen < 64:
            node = parents.get(node)
            seen += 1
        if node is not None and node in own:
            resolved[category_id] = own[node]
    return resolved


def promotion_multiplier(programme: Programme, moment: datetime) -> tuple[Decimal, str]:
    """The largest multiplier of the promotions running at ``moment`` (1 when none)."""
    best = (
        Promotion.objects.filter(
            programme=programme, is_active=True, starts_at__lte=moment, ends_at__gt=moment
        )
        .order_by("-multiplier", "pk")
        .first()
    )
    if best is None:
        return Decimal(1), ""
    return best.multiplier, best.name


@dataclass(frozen=True)
class EarningRules:
    """The programme's category multipliers and active promotions, read once for a batch."""

    category_multipliers: dict[int, Decimal]
    promotions: list[Promotion]

    def promotion_at(self, moment: datetime) -> tuple[Decimal, str]:
        """As :func:`promotion_multiplier`, from the promotions read."""
        running = [p for p in self.promotions if p.starts_at <= moment < p.ends_at]
        if not running:
            return Decimal(1), ""
        best = min(running, key=lambda promotion: (-promotion.multiplier, promotion.pk))
        return best.multiplier, best.name


def earning_rules(programme: Programme) -> EarningRules:
    """Read the programme's multipliers and active promotions once (for batches)."""
    return EarningRules(
        category_multipliers=_category_multipliers(programme),
        promotions=list(Promotion.objects.filter(programme=programme, is_active=True)),
    )


def round_points(value: Decimal | Fraction, rounding: str) -> int:
    """Round fractional points by the programme's rule (floor by default), exactly."""
    exact = Fraction(value)
    if rounding == RoundingChoices.CEILING:
        return math.ceil(exact)
    if rounding == RoundingChoices.HALF_UP:
        # Points are never negative here, so half up is floor(x + 1/2).
        return math.floor(exact + Fraction(1, 2))
    return math.floor(exact)


def _money(amount: Decimal, programme: Programme) -> str:
    return str(round_for_currency(Decimal(amount), programme.currency))


def _number(value: Decimal) -> str:
    """A rate or multiplier without trailing zeros (2.5, not 2.5000)."""
    return f"{Decimal(value).normalize():f}"


def quote_order_points(
    programme: Programme,
    order: Order,
    *,
    tier: Tier | None,
    refunded: Decimal = Decimal(0),
    rules: EarningRules | None = None,
    lines: list[tuple[Decimal, int | None]] | None = None,
) -> EarningQuote:
    """Points an order earns: its net spend (total less ``refunded``), each line weighted by
    its category's multiplier (the order discount spread over lines in proportion to their
    totals), times the base rate, the tier's and the running promotion's multipliers, rounded
    by the programme's rule. Refused channels and small orders earn 0 with the reason.
    ``rules`` and ``lines`` (line total, category id) may be read beforehand for a batch."""
    if order.currency.upper() != programme.currency.upper():
        raise LoyaltyInputError(
            "order.currency",
            f"order {order.external_id} is in {order.currency}, "
            f"the programme in {programme.currency}",
        )
    net = quantize_amount(order.total_amount - refunded)
    if programme.earns_from is not None and order.ordered_at < programme.earns_from:
        return EarningQuote(
            0,
            Decimal(0),
            f"placed before the programme started earning on {_day(programme.earns_from)}",
        )
    if programme.earning_channels and order.channel not in programme.earning_channels:
        return EarningQuote(
            0, Decimal(0), f"orders from channel {order.channel} do not earn points"
        )
    if order.total_amount < programme.minimum_order_amount:
        return EarningQuote(
            0,
            Decimal(0),
            f"order total {_money(order.total_amount, programme)} is below the minimum of "
            f"{_money(programme.minimum_order_amount, programme)} {programme.currency}",
        )
    if net <= 0:
        return EarningQuote(0, Decimal(0), "nothing left to earn on after refunds")
    multipliers = (
        rules.category_multipliers if rules is not None else _category_multipliers(programme)
    )
    weighted = Fraction(net)
    if multipliers:
        if lines is None:
            lines = list(order.lines.values_list("line_total_amount", "product__category_id"))
        lines_total = sum((amount for amount, _ in lines), Decimal(0))
        if lines_total > 0:
            weighted_lines = sum(
                (
                    amount
                    * (multipliers.get(category_id, Decimal(1)) if category_id else Decimal(1))
                    for amount, category_id in lines
                ),
                Decimal(0),
            )
            # Discount and refunds are spread over the lines in proportion to their totals.
            weighted = Fraction(weighted_lines) * Fraction(net) / Fraction(lines_total)
    tier_multiplier = tier.earn_multiplier if tier is not None else Decimal(1)
    promo_multiplier, promo_name = (
        rules.promotion_at(order.ordered_at)
        if rules is not None
        else promotion_multiplier(programme, order.ordered_at)
    )
    raw = (
        weighted
        * Fraction(programme.points_per_unit)
        * Fraction(tier_multiplier)
        * Fraction(promo_multiplier)
    )
    points = max(0, round_points(raw, programme.rounding))
    factors = [
        f"{_money(net, programme)} {programme.currency} x {_number(programme.points_per_unit)} pt"
    ]
    weighted_spend = quantize_amount(Decimal(weighted.numerator) / Decimal(weighted.denominator))
    if weighted != net:
        factors.append(f"category-weighted {_money(weighted_spend, programme)}")
    if tier is not None and tier_multiplier != 1:
        factors.append(f"tier {tier.name} {_number(tier_multiplier)}")
    if promo_name:
        factors.append(f"promotion {promo_name} {_number(promo_multiplier)}")
    return EarningQuote(
        points=points,
        spend=net,
        reason=" x ".join(factors) + f" = {points}",
        category_weighted_spend=weighted_spend,
        tier_multiplier=tier_multiplier,
        promotion_multiplier=promo_multiplier,
    )


def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` plus calendar months in the shop's time zone (31 Jan + 1 month = 28/29 Feb)."""
    local = timezone.localtime(moment)
    month_index = local.month - 1 + months
    year, month = local.year + month_index // 12, month_index % 12 + 1
    day = min(local.day, calendar.monthrange(year, month)[1])
    return local.replace(year=year, month=month, day=day)


def start_of_year(year: int) -> datetime:
    """Midnight of 1 January of ``year`` in the shop's time zone."""
    return timezone.make_aware(datetime(year, 1, 1))


def expiry_for(programme: Programme, earned_at: datetime) -> datetime | None:
    """When points earned at ``earned_at`` expire (None: never). "End of the year after
    earning" means the last instant of the calendar year that follows the year of earning."""
    if programme.expiry_policy == ExpiryPolicyChoices.MONTHS_AFTER_EARNING:
        return add_months(earned_at, programme.expiry_months or 0)
    if programme.expiry_policy == ExpiryPolicyChoices.END_OF_YEAR_AFTER_EARNING:
        return start_of_year(timezone.localtime(earned_at).year + 2)
    return None


def available_from(programme: Programme, earned_at: datetime) -> datetime:
    """When points earned at ``earned_at`` stop pending (the return window has passed)."""
    return earned_at + timedelta(days=programme.pending_days)
