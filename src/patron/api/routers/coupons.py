"""``/api/v1/coupons/{code}``: check a code against an order, use it, give the use back.

A refusal answers with the coupon's reason as ``code`` (``expired``, ``minimum_spend``,
``total_limit_reached``, ``not_stackable`` …, see ``patron.loyalty.coupons.REFUSAL_CODES``):
409 where the coupon's state refuses it (limits, stacking, an order conflict), 422 where the
request cannot use it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from patron.api.errors import ApiError, ErrorOut, ValidationErrorOut
from patron.api.idempotency import require_idempotency_key
from patron.api.schemas import ShopDateTime, format_amount
from patron.api.shortcuts import get_customer_or_404, input_error
from patron.loyalty.coupons import (
    CouponLine,
    CouponRefusedError,
    coupon_lines_for_order,
    redeem_coupon,
    release_coupon_use,
    validate_coupon,
)
from patron.loyalty.errors import LoyaltyInputError
from patron.loyalty.models import CouponRedemption
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
_ORDER_TOTAL_QUERY = Query(..., gt=0, description="Order total, a decimal")
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


@router.get("/{code}/validate", response={200: ValidationOut, **_ERRORS}, summary="Check a code")
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
