"""``/api/v1/customers``: search customers and read one customer's profile and totals."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.http import HttpRequest
from django.utils.translation import get_language
from ninja import Field, Query, Router, Schema

from patron.analytics.selectors import (
    churn_reasons,
    prediction_settings,
    prefetched_analysis,
    value_at_risk,
    with_latest_analysis,
)
from patron.api.auth import requires_permission
from patron.api.errors import ApiError, ErrorOut, ValidationErrorOut
from patron.api.schemas import MAX_PAGE_NUMBER, ShopDateTime, format_amount
from patron.core.money import default_currency
from patron.core.roles import ApiPermissionChoices
from patron.customers.models import Customer
from patron.customers.selectors import get_customer, search_customers
from patron.orders.selectors import with_order_stats
from patron.privacy.access import PersonalData, customers_view, identities_view

#: Why the API reads personal data (named in the ``pii_read`` audit events).
LIST_PURPOSE = "api customer list"
DETAIL_PURPOSE = "api customer detail"

router = Router(tags=["customers"])

MAX_PAGE_SIZE = 200
_ERRORS: dict[int, type[Schema]] = {401: ErrorOut, 403: ErrorOut, 422: ValidationErrorOut}


class IdentityOut(Schema):
    """An identifier naming the customer (normalised: E.164 phone, lower-case e-mail)."""

    kind: str
    value: str


def _personal(obj: Any) -> PersonalData:
    """The personal data the handler attached for the caller (:func:`_attach_personal`)."""
    personal: PersonalData = obj.personal_data
    return personal


def _attach_personal(request: HttpRequest, customers: list[Customer], purpose: str) -> None:
    """Give each customer the personal data the caller may see (masked or plain; a plain
    read is audited once for the response)."""
    # The token's user, or the staff session's: its role decides.
    user = getattr(request, "auth", None) or request.user
    shown = customers_view(customers, user, purpose=purpose)
    for customer in customers:
        customer.personal_data = shown[customer.pk]  # type: ignore[attr-defined]


class CustomerSummaryOut(Schema):
    """A customer in a list, with lifetime order figures (cancelled orders do not count)."""

    external_id: str
    name: str = Field(description="Masked (张*) unless the caller's role reads personal data")
    email: str = Field(description="Masked (z***@qq.com) unless the caller's role may read it")
    phone: str = Field(description="Masked (138****5678) unless the caller's role may read it")
    province: str
    city: str
    signup_channel: str
    signed_up_at: ShopDateTime | None
    tags: list[str]
    orders_count: int
    total_spent: str = Field(
        description="Net spend (orders less refunds), a decimal string", examples=["1234.50"]
    )
    currency: str = Field(description="ISO 4217 currency of the amounts", examples=["CNY"])
    first_order_at: ShopDateTime | None
    last_order_at: ShopDateTime | None

    @staticmethod
    def resolve_name(obj: Any) -> str:
        return _personal(obj).name

    @staticmethod
    def resolve_email(obj: Any) -> str:
        return _personal(obj).email

    @staticmethod
    def resolve_phone(obj: Any) -> str:
        return _personal(obj).phone

    @staticmethod
    def resolve_total_spent(obj: Any) -> str:
        return format_amount(obj.total_spent, default_currency())

    @staticmethod
    def resolve_currency(obj: Any) -> str:
        return default_currency()


class RfmOut(Schema):
    """The customer's RFM figures as of the latest analysis (scores 1 worst to 5 best)."""

    recency_days: int = Field(description="Days since the last counted order")
    frequency: int = Field(description="Counted orders")
    monetary: str = Field(description="Net spend, a decimal string", examples=["1234.50"])
    r_score: int
    f_score: int
    m_score: int
    segment: str = Field(description="Segment of the classic RFM map", examples=["champions"])
    value_class: str = Field(
        description="R/F/M above or below their means (重要价值客户 ...)",
        examples=["important_value"],
    )


class ClvOut(Schema):
    """What the purchase and spend models (BG/NBD, Gamma-Gamma) expect of the customer."""

    value: str | None = Field(
        description="Discounted expected net spend over `months`, a decimal string",
        examples=["1234.50"],
    )
    months: int = Field(description="Months the lifetime value covers")
    currency: str
    p_alive: float | None = Field(description="Probability the customer is still active (0-1)")
    expected_purchases: float | None = Field(
        description="Expected purchases in the next `horizon_days`"
    )
    horizon_days: int
    next_purchase_expected_at: date | None = Field(
        description="Median date of the next purchase if the customer is still active"
    )
    next_purchase_earliest: date | None = Field(description="10% quantile of that date")
    next_purchase_latest: date | None = Field(description="90% quantile of that date")


class ChurnReasonOut(Schema):
    """One reason raising the churn risk, strongest first."""

    code: str = Field(examples=["days_since_last_order"])
    text: str = Field(description="In the request's language")
    value: float | None = Field(description="The feature's value for this customer")


class ChurnOut(Schema):
    """The churn model's risk that the customer makes no purchase in the next `horizon_days`."""

    probability: float = Field(description="Calibrated probability (0-1)")
    horizon_days: int
    value_at_risk: str | None = Field(
        description="CLV × churn probability, a decimal string (null without a CLV)"
    )
    reasons: list[ChurnReasonOut]


class CustomerOut(CustomerSummaryOut):
    """A customer's profile, identities, lifetime order figures and latest analysis
    (``patron analyze``; null fields when not analysed: no run yet, or no counted order by its
    as-of day)."""

    birthday: str | None = Field(
        description="YYYY-MM-DD, or ****-MM-DD (year masked) for roles that see masked data"
    )
    address: str = Field(description="Masked after the district for roles that see masked data")
    gender: str
    identities: list[IdentityOut]
    rfm: RfmOut | None
    lifecycle_stage: str | None = Field(examples=["active"])
    value_score: float | None = Field(description="AHP value score, 0-100")
    value_tier: str | None = Field(examples=["top"])
    behaviour_segment: str | None = Field(description="Name of the behaviour segment")
    analysed_as_of: date | None = Field(description="As-of day of the analysis")
    clv: ClvOut | None = Field(description="Null when not analysed or the models were not fitted")
    churn: ChurnOut | None = Field(description="Null when not analysed or the model not fitted")

    @staticmethod
    def resolve_birthday(obj: Any) -> str | None:
        return _personal(obj).birthday or None

    @staticmethod
    def resolve_address(obj: Any) -> str:
        return _personal(obj).address

    @staticmethod
    def resolve_identities(obj: Customer) -> list[IdentityOut]:
        # E-mail and phone identities are stored as a blind index plus the encrypted value:
        # ``identifier`` is the normalised value itself. Sorted before masking, so the
        # order does not depend on the caller's role.
        pairs = sorted((identity.kind, identity.identifier) for identity in obj.identities.all())
        if _personal(obj).masked:
            pairs = identities_view(pairs, None)
        return [IdentityOut(kind=kind, value=value) for kind, value in pairs]

    @staticmethod
    def resolve_rfm(obj: Customer) -> RfmOut | None:
        analysis = prefetched_analysis(obj)
        if analysis is None:
            return None
        return RfmOut(
            recency_days=analysis.recency_days,
            frequency=analysis.frequency,
            monetary=format_amount(analysis.monetary, default_currency()),
            r_score=analysis.r_score,
            f_score=analysis.f_score,
            m_score=analysis.m_score,
            segment=analysis.rfm_segment,
            value_class=analysis.value_class,
        )

    @staticmethod
    def resolve_lifecycle_stage(obj: Customer) -> str | None:
        analysis = prefetched_analysis(obj)
        return None if analysis is None else analysis.lifecycle_stage

    @staticmethod
    def resolve_value_score(obj: Customer) -> float | None:
        analysis = prefetched_analysis(obj)
        return None if analysis is None else analysis.value_score

    @staticmethod
    def resolve_value_tier(obj: Customer) -> str | None:
        analysis = prefetched_analysis(obj)
        return None if analysis is None else analysis.value_tier

    @staticmethod
    def resolve_behaviour_segment(obj: Customer) -> str | None:
        analysis = prefetched_analysis(obj)
        return None if analysis is None else analysis.behaviour_segment_name

    @staticmethod
    def resolve_analysed_as_of(obj: Customer) -> date | None:
        analysis = prefetched_analysis(obj)
        return None if analysis is None else analysis.run.as_of

    @staticmethod
    def resolve_clv(obj: Customer) -> ClvOut | None:
        analysis = prefetched_analysis(obj)
        if analysis is None or (analysis.clv is None and analysis.p_alive is None):
            return None
        settings = prediction_settings(analysis.run)
        currency = default_currency()
        return ClvOut(
            value=None if analysis.clv is None else format_amount(analysis.clv, currency),
            months=settings.clv_months,
            currency=currency,
            p_alive=analysis.p_alive,
            expected_purchases=analysis.expected_purchases_90d,
            horizon_days=settings.horizon_days,
            next_purchase_expected_at=analysis.next_purchase_expected_at,
            next_purchase_earliest=analysis.next_purchase_earliest,
            next_purchase_latest=analysis.next_purchase_latest,
        )

    @staticmethod
    def resolve_churn(obj: Customer) -> ChurnOut | None:
        analysis = prefetched_analysis(obj)
        if analysis is None or analysis.churn_probability is None:
            return None
        at_risk = value_at_risk(analysis)
        return ChurnOut(
            probability=analysis.churn_probability,
            horizon_days=prediction_settings(analysis.run).horizon_days,
            value_at_risk=None if at_risk is None else format_amount(at_risk, default_currency()),
            reasons=[
                ChurnReasonOut(
                    code=reason.code, text=reason.text(get_language()), value=reason.value
                )
                for reason in churn_reasons(analysis)
            ],
        )


class CustomerPageOut(Schema):
    """One page of customers; ``count`` is the number of matches over all pages."""

    items: list[CustomerSummaryOut]
    count: int
    page: int
    page_size: int


@router.get("", response={200: CustomerPageOut, **_ERRORS}, summary="Search customers")
@requires_permission(ApiPermissionChoices.CUSTOMERS_READ)
def list_customers(
    request: HttpRequest,
    search: str = Query(
        "",
        description=(
            "Exact match on the external id, a full e-mail address, a phone number (any "
            "format) or a full name: personal data is encrypted, so parts do not match"
        ),
    ),
    page: int = Query(1, ge=1, le=MAX_PAGE_NUMBER, description="Page number, from 1"),
    page_size: int = Query(50, ge=1, le=MAX_PAGE_SIZE, description="Customers per page"),
) -> dict[str, Any]:
    """Customers matching ``search`` (all customers when empty), newest first, one page."""
    customers = search_customers(search)
    offset = (page - 1) * page_size
    items = list(with_order_stats(customers)[offset : offset + page_size])
    _attach_personal(request, items, LIST_PURPOSE)
    return {
        "items": items,
        "count": customers.count(),
        "page": page,
        "page_size": page_size,
    }


@router.get(
    "/{external_id}",
    response={200: CustomerOut, 404: ErrorOut, **_ERRORS},
    summary="Get a customer",
)
@requires_permission(ApiPermissionChoices.CUSTOMERS_READ)
def retrieve_customer(request: HttpRequest, external_id: str) -> Customer:
    """One customer by the shop's id; an id merged into another customer finds the survivor."""
    try:
        customer = get_customer(external_id)
    except Customer.DoesNotExist as error:
        message = f"No customer with external id {external_id!r}."
        raise ApiError(404, "not_found", message) from error
    found = with_latest_analysis(
        with_order_stats(Customer.objects.filter(pk=customer.pk)).prefetch_related("identities")
    ).get()
    _attach_personal(request, [found], DETAIL_PURPOSE)
    return found
