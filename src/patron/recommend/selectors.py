"""Reads of the recommendations: a customer's list with the serving rules, a product's
neighbours and bought-together products, the latest training run and its report.

Serving rules (applied to precomputed and computed lists alike): only active products;
products the customer bought are left out unless their category is a repeat-purchase one
(``RECOMMEND_REPEAT_PURCHASE_CATEGORIES``); products the customer dismissed are left out;
every item carries a reason. The catalogue has no stock figure, so stock is not checked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from patron.analytics.selectors import customer_analysis
from patron.catalog.models import Product
from patron.customers.models import Customer
from patron.engine.recommend import mmr_rerank
from patron.orders.choices import EventTypeChoices
from patron.orders.frames import interacted_product_ids, purchased_product_ids
from patron.privacy.choices import ConsentPurposeChoices
from patron.privacy.consent import may
from patron.recommend.choices import (
    FeedbackKindChoices,
    ReasonChoices,
    TrainingRunStatusChoices,
)
from patron.recommend.config import serving_diversity
from patron.recommend.models import (
    BasketRule,
    PopularProduct,
    Recommendation,
    RecommendationFeedback,
    SimilarProduct,
    TrainingRun,
)
from patron.recommend.services import repeat_purchase_products

#: How much each kind of past interaction counts when a list is computed at serving time
#: (the training's default weights).
HISTORY_WEIGHTS = {
    EventTypeChoices.PURCHASE: 1.0,
    EventTypeChoices.ADD_TO_CART: 0.3,
    EventTypeChoices.VIEW: 0.1,
}
MAX_LIST_LENGTH = 100


@dataclass(frozen=True)
class RecommendedProduct:
    """One recommended product at ``rank`` (1 = best) with its reason code and the product
    the reason names (None for the popularity reasons)."""

    rank: int
    product: Product
    score: float
    reason: str
    reason_product: Product | None


@dataclass(frozen=True)
class RecommendationList:
    """A customer's recommendations; ``source`` says how they were made: ``precomputed`` (by
    the training run), ``computed`` (now, from the stored neighbours and popular products),
    ``non_personal`` (the shop's popular products: no consent to personalisation) or
    ``none`` (no training run has succeeded yet)."""

    run: TrainingRun | None
    source: str
    items: list[RecommendedProduct]


@dataclass(frozen=True)
class RelatedProduct:
    """A product related to another: a neighbour (``score`` = similarity) or a
    bought-together rule's consequent (with its support, confidence and lift)."""

    rank: int
    product: Product
    score: float
    reason: str
    support: float | None = None
    confidence: float | None = None
    lift: float | None = None


def latest_training_run() -> TrainingRun | None:
    """The newest successful training run, or None."""
    return (
        TrainingRun.objects.filter(status=TrainingRunStatusChoices.SUCCEEDED)
        .order_by("-started_at", "-id")
        .first()
    )


def training_runs(limit: int = 20) -> list[TrainingRun]:
    """The latest training runs, failed ones included, newest first."""
    return list(TrainingRun.objects.order_by("-started_at", "-id")[:limit])


def dismissed_product_ids(customer: Customer) -> set[int]:
    """Products the customer dismissed (feedback ``dismissed``)."""
    return set(
        RecommendationFeedback.objects.filter(
            customer=customer, kind=FeedbackKindChoices.DISMISSED
        ).values_list("product_id", flat=True)
    )


def excluded_product_ids(customer: Customer) -> set[int]:
    """What the serving rules keep from the customer: bought products (but those of
    repeat-purchase categories) and dismissed ones."""
    bought = purchased_product_ids(customer.pk) - repeat_purchase_products()
    return bought | dismissed_product_ids(customer)


def recommendations_for(customer: Customer, n: int = 10) -> RecommendationList:
    """The customer's top ``n`` recommendations under the serving rules (module docstring).

    A customer who does not consent to personalisation gets the shop's popular products
    only (:func:`non_personal`, source ``non_personal``): nothing of theirs is looked at.

    Customers with a precomputed list get it (filtered again: a product may have been
    bought, dismissed or deactivated since the run); lists shorter than ``n`` and customers
    without one are completed at serving time: the stored neighbours of what they bought,
    put in the cart or viewed (weighted 1, 0.3, 0.1), then the products popular in their RFM
    segment and in the shop, diversified by maximal marginal relevance.
    """
    n = max(1, min(n, MAX_LIST_LENGTH))
    run = latest_training_run()
    if run is None:
        return RecommendationList(run=None, source="none", items=[])
    if not may(customer, ConsentPurposeChoices.PERSONALISATION):
        return RecommendationList(run=run, source="non_personal", items=non_personal(run, n))
    excluded = excluded_product_ids(customer)
    stored = (
        Recommendation.objects.filter(run=run, customer=customer, product__is_active=True)
        .exclude(product_id__in=excluded)
        .select_related("product__category", "reason_product")
        .order_by("rank")
    )
    items = [
        RecommendedProduct(
            rank=0,
            product=row.product,
            score=row.score,
            reason=row.reason,
            reason_product=row.reason_product,
        )
        for row in stored[:n]
    ]
    source = "precomputed" if items else "computed"
    if len(items) < n:
        taken = excluded | {item.product.pk for item in items}
        items.extend(_computed(run, customer, n - len(items), taken))
    ranked = [
        RecommendedProduct(
            rank=rank,
            product=item.product,
            score=item.score,
            reason=item.reason,
            reason_product=item.reason_product,
        )
        for rank, item in enumerate(items, start=1)
    ]
    return RecommendationList(run=run, source=source, items=ranked)


def _computed(
    run: TrainingRun, customer: Customer, n: int, excluded: set[int]
) -> list[RecommendedProduct]:
    """Up to ``n`` products from the stored neighbours of the customer's history, then the
    popular ones of their segment and of the shop."""
    history = interacted_product_ids(customer.pk)
    kinds = dict(history)
    scores: dict[int, float] = {}
    best_source: dict[int, tuple[float, int]] = {}
    neighbours = SimilarProduct.objects.filter(
        run=run, product_id__in=list(kinds), similar_product__is_active=True
    ).values_list("product_id", "similar_product_id", "score")
    for source, product, similarity in neighbours:
        if product in excluded:
            continue
        contribution = HISTORY_WEIGHTS[EventTypeChoices(kinds[source])] * similarity
        scores[product] = scores.get(product, 0.0) + contribution
        if contribution > best_source.get(product, (-1.0, 0))[0]:
            best_source[product] = (contribution, source)
    candidates = sorted(scores, key=lambda product: (-scores[product], product))
    chosen = _diversify(run, candidates[: max(4 * n, 50)], scores, n)
    products = Product.objects.select_related("category").in_bulk(
        [*chosen, *(best_source[p][1] for p in chosen)]
    )
    items = []
    for product in chosen:
        source = best_source[product][1]
        bought = kinds[source] == EventTypeChoices.PURCHASE
        items.append(
            RecommendedProduct(
                rank=0,
                product=products[product],
                score=scores[product],
                reason=(
                    ReasonChoices.BECAUSE_YOU_BOUGHT if bought else ReasonChoices.OFTEN_BOUGHT_WITH
                ),
                reason_product=products[source],
            )
        )
    if len(items) < n:
        taken = excluded | set(chosen)
        items.extend(_popular(run, customer, n - len(items), taken))
    return items


def _diversify(
    run: TrainingRun, candidates: list[int], scores: dict[int, float], n: int
) -> list[int]:
    """The best ``n`` of ``candidates`` re-ranked by maximal marginal relevance over the
    stored similarities (Carbonell & Goldstein 1998)."""
    weight = serving_diversity()
    if weight == 0 or len(candidates) <= 1:
        return candidates[:n]
    position = {product: index for index, product in enumerate(candidates)}
    similarity = np.eye(len(candidates))
    pairs = SimilarProduct.objects.filter(
        run=run, product_id__in=candidates, similar_product_id__in=candidates
    ).values_list("product_id", "similar_product_id", "score")
    for product, other, score in pairs:
        similarity[position[product], position[other]] = score
        similarity[position[other], position[product]] = max(
            score, similarity[position[other], position[product]]
        )
    relevance = np.array([scores[product] for product in candidates])
    order = mmr_rerank(relevance, similarity, n, weight)
    return [candidates[index] for index in order.tolist()]


def _popular(
    run: TrainingRun, customer: Customer, n: int, excluded: set[int]
) -> list[RecommendedProduct]:
    """The popular products of the customer's RFM segment, then of the shop."""
    analysis = customer_analysis(customer)
    segments = [analysis.rfm_segment] if analysis is not None else []
    items: list[RecommendedProduct] = []
    taken = set(excluded)
    for segment in [*segments, ""]:
        rows = (
            PopularProduct.objects.filter(run=run, segment=segment, product__is_active=True)
            .exclude(product_id__in=taken)
            .select_related("product__category")
            .order_by("rank")[: n - len(items)]
        )
        reason = ReasonChoices.POPULAR_IN_SEGMENT if segment else ReasonChoices.POPULAR
        for row in rows:
            items.append(
                RecommendedProduct(
                    rank=0, product=row.product, score=row.score, reason=reason, reason_product=None
                )
            )
            taken.add(row.product_id)
        if len(items) >= n:
            break
    return items


def non_personal(run: TrainingRun, n: int) -> list[RecommendedProduct]:
    """The shop's ``n`` most popular active products, ranked from 1, reason ``popular``: a
    list that uses nothing of the customer (no history, segment or feedback)."""
    rows = (
        PopularProduct.objects.filter(run=run, segment="", product__is_active=True)
        .select_related("product__category")
        .order_by("rank")[:n]
    )
    return [
        RecommendedProduct(
            rank=rank,
            product=row.product,
            score=row.score,
            reason=ReasonChoices.POPULAR,
            reason_product=None,
        )
        for rank, row in enumerate(rows, start=1)
    ]


def similar_products(product: Product, n: int = 10) -> list[RelatedProduct]:
    """The ``n`` active products most similar to ``product`` in the latest run (customers who
    bought or viewed one also did the other), best first; empty before the first run."""
    run = latest_training_run()
    if run is None:
        return []
    rows = (
        SimilarProduct.objects.filter(run=run, product=product, similar_product__is_active=True)
        .select_related("similar_product")
        .order_by("rank")[: max(1, min(n, MAX_LIST_LENGTH))]
    )
    return [
        RelatedProduct(
            rank=rank,
            product=row.similar_product,
            score=row.score,
            reason=ReasonChoices.OFTEN_BOUGHT_WITH,
        )
        for rank, row in enumerate(rows, start=1)
    ]


def bought_together(product: Product, n: int = 10) -> list[RelatedProduct]:
    """The active products most often bought in the same order as ``product``: the latest
    run's rules ``product -> other`` by lift, then confidence."""
    run = latest_training_run()
    if run is None:
        return []
    rows = (
        BasketRule.objects.filter(run=run, antecedent=product, consequent__is_active=True)
        .select_related("consequent")
        .order_by("-lift", "-confidence", "consequent_id")[: max(1, min(n, MAX_LIST_LENGTH))]
    )
    return [
        RelatedProduct(
            rank=rank,
            product=row.consequent,
            score=row.confidence,
            reason=ReasonChoices.OFTEN_BOUGHT_WITH,
            support=row.support,
            confidence=row.confidence,
            lift=row.lift,
        )
        for rank, row in enumerate(rows, start=1)
    ]


def strongest_rules(run: TrainingRun, limit: int = 20) -> list[BasketRule]:
    """The run's bought-together rules with the highest lift (then confidence), with both
    products."""
    return list(
        BasketRule.objects.filter(run=run)
        .select_related("antecedent", "consequent")
        .order_by("-lift", "-confidence", "antecedent_id", "consequent_id")[:limit]
    )


def products_by_external_id(external_ids: Iterable[str]) -> dict[str, Product]:
    """Products by the shop's id (unknown ids are left out)."""
    return {
        product.external_id: product
        for product in Product.objects.filter(external_id__in=list(external_ids))
    }
