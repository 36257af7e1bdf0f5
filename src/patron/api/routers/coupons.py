"""``/api/v1/coupons``: coupon templates and their codes made in bulk; a code checked against
an order, used, and its use given back.

A refusal answers with the coupon's reason as ``code`` (``expired``, ``minimum_spend``,
``total_limit_reached``, ``not_stackable`` …, see ``patron.loyalty.coupons.REFUSAL_CODES``):
409 where the coupon's state refuses it (limits, stacking, an order conflict), 422 where the
request cannot use it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from patron.api.auth import requires_permission, requires_scope
from patron.api.choices import ScopeChoices
from patron.api.errors import ApiError, ErrorOut, ValidationErrorOut
from patron.api.idempotency import require_idempotency_key
from patron.api.schemas import ApiDateTime, ShopDateTime, format_amount
from patron.api.shortcuts import (
    get_customer_or_404,
    input_error,
    invalid_request,
    model_validation_error,
)
from patron.catalog.models import Category
from patron.core.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from patron.core.roles import ApiPermissionChoices
from patron.loyalty.coupons import (
    CouponLine,
    CouponRefusedError,
    coupon_lines_for_order,
    create_coupon_template,
    generate_coupon_codes,
    redeem_coupon,
    release_coupon_use,
    validate_coupon,
)
from patron.loyalty.errors import LoyaltyInputError
from patron.loyalty.models import CouponRedemption, CouponTemplate
from patron.loyalty.models.coupons import CouponKindChoices
from patron.orders.models import Order

router = Router(tags=["coupons"])

_ERRORS: dict[int, type[Schema]] = {
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ValidationErrorOut,
}
# Query parameters declared once (ruff B008: calls in argument defaults).
_CUSTOMER_QUERY = Query(..., description="External id of the customer")
# The same bounds as the redemption's body: a total past them cannot be a stored amount, and
# one past 28 digits made the quote's rounding fail (a 500).
_ORDER_TOTAL_QUERY = Query(
    ...,
    gt=0,
    max_digits=MONEY_MAX_DIGITS,
    decimal_places=MONEY_DECIMAL_PLACES,
    description="Order total, a decimal",
)
_ORDER_ID_QUERY = Query("", description="The shop's order id, for category-limited codes")
_OTHER_CODES_QUERY = Query("", description="Codes already on the order, comma-separated")


class ValidationOut(Schema):
    """What the code would take off the order, or why it would be refused."""

    code: str
    valid: bool
    discount_amount: str | None = Field(description="A decimal string; null when refused")
    eligible_amount: str | None = Field(
        description="The part of the order the discount applies to (its categories)"
    )
    is_free_shipping: bool
    currency: str | None
    refusal_code: str = Field(description="Empty when valid", examples=["minimum_spend"])
    message: str


class RedeemIn(Schema):
    """The order using the code (the shop's order id) and its total."""

    customer_external_id: str = Field(min_length=1, max_length=100)
    order_id: str = Field(min_length=1, max_length=128)
    order_total: Decimal = Field(gt=0, max_digits=18, decimal_places=4, examples=["299.00"])
    other_codes: list[str] = Field(default_factory=list, description="Codes already used")


class ReleaseIn(Schema):
    """The cancelled order whose use of the code is given back."""

    order_id: str = Field(min_length=1, max_length=128)


class RedemptionOut(Schema):
    """One use of a code by an order."""

    code: str
    order_id: str
    customer_external_id: str
    order_total: str
    discount_amount: str
    is_free_shipping: bool
    currency: str
    redeemed_at: ShopDateTime
    released_at: ShopDateTime | None


#: Codes one request may generate: the answer lists them all (about 20 bytes each).
MAX_CODES_PER_REQUEST = 10_000


class CouponTemplateIn(Schema):
    """The rules of a coupon campaign, shared by its codes."""

    name: str = Field(min_length=1, max_length=200, examples=["¥20 off ¥200"])
    kind: str = Field(examples=["fixed_amount", "percentage", "free_shipping"])
    value: Decimal = Field(
        Decimal(0),
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        description="The amount off (fixed_amount), the percent off (percentage, above 0 and "
        "at most 100) or 0 (free_shipping)",
        examples=["20"],
    )
    currency: str | None = Field(
        None, pattern="^[A-Z]{3}$", description="ISO 4217; default: the shop's currency"
    )
    minimum_spend_amount: Decimal = Field(
        Decimal(0), max_digits=MONEY_MAX_DIGITS, decimal_places=MONEY_DECIMAL_PLACES
    )
    categories: list[str] = Field(
        default_factory=list,
        description="Paths of the categories the discount applies to; empty: the whole order",
        examples=[["Tea > Green tea"]],
    )
    valid_from: ApiDateTime | None = None
    valid_until: ApiDateTime | None = Field(None, description="Exclusive; null: open")
    total_use_limit: int | None = Field(None, description="Uses of all its codes together")
    per_customer_use_limit: int | None = None
    is_stackable: bool = Field(False, description="May be combined with other codes")
    is_active: bool = True


class CouponTemplateOut(Schema):
    """A coupon template."""

    id: int
    name: str
    kind: str
    value: str
    currency: str
    minimum_spend_amount: str
    categories: list[str] = Field(description="Category paths")
    valid_from: ShopDateTime | None
    valid_until: ShopDateTime | None
    total_use_limit: int | None
    per_customer_use_limit: int | None
    is_stackable: bool
    is_active: bool
    times_used: int


class CodesIn(Schema):
    """How many codes to make, and their shape."""

    count: int = Field(description=f"1 to {MAX_CODES_PER_REQUEST:,}", examples=[500])
    prefix: str = Field(
        "",
        max_length=20,
        description="Letters, digits or '-' before the random part",
        examples=["VIP-"],
    )
    use_limit: int | None = Field(
        1, description="Uses of each code (1: single use); null: only the template's limits"
    )


class CodesOut(Schema):
    """The codes made: shown in this answer only (a retry with the same ``Idempotency-Key``
    gets the same codes back)."""

    template_id: int
    count: int
    codes: list[str]


def _lines(order_id: str) -> list[CouponLine] | None:
    """The lines of the order when the store holds it (for coupons limited to categories)."""
    order = Order.objects.filter(external_id=order_id).first()
    return None if order is None else coupon_lines_for_order(order)


def _refusal(error: CouponRefusedError) -> ApiError:
    return ApiError(409 if error.is_conflict else 422, error.code, error.message)


def _redemption_out(redemption: CouponRedemption) -> dict[str, Any]:
    currency = redemption.currency
    return {
        "code": redemption.coupon.code,
        "order_id": redemption.order_id,
        "customer_external_id": redemption.customer.external_id,
        "order_total": format_amount(redemption.order_total_amount, currency),
        "discount_amount": format_amount(redemption.discount_amount, currency),
        "is_free_shipping": redemption.is_free_shipping,
        "currency": currency,
        "redeemed_at": redemption.redeemed_at,
        "released_at": redemption.released_at,
    }


@router.post(
    "/templates", response={201: CouponTemplateOut, **_ERRORS}, summary="Create a coupon template"
)
@requires_scope(ScopeChoices.ADMIN)
@requires_permission(ApiPermissionChoices.COUPONS_CONFIGURE)
def create_template(request: HttpRequest, body: CouponTemplateIn) -> Status[dict[str, Any]]:
    """Create the rules of a coupon campaign; its codes are made with ``/codes``. Every field
    is checked first; a bad one (a value that does not fit the kind, an unknown category, a
    validity that ends before it starts ...) is a 422 naming it, and nothing is written.
    Needs an ``Idempotency-Key``."""
    require_idempotency_key(request)
    categories = list(Category.objects.filter(path__in=body.categories))
    unknown = sorted(set(body.categories) - {category.path for category in categories})
    if unknown:
        raise invalid_request([("categories", f"no category with path {', '.join(unknown)}")])
    try:
        template = create_coupon_template(
            name=body.name,
            kind=body.kind,
            value=body.value,
            currency=body.currency,
            minimum_spend_amount=body.minimum_spend_amount,
            categories=categories,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            total_use_limit=body.total_use_limit,
            per_customer_use_limit=body.per_customer_use_limit,
            is_stackable=body.is_stackable,
            is_active=body.is_active,
        )
    except ValidationError as error:
        raise model_validation_error(error) from error
    return Status(201, _template_out(template))


@router.post(
    "/templates/{template_id}/codes",
    response={201: CodesOut, **_ERRORS},
    summary="Make codes of a template",
)
@requires_scope(ScopeChoices.ADMIN)
@requires_permission(ApiPermissionChoices.COUPONS_CONFIGURE)
def create_codes(request: HttpRequest, template_id: int, body: CodesIn) -> Status[dict[str, Any]]:
    """Make ``count`` new unique, unguessable codes of the template (at most 10,000 a request)
    and return them; this answer is the only place that lists them. ``404
    coupon_template_not_found`` for an unknown template. Needs an ``Idempotency-Key``."""
    require_idempotency_key(request)
    if not 1 <= body.count <= MAX_CODES_PER_REQUEST:
        raise invalid_request(
            [
                (
                    "count",
                    f"give 1 to {MAX_CODES_PER_REQUEST:,} codes per request, not {body.count:,}; "
                    "make more with further requests",
                )
            ]
        )
    template = CouponTemplate.objects.filter(pk=template_id).first()
    if template is None:
        raise ApiError(404, "coupon_template_not_found", f"No coupon template #{template_id}.")
    try:
        codes = generate_coupon_codes(
            template, body.count, prefix=body.prefix, use_limit=body.use_limit
        )
    except LoyaltyInputError as error:
        raise input_error(error) from error
    return Status(201, {"template_id": template.pk, "count": len(codes), "codes": codes})


def _template_out(template: CouponTemplate) -> dict[str, Any]:
    currency = template.currency
    return {
        "id": template.pk,
        "name": template.name,
        "kind": template.kind,
        "value": (
            format_amount(template.value, currency)
            if template.kind == CouponKindChoices.FIXED_AMOUNT
            else format(template.value.normalize(), "f")
        ),
        "currency": currency,
        "minimum_spend_amount": format_amount(template.minimum_spend_amount, currency),
        "categories": sorted(category.path for category in template.categories.all()),
        "valid_from": template.valid_from,
        "valid_until": template.valid_until,
        "total_use_limit": template.total_use_limit,
        "per_customer_use_limit": template.per_customer_use_limit,
        "is_stackable": template.is_stackable,
        "is_active": template.is_active,
        "times_used": template.times_used,
    }


@router.get("/{code}/validate", response={200: ValidationOut, **_ERRORS}, summary="Check a code")
@requires_permission(ApiPermissionChoices.COUPONS_CHECKOUT)
def validate(
    request: HttpRequest,
    code: str,
    customer: str = _CUSTOMER_QUERY,
    order_total: Decimal = _ORDER_TOTAL_QUERY,
    order_id: str = _ORDER_ID_QUERY,
    other_codes: str = _OTHER_CODES_QUERY,
) -> dict[str, Any]:
    """What the code would take off the order now, or the reason it would be refused.

    Advice only: nothing is reserved; ``redeem`` checks again under its locks."""
    try:
        answer = validate_coupon(
            code,
            get_customer_or_404(customer),
            order_total,
            _lines(order_id) if order_id else None,
            [item.strip() for item in other_codes.split(",") if item.strip()],
        )
    except LoyaltyInputError as error:
        raise input_error(error) from error
    quote = answer.quote
    return {
        "code": code,
        "valid": quote is not None,
        "discount_amount": (
            None if quote is None else format_amount(quote.discount_amount, quote.currency)
        ),
        "eligible_amount": (
            None if quote is None else format_amount(quote.eligible_amount, quote.currency)
        ),
        "is_free_shipping": quote is not None and quote.is_free_shipping,
        "currency": None if quote is None else quote.currency,
        "refusal_code": answer.refusal_code,
        "message": answer.message or "The code can be used on this order.",
    }


@router.post("/{code}/redeem", response={201: RedemptionOut, **_ERRORS}, summary="Use a code")
@requires_scope(ScopeChoices.LOYALTY)
@requires_permission(ApiPermissionChoices.COUPONS_CHECKOUT)
def redeem(request: HttpRequest, code: str, body: RedeemIn) -> Status[dict[str, Any]]:
    """Use the code on the order, never beyond its limits; the same order again gets its
    earlier use back. Needs an ``Idempotency-Key``."""
    require_idempotency_key(request)
    try:
        redemption = redeem_coupon(
            code,
            get_customer_or_404(body.customer_external_id),
            body.order_id,
            body.order_total,
            _lines(body.order_id),
            body.other_codes,
        )
    except CouponRefusedError as error:
        raise _refusal(error) from error
    except LoyaltyInputError as error:
        raise input_error(error) from error
    return Status(201, _redemption_out(redemption))


@router.post("/{code}/release", response={200: RedemptionOut, **_ERRORS}, summary="Give a use back")
@requires_scope(ScopeChoices.LOYALTY)
@requires_permission(ApiPermissionChoices.COUPONS_CHECKOUT)
def release(request: HttpRequest, code: str, body: ReleaseIn) -> dict[str, Any]:
    """The order was cancelled: its use of the code is given back (releasing twice changes
    nothing); 404 when the order never used the code. Needs an ``Idempotency-Key``."""
    require_idempotency_key(request)
    try:
        redemption = release_coupon_use(code, body.order_id)
    except CouponRefusedError as error:
        raise _refusal(error) from error
    except LoyaltyInputError as error:
        raise input_error(error) from error
    if redemption is None:
        raise ApiError(
            404, "redemption_not_found", f"Order {body.order_id!r} has not used code {code!r}."
        )
    return _redemption_out(redemption)
