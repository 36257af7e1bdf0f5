"""Reads of the recommendations: a customer's list with the serving rules, a product's
neighbours and bought-together products, the latest training run and its report.

Serving rules (applied to precomputed and computed lists alike): only active products;
products the customer bought are left out unless their category is a repeat-purchase one
(``RECOMMEND_REPEAT_PURCHASE_CATEGORIES``); products the customer dismissed are left out;
every item carries a reason. The catalogue has no stock figure, so stock is not checked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from patron.analytics.selectors import customer_rfm_segment
from patron.catalog.models import Category, Product
from patron.core.sql import Columns, columns, fetch_all, fetch_one
from patron.customers.models import Customer
from patron.engine.recommend import mmr_rerank
from patron.orders.choices import EventTypeChoices
from patron.orders.frames import (
    PURCHASED_STATUSES,
    interacted_product_ids,
)
from patron.orders.models import Order, OrderLine
from patron.privacy.choices import ConsentPurposeChoices
from patron.privacy.consent import may
from patron.recommend.choices import (
    FeedbackKindChoices,
    ReasonChoices,
    TrainingRunStatusChoices,
)
from patron.recommend.config import repeat_purchase_categories, serving_diversity
from patron.recommend.models import (
    BasketRule,
    PopularProduct,
    Recommendation,
    RecommendationFeedback,
    SimilarProduct,
    TrainingRun,
)
from patron.recommend.rules import repeat_purchase_test

#: How much each kind of past interaction counts when a list is computed at serving time
#: (the training's default weights).
HISTORY_WEIGHTS = {
    EventTypeChoices.PURCHASE: 1.0,
    EventTypeChoices.ADD_TO_CART: 0.3,
    EventTypeChoices.VIEW: 0.1,
}
MAX_LIST_LENGTH = 100


@dataclass(frozen=True)
class ServedProduct:
    """What a recommendation list shows of a product: its primary key, the shop's id, its
    name and its category's path ("" without a category).

    Not a model instance: a list of ten items with their reason products built forty
    instances (products and categories, with prices, attributes JSON and times), a third of
    a stored list's CPU in the server."""

    pk: int
    external_id: str
    name: str
    category_path: str


@dataclass(frozen=True)
class RecommendedProduct:
    """One recommended product at ``rank`` (1 = best) with its reason code and the product
    the reason names (None for the popularity reasons)."""

    rank: int
    product: ServedProduct
    score: float
    reason: str
    reason_product: ServedProduct | None


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


def _serving_run() -> TrainingRun | None:
    """:func:`latest_training_run` for serving: in SQL of its own (every recommendation
    request starts here) and without the report, parameters and evaluation, large JSON that
    serving does not read (they stay deferred on the instance)."""
    run = _run_columns()
    sql, params = _serving_run_sql()
    row = fetch_one(sql, params)
    return None if row is None else run.instance(row)


def _run_columns() -> Columns[TrainingRun]:
    """What serving reads of a training run (alias ``t``): its id and when it finished (the
    stored list's statement repeats them on every row, and each time read costs a parse)."""
    return columns(TrainingRun, "t", only=("status", "finished_at"))


def _serving_run_sql() -> tuple[str, list[object]]:
    """The SELECT of :func:`_serving_run` with its parameters (the run's columns of
    :func:`_run_columns`), also a sub-query of a stored list's statement."""
    run = _run_columns()
    return (
        f"SELECT {run.sql} FROM {run.table} WHERE {run.column('status')} = %s "
        f"ORDER BY {run.column('started_at')} DESC, {run.column('id')} DESC LIMIT 1",
        [TrainingRunStatusChoices.SUCCEEDED],
    )


def training_runs(limit: int = 20) -> list[TrainingRun]:
    """The latest training runs, failed ones included, newest first."""
    return list(TrainingRun.objects.order_by("-started_at", "-id")[:limit])


def excluded_product_ids(customer: Customer) -> set[int]:
    """What the serving rules keep from the customer: bought products (but those of
    repeat-purchase categories) and dismissed ones. One statement of SQL."""
    line, order = columns(OrderLine, "ol"), columns(Order, "o")
    product, category = columns(Product, "p"), columns(Category, "pc")
    feedback = columns(RecommendationFeedback, "f")
    repeat_test, repeat_params = repeat_purchase_test(category)
    statuses = ", ".join(["%s"] * len(PURCHASED_STATUSES))
    not_repeat = f"AND NOT {repeat_test} " if repeat_test else ""
    rows = fetch_all(
        f"SELECT {line.column('product_id')} FROM {line.table} "
        f"JOIN {order.table} ON {order.column('id')} = {line.column('order_id')} "
        f"JOIN {product.table} ON {product.column('id')} = {line.column('product_id')} "
        f"LEFT JOIN {category.table} ON {category.column('id')} = {product.column('category_id')} "
        f"WHERE {order.column('customer_id')} = %s AND {order.column('status')} IN ({statuses}) "
        f"{not_repeat}"
        f"UNION SELECT {feedback.column('product_id')} FROM {feedback.table} "
        f"WHERE {feedback.column('customer_id')} = %s AND {feedback.column('kind')} = %s",
        [
            customer.pk,
            *PURCHASED_STATUSES,
            *repeat_params,
            customer.pk,
            FeedbackKindChoices.DISMISSED,
        ],
    )
    return {row[0] for row in rows}


def recommendations_for(customer: Customer, n: int = 10) -> RecommendationList:
    """The customer's top ``n`` recommendations under the serving rules (module docstring).

    A customer who does not consent to personalisation gets the shop's popular products
    only (:func:`non_personal`, source ``non_personal``): nothing of theirs is looked at.

    Customers with a precomputed list (training stores one for every customer with a
    history) get it, filtered again: a product may have been bought, dismissed or
    deactivated since the run. Lists shorter than ``n`` and customers without one (no
    history at the run) are completed at serving time: the stored neighbours of what they
    bought, put in the cart or viewed (weighted 1, 0.3, 0.1), diversified by maximal marginal
    relevance, then the products popular in their RFM segment and in the shop.
    """
    n = max(1, min(n, MAX_LIST_LENGTH))
    if not may(customer, ConsentPurposeChoices.PERSONALISATION):
        run = _serving_run()
        if run is None:
            return RecommendationList(run=None, source="none", items=[])
        return RecommendationList(run=run, source="non_personal", items=non_personal(run, n))
    # The stored list's statement reads the serving run too.
    run, items = _precomputed(customer, n)
    if run is None:
        return RecommendationList(run=None, source="none", items=[])
    source = "precomputed" if items else "computed"
    if len(items) < n:
        items.extend(_computed(run, customer, n - len(items), {item.product.pk for item in items}))
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


def _precomputed(customer: Customer, n: int) -> tuple[TrainingRun | None, list[RecommendedProduct]]:
    """The serving run (None before the first) and the first ``n`` items of the customer's
    stored list in it that pass the serving rules now, with their products and reason
    products.

    Two statements of SQL: the run with the list's rows under the serving rules (a LEFT
    JOIN: the run comes back for a customer without a stored list too), then (when there are
    rows) the products with their categories. One statement joining them all cost PostgreSQL
    0.69 ms, most of it planning six tables; the first takes 0.24-0.32 ms and the second
    0.11 ms."""
    run = _run_columns()
    run_sql, run_params = _serving_run_sql()
    recommendation = columns(Recommendation, "r")
    product, category = _served_columns("p", "pc")
    rules, rule_params = _serving_rules_sql(recommendation.column("product_id"), category, customer)
    # The category only for the repeat-purchase test, when there is one.
    category_join = (
        f" LEFT JOIN {category.table} ON {category.column('id')} = {product.column('category_id')}"
        if repeat_purchase_categories()
        else ""
    )
    rows = fetch_all(
        f"SELECT {run.sql}, {recommendation.column('score')}, {recommendation.column('reason')}, "
        f"{recommendation.column('product_id')}, {recommendation.column('reason_product_id')} "
        f"FROM ({run_sql}) t "
        f"LEFT JOIN ({recommendation.table} "
        f"JOIN {product.table} ON {product.column('id')} = {recommendation.column('product_id')}"
        f"{category_join}) "
        f"ON {recommendation.column('run_id')} = {run.column('id')} "
        f"AND {recommendation.column('customer_id')} = %s "
        f"AND {product.column('is_active')} = %s AND {rules} "
        f"ORDER BY {recommendation.column('rank')} LIMIT %s",
        [*run_params, customer.pk, True, *rule_params, n],
    )
    if not rows:
        return None, []
    served_run = run.instance(rows[0])
    offset = len(run)
    # A customer without a stored list: the run alone, on one row of nulls.
    listed = [row for row in rows if row[offset + 2] is not None]
    products = _served_products(
        [key for row in listed for key in row[offset + 2 : offset + 4] if key is not None]
    )
    items = []
    for row in listed:
        score, reason, product_id, reason_product_id = row[offset : offset + 4]
        recommended = products.get(product_id)
        if recommended is None:
            continue  # deleted since the first statement
        items.append(
            RecommendedProduct(
                rank=0,
                product=recommended,
                score=score,
                reason=reason,
                reason_product=products.get(reason_product_id),
            )
        )
    return served_run, items


def _serving_rules_sql(
    product_id: str, category: Columns[Category], customer: Customer
) -> tuple[str, list[object]]:
    """SQL that is true when the product ``product_id`` (its category joined as
    ``category``) may be recommended to ``customer`` under the personal serving rules: not
    dismissed, not bought unless of a repeat-purchase category; with its parameters."""
    line, order = columns(OrderLine, "ol"), columns(Order, "o")
    feedback = columns(RecommendationFeedback, "f")
    repeat_test, repeat_params = repeat_purchase_test(category)
    if repeat_test:
        repeat_test += " OR "
    statuses = ", ".join(["%s"] * len(PURCHASED_STATUSES))
    return (
        # NOT IN over the customer's own few rows (read once, through the indexes by
        # customer), not NOT EXISTS, which PostgreSQL runs per item over all the product's
        # order lines.
        f"{product_id} NOT IN (SELECT {feedback.column('product_id')} "
        f"FROM {feedback.table} WHERE {feedback.column('customer_id')} = %s "
        f"AND {feedback.column('kind')} = %s) "
        f"AND ({repeat_test}{product_id} NOT IN "
        f"(SELECT {line.column('product_id')} FROM {order.table} "
        f"JOIN {line.table} ON {line.column('order_id')} = {order.column('id')} "
        f"WHERE {order.column('customer_id')} = %s AND {order.column('status')} IN ({statuses}) "
        f"AND {line.column('product_id')} IS NOT NULL))",
        [
            customer.pk,
            FeedbackKindChoices.DISMISSED,
            *repeat_params,
            customer.pk,
            *PURCHASED_STATUSES,
        ],
    )


#: The columns :func:`_served_sql` reads per product.
SERVED_WIDTH = 4


def _served_columns(
    product_alias: str, category_alias: str
) -> tuple[Columns[Product], Columns[Category]]:
    """The product and category tables under these aliases, for :func:`_served_sql`."""
    return columns(Product, product_alias, only=()), columns(Category, category_alias, only=())


def _served_sql(product: Columns[Product], category: Columns[Category]) -> str:
    """The :data:`SERVED_WIDTH` columns of a :class:`ServedProduct` (its category joined
    as ``category``): primary key, the shop's id, name, category path."""
    return (
        f"{product.column('id')}, {product.column('external_id')}, {product.column('name')}, "
        f"{category.column('path')}"
    )


def _served_product(row: Sequence[Any], offset: int) -> ServedProduct | None:
    """The :class:`ServedProduct` read by :func:`_served_sql` at ``offset`` of ``row``;
    None when its primary key is null (the missing side of a LEFT JOIN)."""
    pk, external_id, name, path = row[offset : offset + SERVED_WIDTH]
    if pk is None:
        return None
    return ServedProduct(
        pk=int(pk),
        external_id=str(external_id),
        name=str(name),
        category_path="" if path is None else str(path),
    )


def _computed(
    run: TrainingRun, customer: Customer, n: int, taken: set[int]
) -> list[RecommendedProduct]:
    """Up to ``n`` products (not in ``taken``) from the stored neighbours of the customer's
    history, then the popular ones of their segment and of the shop."""
    history = interacted_product_ids(customer.pk)
    items: list[RecommendedProduct] = []
    dismissed_by: Customer | None = None
    if history:
        excluded = excluded_product_ids(customer) | taken
        items = _neighbours_of_history(run, dict(history), n, excluded)
        taken = excluded | {item.product.pk for item in items}
    else:
        # No history: nothing bought, so the serving rules leave out only what the customer
        # dismissed, which the popular products' statement reads itself.
        dismissed_by = customer
    if len(items) < n:
        items.extend(_popular(run, customer, n - len(items), taken, dismissed_by))
    return items


def _neighbours_of_history(
    run: TrainingRun, kinds: dict[int, str], n: int, excluded: set[int]
) -> list[RecommendedProduct]:
    """The best ``n`` stored neighbours (not ``excluded``) of the history ``kinds``
    (product -> interaction kind), diversified, each with the history product that
    contributed most as its reason."""
    scores: dict[int, float] = {}
    best_source: dict[int, tuple[float, int]] = {}
    neighbours = _similarities(run, list(kinds))
    for source, product, similarity in neighbours:
        if product in excluded:
            continue
        contribution = HISTORY_WEIGHTS[EventTypeChoices(kinds[source])] * similarity
        scores[product] = scores.get(product, 0.0) + contribution
        if contribution > best_source.get(product, (-1.0, 0))[0]:
            best_source[product] = (contribution, source)
    candidates = sorted(scores, key=lambda product: (-scores[product], product))
    chosen = _diversify(run, candidates[: max(4 * n, 50)], scores, n)
    products = _served_products([*chosen, *(best_source[p][1] for p in chosen)])
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
    return items


def _similarities(
    run: TrainingRun, products: list[int], *, among: bool = False
) -> list[tuple[int, int, float]]:
    """The run's stored ``(product, similar active product, score)`` of ``products``; with
    ``among``, only the pairs within ``products``. One statement of SQL."""
    if not products:
        return []
    similar, product = columns(SimilarProduct, "s"), columns(Product, "p", only=("is_active",))
    ids = ", ".join(["%s"] * len(products))
    among_filter = f"AND {similar.column('similar_product_id')} IN ({ids}) " if among else ""
    rows = fetch_all(
        f"SELECT {similar.column('product_id')}, {similar.column('similar_product_id')}, "
        f"{similar.column('score')} FROM {similar.table} "
        f"JOIN {product.table} ON {product.column('id')} = {similar.column('similar_product_id')} "
        f"WHERE {similar.column('run_id')} = %s AND {similar.column('product_id')} IN ({ids}) "
        f"{among_filter}AND {product.column('is_active')} = %s",
        [run.pk, *products, *(products if among else []), True],
    )
    return [(row[0], row[1], row[2]) for row in rows]


def _served_products(product_ids: list[int]) -> dict[int, ServedProduct]:
    """The products by primary key, as served. One statement of SQL."""
    if not product_ids:
        return {}
    product, category = _served_columns("p", "pc")
    unique = sorted(set(product_ids))
    rows = fetch_all(
        f"SELECT {_served_sql(product, category)} FROM {product.table} "
        f"LEFT JOIN {category.table} ON {category.column('id')} = {product.column('category_id')} "
        f"WHERE {product.column('id')} IN ({', '.join(['%s'] * len(unique))})",
        unique,
    )
    found: dict[int, ServedProduct] = {}
    for row in rows:
        item = _served_product(row, 0)
        assert item is not None
        found[item.pk] = item
    return found


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
    pairs = _similarities(run, candidates, among=True)
    for product, other, score in pairs:
        similarity[position[product], position[other]] = score
        similarity[position[other], position[product]] = max(
            score, similarity[position[other], position[product]]
        )
    relevance = np.array([scores[product] for product in candidates])
    order = mmr_rerank(relevance, similarity, n, weight)
    return [candidates[index] for index in order.tolist()]


def _popular(
    run: TrainingRun,
    customer: Customer,
    n: int,
    excluded: set[int],
    dismissed_by: Customer | None = None,
) -> list[RecommendedProduct]:
    """The popular products of the customer's RFM segment, then of the shop, leaving out
    ``excluded`` and the products ``dismissed_by`` dismissed."""
    own_segment = customer_rfm_segment(customer.pk)
    items: list[RecommendedProduct] = []
    taken = set(excluded)
    for segment in [*([own_segment] if own_segment is not None else []), ""]:
        reason = ReasonChoices.POPULAR_IN_SEGMENT if segment else ReasonChoices.POPULAR
        for product, score in _popular_rows(run, segment, n - len(items), taken, dismissed_by):
            items.append(
                RecommendedProduct(
                    rank=0, product=product, score=score, reason=reason, reason_product=None
                )
            )
            taken.add(product.pk)
        if len(items) >= n:
            break
    return items


def _popular_rows(
    run: TrainingRun,
    segment: str,
    n: int,
    excluded: set[int],
    dismissed_by: Customer | None = None,
) -> list[tuple[ServedProduct, float]]:
    """The ``n`` most popular active products of ``segment`` ("": the whole shop) in the
    run, leaving out ``excluded`` and what ``dismissed_by`` dismissed, with their scores."""
    popular = columns(PopularProduct, "pp")
    product, category = _served_columns("p", "pc")
    feedback = columns(RecommendationFeedback, "f")
    dismissed, dismissed_params = "", []
    if dismissed_by is not None:
        # NOT IN the customer's own few dismissals. (All the serving rules here, purchases
        # too, cut the planner's estimate so far that it hashed the whole catalogue:
        # 0.52 ms of PostgreSQL CPU; this, 0.26 ms.)
        dismissed = (
            f"AND {popular.column('product_id')} NOT IN (SELECT {feedback.column('product_id')} "
            f"FROM {feedback.table} WHERE {feedback.column('customer_id')} = %s "
            f"AND {feedback.column('kind')} = %s) "
        )
        dismissed_params = [dismissed_by.pk, FeedbackKindChoices.DISMISSED]
    # The other exclusions are few (the list so far, a customer's purchases and dismissals):
    # filtered here rather than sent as a list, reading a few more rows than asked for.
    rows = fetch_all(
        f"SELECT {popular.column('score')}, {_served_sql(product, category)} "
        f"FROM {popular.table} "
        f"JOIN {product.table} ON {product.column('id')} = {popular.column('product_id')} "
        f"LEFT JOIN {category.table} ON {category.column('id')} = {product.column('category_id')} "
        f"WHERE {popular.column('run_id')} = %s AND {popular.column('segment')} = %s "
        f"AND {product.column('is_active')} = %s {dismissed}"
        f"ORDER BY {popular.column('rank')} LIMIT %s",
        [run.pk, segment, True, *dismissed_params, n + len(excluded)],
    )
    found: list[tuple[ServedProduct, float]] = []
    for row in rows:
        item = _served_product(row, 1)
        assert item is not None
        if item.pk in excluded:
            continue
        found.append((item, row[0]))
        if len(found) >= n:
            break
    return found


def non_personal(run: TrainingRun, n: int) -> list[RecommendedProduct]:
    """The shop's ``n`` most popular active products, ranked from 1, reason ``popular``: a
    list that uses nothing of the customer (no history, segment or feedback)."""
    return [
        RecommendedProduct(
            rank=rank,
            product=product,
            score=score,
            reason=ReasonChoices.POPULAR,
            reason_product=None,
        )
        for rank, (product, score) in enumerate(_popular_rows(run, "", n, set()), start=1)
    ]


def similar_products(product: Product, n: int = 10) -> list[RelatedProduct]:
    """The ``n`` active products most similar to ``product`` in the latest run (customers who
    bought or viewed one also did the other), best first; empty before the first run."""
    run = _serving_run()
    if run is None:
        return []
    rows = (
        SimilarProduct.objects.filter(run=run, product=product, similar_product__is_active=True)
        .select_related("similar_product__category")
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
    run = _serving_run()
    if run is None:
        return []
    rows = (
        BasketRule.objects.filter(run=run, antecedent=product, consequent__is_active=True)
        .select_related("consequent__category")
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
