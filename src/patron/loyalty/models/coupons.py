"""Coupon templates, their codes and every use of a code.

A :class:`CouponTemplate` says what a coupon gives and under which rules (kind, value, minimum
spend, category scope, validity, limits, stacking); a :class:`Coupon` is one code of a template,
shared by many customers or assigned to one; a :class:`CouponRedemption` is one use of a code by
one order. The counters (``times_used``) change only with ``F()`` under the ordered row locks of
``patron.loyalty.coupons``; the check constraints below are the database's own backstop so that
no bug can push a counter past its limit.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from patron.catalog.models import Category
from patron.core.money import CurrencyField, MoneyField
from patron.customers.models import Customer


class CouponKindChoices(models.TextChoices):
    """What a coupon takes off an order."""

    FIXED_AMOUNT = "fixed_amount", _("Fixed amount off")
    PERCENTAGE = "percentage", _("Percentage off")
    FREE_SHIPPING = "free_shipping", _("Free shipping")


class CouponTemplate(models.Model):
    """The rules shared by the codes of one coupon campaign.

    ``value`` is an amount in ``currency`` for fixed-amount coupons, a percentage (0 < p <= 100)
    for percentage coupons and 0 for free shipping. ``categories`` limit the discount to the
    order lines of those categories and their sub-categories (empty: the whole order).
    ``minimum_spend_amount`` is compared with the order total. The coupon is valid from
    ``valid_from`` (inclusive) until ``valid_until`` (exclusive); either may be open.
    ``total_use_limit`` caps the uses of all the template's codes together and
    ``per_customer_use_limit`` the uses by one customer (empty: no cap). ``times_used`` counts
    the uses not released.
    """

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=16, choices=CouponKindChoices.choices)
    value = models.DecimalField(_("value"), max_digits=18, decimal_places=4, default=Decimal(0))
    currency = CurrencyField(_("currency"))
    minimum_spend_amount = MoneyField(_("minimum spend"), default=Decimal(0))
    categories = models.ManyToManyField(
        Category, blank=True, related_name="coupon_templates", verbose_name=_("categories")
    )
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    total_use_limit = models.PositiveIntegerField(_("total use limit"), null=True, blank=True)
    per_customer_use_limit = models.PositiveIntegerField(
        _("use limit per customer"), null=True, blank=True
    )
    is_stackable = models.BooleanField(_("stackable with other codes"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    times_used = models.PositiveIntegerField(_("times used"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("coupon template")
        verbose_name_plural = _("coupon templates")
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind=CouponKindChoices.FIXED_AMOUNT, value__gt=0)
                    | models.Q(kind=CouponKindChoices.PERCENTAGE, value__gt=0, value__lte=100)
                    | models.Q(kind=CouponKindChoices.FREE_SHIPPING, value=0)
                ),
                name="coupon_template_value_fits_kind",
            ),
            models.CheckConstraint(
                condition=models.Q(minimum_spend_amount__gte=0),
                name="coupon_template_minimum_spend_not_negative",
            ),
            models.CheckConstraint(
                condition=models.Q(valid_from__isnull=True)
                | models.Q(valid_until__isnull=True)
                | models.Q(valid_until__gt=models.F("valid_from")),
                name="coupon_template_window_ordered",
            ),
            models.CheckConstraint(
                condition=models.Q(total_use_limit__isnull=True)
                | models.Q(times_used__lte=models.F("total_use_limit")),
                name="coupon_template_within_total_limit",
            ),
            models.CheckConstraint(
                condition=models.Q(total_use_limit__isnull=True) | models.Q(total_use_limit__gt=0),
                name="coupon_template_total_limit_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(per_customer_use_limit__isnull=True)
                | models.Q(per_customer_use_limit__gt=0),
                name="coupon_template_customer_limit_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Check every field against the others; errors name the field that is wrong."""
        errors: dict[str, str] = {}
        value = self.value
        if self.kind == CouponKindChoices.FIXED_AMOUNT:
            if value is None or value <= 0:
                errors["value"] = str(_("a fixed-amount coupon needs a value above 0"))
        elif self.kind == CouponKindChoices.PERCENTAGE:
            if value is None or not Decimal(0) < value <= Decimal(100):
                errors["value"] = str(
                    _("a percentage coupon needs a value above 0 and at most 100")
                )
        elif self.kind == CouponKindChoices.FREE_SHIPPING and value not in (None, Decimal(0)):
            errors["value"] = str(_("a free-shipping coupon has no value; leave it at 0"))
        if self.minimum_spend_amount is not None and self.minimum_spend_amount < 0:
            errors["minimum_spend_amount"] = str(_("the minimum spend cannot be negative"))
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_until <= self.valid_from
        ):
            errors["valid_until"] = str(_("the end of the validity must come after its start"))
        if self.total_use_limit is not None and self.total_use_limit < 1:
            errors["total_use_limit"] = str(_("the total use limit must be at least 1"))
        if self.per_customer_use_limit is not None and self.per_customer_use_limit < 1:
            errors["per_customer_use_limit"] = str(
                _("the use limit per customer must be at least 1")
            )
        if (
            self.total_use_limit is not None
            and self.per_customer_use_limit is not None
            and self.per_customer_use_limit > self.total_use_limit
        ):
            errors["per_customer_use_limit"] = str(
                _("the use limit per customer cannot exceed the total use limit")
            )
        if errors:
            raise ValidationError(errors)


class Coupon(models.Model):
    """One code of a coupon template.

    A code assigned to a ``customer`` is personal: nobody else may use it. ``use_limit`` caps the
    uses of this code (1 for personal single-use codes; empty: only the template's limits).
    ``code`` is stored upper-case; look-ups normalise what the customer typed the same way.
    """

    template = models.ForeignKey(
        CouponTemplate, on_delete=models.PROTECT, related_name="coupons", verbose_name=_("template")
    )
    code = models.CharField(_("code"), max_length=64, unique=True)
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="coupons",
        verbose_name=_("assigned to"),
    )
    use_limit = models.PositiveIntegerField(_("use limit"), null=True, blank=True)
    times_used = models.PositiveIntegerField(_("times used"), default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(use_limit__isnull=True)
                | models.Q(times_used__lte=models.F("use_limit")),
                name="coupon_within_use_limit",
            ),
            models.CheckConstraint(
                condition=models.Q(use_limit__isnull=True) | models.Q(use_limit__gt=0),
                name="coupon_use_limit_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.code


class CouponRedemption(models.Model):
    """One use of a code by one order (``order_id`` is the shop's own order id).

    ``(coupon, order_id)`` is unique: an order redeeming the same code again gets this row back.
    A cancelled order releases its use (``released_at``), which frees it for someone else; the
    row stays as history, and the same order redeeming the code again takes it back.
    """

    coupon = models.ForeignKey(
        Coupon, on_delete=models.PROTECT, related_name="redemptions", verbose_name=_("coupon")
    )
    # Kept beside the coupon so that the per-customer limit of a template is one indexed count.
    template = models.ForeignKey(
        CouponTemplate,
        on_delete=models.PROTECT,
        related_name="redemptions",
        db_index=False,  # indexed by coupon_use_template_customer
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="coupon_redemptions", db_index=False
    )
    order_id = models.CharField(_("order id"), max_length=128)
    order_total_amount = MoneyField(_("order total"))
    discount_amount = MoneyField(_("discount"))
    is_free_shipping = models.BooleanField(_("free shipping"), default=False)
    currency = CurrencyField(_("currency"))
    redeemed_at = models.DateTimeField(_("redeemed at"))
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)

    class Meta:
        verbose_name = _("coupon redemption")
        verbose_name_plural = _("coupon redemptions")
        constraints = [
            models.UniqueConstraint(
                fields=["coupon", "order_id"], name="coupon_redemption_once_per_order"
            ),
            models.CheckConstraint(
                condition=models.Q(order_total_amount__gte=0) & models.Q(discount_amount__gte=0),
                name="coupon_redemption_amounts_not_negative",
            ),
        ]
        indexes = [
            models.Index(fields=["template", "customer"], name="coupon_use_template_customer"),
            models.Index(fields=["order_id"], name="coupon_use_order"),
        ]

    def __str__(self) -> str:
        return f"{self.coupon_id}@{self.order_id}"

    @property
    def is_active(self) -> bool:
        """Whether this use still counts (it was not released)."""
        return self.released_at is None
