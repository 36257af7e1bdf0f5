"""The loyalty programme: its earning rules, promotions, tiers, members and tier history."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from patron.catalog.models import Category
from patron.core.money import CurrencyField, MoneyField
from patron.customers.models import Customer

#: Multipliers keep four decimal places (1.5x, 0.25x, 2x ...).
MULTIPLIER_MAX_DIGITS = 8
MULTIPLIER_DECIMAL_PLACES = 4


class RoundingChoices(models.TextChoices):
    """How fractional points of an order are rounded (floor: never more than earned)."""

    FLOOR = "floor", _("Round down")
    HALF_UP = "half_up", _("Round half up")
    CEILING = "ceiling", _("Round up")


class ExpiryPolicyChoices(models.TextChoices):
    """When earned points expire."""

    NEVER = "never", _("Never")
    MONTHS_AFTER_EARNING = "months_after_earning", _("N months after earning")
    END_OF_YEAR_AFTER_EARNING = "end_of_year_after_earning", _("End of the year after earning")


class TierMetricChoices(models.TextChoices):
    """What tier thresholds measure (never the current balance)."""

    POINTS = "points", _("Qualifying points earned")
    SPEND = "spend", _("Qualifying net spend")


class TierWindowChoices(models.TextChoices):
    """The period over which the tier metric is summed."""

    ROLLING_12_MONTHS = "rolling_12_months", _("Rolling 12 months")
    CALENDAR_YEAR = "calendar_year", _("Calendar year")
    LIFETIME = "lifetime", _("Lifetime")


class MultiplierField(models.DecimalField):
    """A points multiplier (1.5x, 0.25x, 2x ...) with four decimal places."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", MULTIPLIER_MAX_DIGITS)
        kwargs.setdefault("decimal_places", MULTIPLIER_DECIMAL_PLACES)
        super().__init__(*args, **kwargs)


def _default_channels() -> list[str]:
    return []


class Programme(models.Model):
    """A shop's loyalty programme and its earning, pending, expiry and tier rules.

    Points earned on an order = rounding(net spend x ``points_per_unit`` x category
    multiplier x tier multiplier x promotion multiplier). ``earning_channels`` empty means
    every channel earns.
    """

    name = models.CharField(_("name"), max_length=200)
    is_active = models.BooleanField(_("active"), default=True)
    currency = CurrencyField(_("currency"))
    points_per_unit = models.DecimalField(
        _("points per currency unit"), max_digits=12, decimal_places=4, default=Decimal(1)
    )
    rounding = models.CharField(
        _("rounding"), max_length=16, choices=RoundingChoices.choices, default=RoundingChoices.FLOOR
    )
    minimum_order_amount = MoneyField(_("minimum order"), default=Decimal(0))
    earning_channels = models.JSONField(
        _("channels that earn"), default=_default_channels, blank=True
    )
    pending_days = models.PositiveIntegerField(_("pending days"), default=15)
    expiry_policy = models.CharField(
        _("expiry"),
        max_length=32,
        choices=ExpiryPolicyChoices.choices,
        default=ExpiryPolicyChoices.NEVER,
    )
    expiry_months = models.PositiveIntegerField(_("expiry months"), null=True, blank=True)
    point_value_amount = MoneyField(_("value of one point"), default=Decimal("0.01"))
    tier_metric = models.CharField(
        _("tier metric"),
        max_length=16,
        choices=TierMetricChoices.choices,
        default=TierMetricChoices.POINTS,
    )
    tier_window = models.CharField(
        _("tier window"),
        max_length=32,
        choices=TierWindowChoices.choices,
        default=TierWindowChoices.ROLLING_12_MONTHS,
    )
    downgrade_grace_days = models.PositiveIntegerField(_("grace before a downgrade"), default=30)
    # Orders placed before the programme started (history imported later) earn nothing.
    earns_from = models.DateTimeField(_("orders earn from"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("loyalty programme")
        verbose_name_plural = _("loyalty programmes")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(points_per_unit__gte=0)
                & models.Q(minimum_order_amount__gte=0)
                & models.Q(point_value_amount__gte=0),
                name="programme_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=~models.Q(expiry_policy="months_after_earning")
                | models.Q(expiry_months__gte=1),
                name="programme_expiry_months_set",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class CategoryMultiplier(models.Model):
    """Points multiplier for order lines of a category (and its sub-categories)."""

    programme = models.ForeignKey(
        Programme, on_delete=models.CASCADE, related_name="category_multipliers"
    )
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="+")
    multiplier = MultiplierField(_("multiplier"))

    class Meta:
        verbose_name = _("category multiplier")
        verbose_name_plural = _("category multipliers")
        constraints = [
            models.UniqueConstraint(
                fields=["programme", "category"], name="category_multiplier_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(multiplier__gte=0), name="category_multiplier_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category_id} x{self.multiplier}"


class Promotion(models.Model):
    """A time-boxed points multiplier (double points during 11.11): ``starts_at <= t < ends_at``."""

    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="promotions")
    name = models.CharField(_("name"), max_length=200)
    multiplier = MultiplierField(_("multiplier"))
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("promotion")
        verbose_name_plural = _("promotions")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gt=models.F("starts_at")),
                name="promotion_ends_after_start",
            ),
            models.CheckConstraint(
                condition=models.Q(multiplier__gte=0), name="promotion_multiplier_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Tier(models.Model):
    """A rung of the programme's ladder, reached when the tier metric over the tier window
    reaches ``threshold`` (points, or money in the programme's currency)."""

    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="tiers")
    name = models.CharField(_("name"), max_length=100)
    threshold = models.DecimalField(_("threshold"), max_digits=18, decimal_places=4)
    earn_multiplier = MultiplierField(_("earn multiplier"), default=Decimal(1))
    birthday_bonus_points = models.PositiveIntegerField(_("birthday bonus points"), default=0)
    has_free_shipping = models.BooleanField(_("free shipping"), default=False)

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["programme", "threshold"]
        constraints = [
            models.UniqueConstraint(
                fields=["programme", "threshold"], name="tier_threshold_unique"
            ),
            models.UniqueConstraint(fields=["programme", "name"], name="tier_name_unique"),
            models.CheckConstraint(
                condition=models.Q(threshold__gte=0) & models.Q(earn_multiplier__gte=0),
                name="tier_values_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    """A customer enrolled in a programme, with the current tier and a referral code.

    ``downgrade_due_at`` is set when the member fell below the tier's threshold and the
    grace period runs; the downgrade happens when it passes without requalifying.
    """

    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="members")
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="loyalty_memberships"
    )
    referral_code = models.CharField(_("referral code"), max_length=16, unique=True)
    tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="members"
    )
    downgrade_due_at = models.DateTimeField(_("downgrade due at"), null=True, blank=True)
    enrolled_at = models.DateTimeField(_("enrolled at"))

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        constraints = [
            models.UniqueConstraint(fields=["programme", "customer"], name="member_unique")
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}@{self.programme_id}"


class TierChange(models.Model):
    """Append-only history of a member's tier changes, with the reason and the measured value."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tier_changes")
    from_tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    to_tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    qualifying_value = models.DecimalField(_("qualifying value"), max_digits=18, decimal_places=4)
    reason = models.CharField(_("reason"), max_length=300)
    changed_at = models.DateTimeField(_("changed at"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        ordering = ["changed_at", "pk"]
        indexes = [models.Index(fields=["member", "changed_at"], name="tier_change_member_time")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.from_tier_id} -> {self.to_tier_id}"
