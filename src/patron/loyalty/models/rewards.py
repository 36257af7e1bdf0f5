"""The reward catalogue: what members can buy with their points, and every such purchase."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from patron.analytics.choices import SegmentationChoices
from patron.loyalty.models.coupons import Coupon, CouponKindChoices, CouponTemplate
from patron.loyalty.models.ledger import LedgerTransaction
from patron.loyalty.models.programme import Member, Programme, Tier


class RewardKindChoices(models.TextChoices):
    """What a member gets for the points."""

    COUPON = "coupon", _("Coupon")
    FREE_SHIPPING = "free_shipping", _("Free shipping")
    GIFT = "gift", _("Gift")


def _no_segment_codes() -> list[str]:
    return []


class Reward(models.Model):
    """An item of a programme's reward catalogue.

    A ``coupon`` reward issues a personal single-use code of ``coupon_template``; a
    ``free_shipping`` reward issues one of its (free-shipping) template when it has one; a
    ``gift`` is handed over by the shop. ``stock`` is what is left (empty: unlimited) and goes
    down with ``F()`` under the reward's row lock. ``per_member_limit`` caps the redemptions of
    one member. Eligibility: the member's tier among ``eligible_tiers`` (none listed: every
    tier and no tier), and the member's segment of ``segmentation`` in the latest analysis
    among ``segment_codes`` (no segmentation: everyone).
    """

    programme = models.ForeignKey(
        Programme, on_delete=models.PROTECT, related_name="rewards", verbose_name=_("programme")
    )
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=RewardKindChoices.choices)
    coupon_template = models.ForeignKey(
        CouponTemplate,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="rewards",
        verbose_name=_("coupon template"),
    )
    points_cost = models.PositiveIntegerField(_("points cost"))
    stock = models.PositiveIntegerField(_("stock left"), null=True, blank=True)
    per_member_limit = models.PositiveIntegerField(_("limit per member"), null=True, blank=True)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    eligible_tiers = models.ManyToManyField(
        Tier, blank=True, related_name="rewards", verbose_name=_("eligible tiers")
    )
    segmentation = models.CharField(
        _("segmentation"), max_length=16, choices=SegmentationChoices.choices, blank=True
    )
    segment_codes = models.JSONField(_("eligible segments"), default=_no_segment_codes, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(points_cost__gt=0), name="reward_points_cost_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(per_member_limit__isnull=True)
                | models.Q(per_member_limit__gt=0),
                name="reward_member_limit_positive",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind=RewardKindChoices.COUPON)
                | models.Q(coupon_template__isnull=False),
                name="reward_coupon_has_template",
            ),
            models.CheckConstraint(
                condition=~models.Q(kind=RewardKindChoices.GIFT)
                | models.Q(coupon_template__isnull=True),
                name="reward_gift_has_no_template",
            ),
            models.CheckConstraint(
                condition=models.Q(valid_from__isnull=True)
                | models.Q(valid_until__isnull=True)
                | models.Q(valid_until__gt=models.F("valid_from")),
                name="reward_window_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Check the fields against each other; errors name the field that is wrong."""
        errors: dict[str, str] = {}
        if self.points_cost is not None and self.points_cost < 1:
            errors["points_cost"] = str(_("a reward costs at least 1 point"))
        if self.per_member_limit is not None and self.per_member_limit < 1:
            errors["per_member_limit"] = str(_("the limit per member must be at least 1"))
        template = self.coupon_template if self.coupon_template_id is not None else None
        if self.kind == RewardKindChoices.COUPON and template is None:
            errors["coupon_template"] = str(_("a coupon reward needs a coupon template"))
        if self.kind == RewardKindChoices.GIFT and template is not None:
            errors["coupon_template"] = str(_("a gift has no coupon template"))
        if (
            self.kind == RewardKindChoices.FREE_SHIPPING
            and template is not None
            and template.kind != CouponKindChoices.FREE_SHIPPING
        ):
            errors["coupon_template"] = str(
                _("a free-shipping reward issues codes of a free-shipping template")
            )
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_until <= self.valid_from
        ):
            errors["valid_until"] = str(_("the end of the validity must come after its start"))
        codes = self.segment_codes
        if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
            errors["segment_codes"] = str(_("segment codes are a list of texts"))
        elif codes and not self.segmentation:
            errors["segmentation"] = str(_("choose the segmentation the segment codes belong to"))
        elif self.segmentation and not codes:
            errors["segment_codes"] = str(_("list the eligible segments of the segmentation"))
        if errors:
            raise ValidationError(errors)


class RewardRedemption(models.Model):
    """A member bought a reward with points (append-only).

    ``idempotency_key`` is unique: the same request delivered twice finds this row. The points
    left the member's account in ``ledger_transaction``; ``coupon`` is the code issued.
    """

    reward = models.ForeignKey(
        Reward, on_delete=models.PROTECT, related_name="redemptions", db_index=False
    )  # indexed by reward_use_reward_member
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="reward_redemptions")
    points = models.PositiveIntegerField(_("points"))
    idempotency_key = models.CharField(_("idempotency key"), max_length=200, unique=True)
    ledger_transaction = models.OneToOneField(
        LedgerTransaction,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reward_redemption",
    )
    coupon = models.OneToOneField(
        Coupon, on_delete=models.PROTECT, null=True, blank=True, related_name="reward_redemption"
    )
    redeemed_at = models.DateTimeField(_("redeemed at"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("reward redemption")
        verbose_name_plural = _("reward redemptions")
        indexes = [models.Index(fields=["reward", "member"], name="reward_use_reward_member")]

    def __str__(self) -> str:
        return f"{self.reward_id} -> {self.member_id} ({self.idempotency_key})"
