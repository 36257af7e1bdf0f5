"""Recommendations: a customer's list, a product's similar and bought-together products, and
the shop's feedback on what was shown (mounted at the API's root: the paths name customers,
products and recommendations)."""

from __future__ import annotations

import json
from typing import Literal

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status

from patron.api.auth import requires_permission, requires_scope
from patron.api.choices import ScopeChoices
from patron.api.errors import ApiError, ErrorOut, ValidationErrorOut
from patron.api.schemas import ApiDateTime, ShopDateTime
from patron.api.shortcuts import get_customer_or_404, invalid_request
from patron.catalog.models import Product
from patron.core.roles import ApiPermissionChoices
from patron.recommend.reasons import reason_text
from patron.recommend.selectors import (
    MAX_LIST_LENGTH,
    RelatedProduct,
    ServedProduct,
    bought_together,
    recommendations_for,
    similar_products,
)
from patron.recommend.services import FeedbackError, record_feedback

router = Router(tags=["recommendations"])

_ERRORS: dict[int, type[Schema]] = {
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    422: ValidationErrorOut,
}


class ProductOut(Schema):
    """A product, named by the shop's id."""

    product_id: str = Field(examples=["SKU-1001"])
    name: str
    category: str = Field(description="Category path, empty when none")


class RecommendationOut(Schema):
    """One recommended product with why it is there."""

    rank: int = Field(description="1 = best")
    product: ProductOut
    score: float = Field(description="The recommender's score (comparable within one list)")
    reason: str = Field(examples=["because_you_bought"])
    reason_text: str = Field(description="The reason in the request's language (Accept-Language)")
    reason_product: ProductOut | None = Field(description="The product the reason names")


class RecommendationsOut(Schema):
    """A customer's recommendations."""

    customer_id: str
    source: str = Field(
        description="precomputed (by the latest training), computed (now, for customers "
        "without a stored list), non_personal (the shop's popular products: the customer "
        "does not consent to personalisation) or none (no training has run)",
        examples=["precomputed"],
    )
    trained_at: ShopDateTime | None = Field(description="When the served training ran")
    recommendations: list[RecommendationOut]


class RelatedOut(Schema):
    """A product related to the one asked about."""

    rank: int
    product: ProductOut
    score: float = Field(description="Similarity (similar) or confidence (bought together)")
    reason: str = Field(examples=["often_bought_with"])
    reason_text: str
    support: float | None = Field(description="Share of orders with both (bought together)")
    confidence: float | None = Field(description="Share of the product's orders with this one")
    lift: float | None = Field(description="Confidence / this product's share of orders")


class RelatedListOut(Schema):
    """Products related to one product."""

    product_id: str
    products: list[RelatedOut]


class FeedbackIn(Schema):
    """What a customer did with a recommended product."""

    event_id: str = Field(
        min_length=1,
        max_length=128,
        description="The shop's id of the event: sent twice, kept once",
    )
    customer_id: str = Field(description="The customer's external id")
    product_id: str = Field(description="The product's external id")
    kind: Literal["shown", "clicked", "dismissed", "purchased"]
    occurred_at: ApiDateTime | None = Field(default=None, description="Default: now")


class FeedbackOut(Schema):
    """The recorded feedback event."""

    event_id: str
    customer_id: str
    product_id: str
    kind: str
    occurred_at: ShopDateTime
    created: bool = Field(description="False when this event id was already recorded")


def _product_or_404(product_id: str) -> Product:
    product = Product.objects.select_related("category").filter(external_id=product_id).first()
    if product is None:
        raise ApiError(404, "product_not_found", f"No product with id {product_id!r}.")
    return product


def _product_out(product: Product) -> ProductOut:
    return ProductOut(
        product_id=product.external_id,
        name=product.name,
        category=product.category.path if product.category_id and product.category else "",
    )


def _product_json(product: ServedProduct) -> dict[str, str]:
    """:class:`ProductOut` as JSON, without a pydantic model (the recommendation list)."""
    return {
        "product_id": product.external_id,
        "name": product.name,
        "category": product.category_path,
    }


def _related(product: Product, items: list[RelatedProduct]) -> RelatedListOut:
    return RelatedListOut(
        product_id=product.external_id,
        products=[
            RelatedOut(
                rank=item.rank,
                product=_product_out(item.product),
                score=item.score,
                reason=item.reason,
                reason_text=reason_text(item.reason, product.name),
                support=item.support,
                confidence=item.confidence,
                lift=item.lift,
            )
            for item in items
        ],
    )


@router.get(
    "/customers/{external_id}/recommendations",
    response={200: RecommendationsOut, **_ERRORS},
    summary="A customer's recommendations",
)
@requires_permission(ApiPermissionChoices.RECOMMENDATIONS_READ)
def customer_recommendations(
    request: HttpRequest, external_id: str, n: Query[int] = 10
) -> HttpResponse:
    """The customer's top ``n`` (1 to 100) products under the serving rules: active products
    only, nothing they bought (but in repeat-purchase categories), nothing they dismissed,
    diversified; each with a reason in the request's language."""
    if not 1 <= n <= MAX_LIST_LENGTH:
        raise invalid_request([("n", f"n must be between 1 and {MAX_LIST_LENGTH}")], "query")
    customer = get_customer_or_404(external_id)
    found = recommendations_for(customer, n)
    finished_at = None if found.run is None else found.run.finished_at
    # Worded once per reason and product: a list's reasons repeat (popular products, several
    # products because of one purchase).
    texts: dict[tuple[str, str | None], str] = {}
    for item in found.items:
        key = (item.reason, item.reason_product.name if item.reason_product else None)
        if key not in texts:
            texts[key] = reason_text(*key)
    # The body is written here as RecommendationsOut writes it (tests/api/test_recommend.py
    # validates it against the schema): building some thirty pydantic models and having
    # ninja validate them again took 1.4 ms of CPU, as much as reading the list.
    body = {
        "customer_id": customer.external_id,
        "source": found.source,
        # ShopDateTime: ISO 8601 in the shop's time zone with its offset.
        "trained_at": None if finished_at is None else timezone.localtime(finished_at).isoformat(),
        "recommendations": [
            {
                "rank": item.rank,
                "product": _product_json(item.product),
                "score": item.score,
                "reason": item.reason,
                "reason_text": texts[
                    (item.reason, item.reason_product.name if item.reason_product else None)
                ],
                "reason_product": (
                    None if item.reason_product is None else _product_json(item.reason_product)
                ),
            }
            for item in found.items
        ],
    }
    return HttpResponse(json.dumps(body), content_type="application/json; charset=utf-8")


@router.get(
    "/products/{product_id}/similar",
    response={200: RelatedListOut, **_ERRORS},
    summary="Products similar to a product",
)
@requires_permission(ApiPermissionChoices.RECOMMENDATIONS_READ)
def product_similar(request: HttpRequest, product_id: str, n: Query[int] = 10) -> RelatedListOut:
    """Active products bought or viewed by the same customers, most similar first."""
    if not 1 <= n <= MAX_LIST_LENGTH:
        raise invalid_request([("n", f"n must be between 1 and {MAX_LIST_LENGTH}")], "query")
    product = _product_or_404(product_id)
    return _related(product, similar_products(product, n))


@router.get(
    "/products/{product_id}/bought-together",
    response={200: RelatedListOut, **_ERRORS},
    summary="Products frequently bought together with a product",
)
@requires_permission(ApiPermissionChoices.RECOMMENDATIONS_READ)
def product_bought_together(
    request: HttpRequest, product_id: str, n: Query[int] = 10
) -> RelatedListOut:
    """Active products often in the same order: the rules ``product -> other`` mined by
    FP-growth in the latest training, strongest lift first."""
    if not 1 <= n <= MAX_LIST_LENGTH:
        raise invalid_request([("n", f"n must be between 1 and {MAX_LIST_LENGTH}")], "query")
    product = _product_or_404(product_id)
    return _related(product, bought_together(product, n))


@router.post(
    "/recommendations/feedback",
    response={200: FeedbackOut, 201: FeedbackOut, **_ERRORS},
    summary="Report what a customer did with a recommendation",
)
@requires_scope(ScopeChoices.INGEST)
@requires_permission(ApiPermissionChoices.RECOMMENDATIONS_FEEDBACK)
def recommendation_feedback(request: HttpRequest, body: FeedbackIn) -> Status[FeedbackOut]:
    """Record ``shown``, ``clicked``, ``dismissed`` or ``purchased`` (201); an event id
    already recorded is answered with the first record (200), never counted twice. Dismissed
    products are no longer recommended to the customer; purchases count in the next
    training."""
    customer = get_customer_or_404(body.customer_id)
    product = _product_or_404(body.product_id)
    try:
        feedback, created = record_feedback(
            body.event_id, customer, product, body.kind, body.occurred_at
        )
    except FeedbackError as error:
        raise invalid_request([(error.field, error.message)]) from error
    return Status(
        201 if created else 200,
        FeedbackOut(
            event_id=feedback.event_id,
            customer_id=feedback.customer.external_id,
            product_id=feedback.product.external_id,
            kind=feedback.kind,
            occurred_at=feedback.occurred_at,
            created=created,
        ),
    )
