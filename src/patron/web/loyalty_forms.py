"""Forms of the loyalty pages: they parse what staff typed into the types the loyalty functions
take, nothing more. The rules (ranges, which combinations are allowed) are checked by those
functions, whose errors name the field; :func:`add_service_errors` puts them on the form.

Field names are the names of the loyalty functions' parameters, so an error that names
``points_per_unit`` lands under the *Points per currency unit* field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from patron.analytics.choices import SegmentationChoices
from patron.catalog.models import Category
from patron.core.choices import ChannelChoices
from patron.loyalty.errors import LoyaltyInputError
from patron.loyalty.models import CouponTemplate, Programme, Tier
from patron.loyalty.models.coupons import CouponKindChoices
from patron.loyalty.models.programme import (
    ExpiryPolicyChoices,
    RoundingChoices,
    TierMetricChoices,
    TierWindowChoices,
)
from patron.loyalty.models.rewards import RewardKindChoices

#: The settings of the programme form, in the order of the page (``configure_programme``'s
#: keyword arguments; ``is_active`` is left out: switching the programme off is not a form
#: field, because the next earning would start a new programme).
PROGRAMME_SETTINGS = (
    "name",
    "currency",
    "points_per_unit",
    "rounding",
    "minimum_order_amount",
    "earning_channels",
    "pending_days",
    "expiry_policy",
    "expiry_months",
    "point_value_amount",
    "tier_metric",
    "tier_window",
    "downgrade_grace_days",
    "earns_from",
)


def _datetime_input() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


def plain_decimal(value: Decimal) -> Decimal:
    """A stored decimal without its trailing zeros, never in exponent form (``1000.0000`` →
    ``1000``, ``0.0100`` → ``0.01``), for a form's initial value."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def add_service_errors(form: forms.Form, error: LoyaltyInputError | ValidationError) -> None:
    """Put a loyalty function's refusal on the field it names (on the form when the field is
    not one of the form's)."""
    if isinstance(error, LoyaltyInputError):
        messages: dict[str, list[str]] = {error.field: [error.message]}
    elif hasattr(error, "error_dict"):
        messages = error.message_dict
    else:
        messages = {"__all__": error.messages}
    for field, texts in messages.items():
        target = field if field in form.fields else None
        for text in texts:
            form.add_error(target, text)


class ProgrammeForm(forms.Form):
    """The programme's settings (see ``docs/loyalty.md``, *Programme*)."""

    name = forms.CharField(label=_("Programme name"), max_length=200)
    currency = forms.CharField(
        label=_("Currency"), max_length=3, help_text=_("ISO 4217 code, e.g. CNY")
    )
    points_per_unit = forms.DecimalField(
        label=_("Points per currency unit"),
        max_digits=12,
        decimal_places=4,
        help_text=_("Points earned per unit of net spend"),
    )
    rounding = forms.ChoiceField(label=_("Rounding of an order's points"), choices=RoundingChoices)
    minimum_order_amount = forms.DecimalField(
        label=_("Minimum order"),
        max_digits=18,
        decimal_places=2,
        help_text=_("Smaller orders earn no points"),
    )
    earning_channels = forms.MultipleChoiceField(
        label=_("Channels that earn"),
        choices=ChannelChoices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every channel earns"),
    )
    pending_days = forms.IntegerField(
        label=_("Pending days"), help_text=_("Points wait for the return window")
    )
    expiry_policy = forms.ChoiceField(label=_("Expiry"), choices=ExpiryPolicyChoices)
    expiry_months = forms.IntegerField(
        label=_("Expiry months"),
        required=False,
        help_text=_("Only for expiry N months after earning"),
    )
    point_value_amount = forms.DecimalField(
        label=_("Value of one point"),
        max_digits=18,
        decimal_places=2,
        help_text=_("Money value of a point, for rewards and the liability"),
    )
    tier_metric = forms.ChoiceField(label=_("Tier metric"), choices=TierMetricChoices)
    tier_window = forms.ChoiceField(label=_("Tier window"), choices=TierWindowChoices)
    downgrade_grace_days = forms.IntegerField(
        label=_("Grace before a downgrade (days)"),
    )
    earns_from = forms.DateTimeField(
        label=_("Orders earn from"),
        required=False,
        widget=_datetime_input(),
        help_text=_("Empty: every order; orders placed earlier earn nothing"),
    )

    @staticmethod
    def initial_of(programme: Programme) -> dict[str, Any]:
        """The form's initial values: the programme's current settings."""
        return {
            name: plain_decimal(value) if isinstance(value, Decimal) else value
            for name in PROGRAMME_SETTINGS
            for value in [getattr(programme, name)]
        }


class TierForm(forms.Form):
    """A rung of the ladder (``define_tier``: a tier of the same name is updated)."""

    name = forms.CharField(label=_("Tier name"), max_length=100)
    threshold = forms.DecimalField(
        label=_("Threshold"),
        max_digits=18,
        decimal_places=4,
        help_text=_("Points or money, as the programme's tier metric says"),
    )
    earn_multiplier = forms.DecimalField(
        label=_("Earn multiplier"), max_digits=8, decimal_places=4, initial=1
    )
    birthday_bonus_points = forms.IntegerField(label=_("Birthday bonus points"), initial=0)
    has_free_shipping = forms.BooleanField(label=_("Free shipping"), required=False)

    @staticmethod
    def initial_of(tier: Tier) -> dict[str, Any]:
        """The values of an existing tier, to change it."""
        return {
            "name": tier.name,
            "threshold": plain_decimal(tier.threshold),
            "earn_multiplier": plain_decimal(tier.earn_multiplier),
            "birthday_bonus_points": tier.birthday_bonus_points,
            "has_free_shipping": tier.has_free_shipping,
        }


class PromotionForm(forms.Form):
    """A time-boxed points multiplier (``add_promotion``), shop-local times."""

    name = forms.CharField(label=_("Promotion name"), max_length=200)
    multiplier = forms.DecimalField(
        label=_("Multiplier"), max_digits=8, decimal_places=4, help_text=_("2 = double points")
    )
    starts_at = forms.DateTimeField(label=_("Starts at"), widget=_datetime_input())
    ends_at = forms.DateTimeField(
        label=_("Ends at"), widget=_datetime_input(), help_text=_("Not included")
    )


class CategoryMultiplierForm(forms.Form):
    """A points multiplier for a category and its sub-categories (``set_category_multiplier``)."""

    category = forms.ModelChoiceField(
        label=_("Category"), queryset=Category.objects.order_by("path")
    )
    multiplier = forms.DecimalField(label=_("Multiplier"), max_digits=8, decimal_places=4)


class RewardForm(forms.Form):
    """A reward of the catalogue (``create_reward``)."""

    name = forms.CharField(label=_("Reward name"), max_length=200)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=RewardKindChoices)
    points_cost = forms.IntegerField(label=_("Points cost"))
    coupon_template = forms.ModelChoiceField(
        label=_("Coupon template"),
        queryset=CouponTemplate.objects.order_by("name"),
        required=False,
        help_text=_("For coupon and free-shipping rewards"),
    )
    stock = forms.IntegerField(label=_("Stock"), required=False, help_text=_("Empty: unlimited"))
    per_member_limit = forms.IntegerField(
        label=_("Limit per member"), required=False, help_text=_("Empty: no limit")
    )
    valid_from = forms.DateTimeField(
        label=_("Valid from"), required=False, widget=_datetime_input()
    )
    valid_until = forms.DateTimeField(
        label=_("Valid until"), required=False, widget=_datetime_input()
    )
    eligible_tiers = forms.ModelMultipleChoiceField(
        label=_("Eligible tiers"),
        queryset=Tier.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every member"),
    )
    segmentation = forms.ChoiceField(
        label=_("Segmentation"),
        choices=[("", _("Any segment")), *SegmentationChoices.choices],
        required=False,
    )
    segment_codes = forms.CharField(
        label=_("Eligible segments"),
        required=False,
        help_text=_("Segment codes separated by commas, e.g. champions, loyal"),
    )
    is_active = forms.BooleanField(label=_("Enabled"), required=False, initial=True)

    def __init__(self, *args: Any, programme: Programme, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tiers = self.fields["eligible_tiers"]
        assert isinstance(tiers, forms.ModelMultipleChoiceField)
        tiers.queryset = Tier.objects.filter(programme=programme).order_by("threshold")

    def clean_segment_codes(self) -> list[str]:
        """The codes as a list (blanks dropped)."""
        text: str = self.cleaned_data.get("segment_codes") or ""
        return [code.strip() for code in text.replace("，", ",").split(",") if code.strip()]


class CouponTemplateForm(forms.Form):
    """The rules of a coupon campaign (``create_coupon_template``)."""

    name = forms.CharField(label=_("Template name"), max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), choices=CouponKindChoices)
    value = forms.DecimalField(
        label=_("Discount value"),
        max_digits=18,
        decimal_places=4,
        initial=0,
        help_text=_("Amount off, or percentage off; 0 for free shipping"),
    )
    minimum_spend_amount = forms.DecimalField(
        label=_("Minimum spend"), max_digits=18, decimal_places=2, initial=0
    )
    categories = forms.ModelMultipleChoiceField(
        label=_("Categories"),
        queryset=Category.objects.order_by("path"),
        required=False,
        help_text=_("None chosen: the whole order"),
    )
    valid_from = forms.DateTimeField(
        label=_("Valid from"), required=False, widget=_datetime_input()
    )
    valid_until = forms.DateTimeField(
        label=_("Valid until"), required=False, widget=_datetime_input()
    )
    total_use_limit = forms.IntegerField(
        label=_("Total use limit"), required=False, help_text=_("Empty: no limit")
    )
    per_customer_use_limit = forms.IntegerField(
        label=_("Use limit per customer"), required=False, help_text=_("Empty: no limit")
    )
    is_stackable = forms.BooleanField(label=_("Stackable with other codes"), required=False)
    is_active = forms.BooleanField(label=_("Enabled"), required=False, initial=True)


class CouponCodesForm(forms.Form):
    """A batch of new codes of a template (``generate_coupon_codes``). ``confirmed`` is set by
    the confirmation step: the first post only shows what will be made."""

    count = forms.IntegerField(label=_("Number of codes"), initial=100)
    # Named as generate_coupon_codes' parameter, so that its errors land here. The form
    # metaclass moves declared fields off the class, so BaseForm.prefix is not shadowed.
    prefix = forms.CharField(  # type: ignore[assignment]
        label=_("Prefix"), max_length=20, required=False, help_text=_("e.g. VIP-")
    )
    use_limit = forms.IntegerField(
        label=_("Uses per code"),
        required=False,
        initial=1,
        help_text=_("1: single use; empty: only the template's limits"),
    )
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)
