"""Train the recommenders on the store's data and keep what they found (``patron recommend
train``), and record the shop's feedback on recommendations.

A training run reads the purchases (paid, shipped or delivered lines less refunds; see
:func:`patron.orders.frames.purchase_lines_frame`), the add-to-cart and view events and the
feedback (``purchased`` counts as a purchase; a ``dismissed`` product's views and cart adds
no longer count), weighs them with a half-life, evaluates every recommender on a temporal
split (the report is kept with the run), fits the served recommender (the hybrid) on
everything and writes, in one transaction, the lists of every customer with a history (or of
those active in the last ``active_days``), every product's neighbours, the bought-together
rules of the orders' baskets (FP-growth) and the popular products per RFM segment. Older
runs' rows are then deleted; their run records and reports stay.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Hashable, Mapping
from dataclasses import asdict
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from django.db import transaction
from django.utils import timezone

from patron.analytics.choices import SegmentationChoices
from patron.analytics.selectors import latest_run, segment_codes, segment_customers
from patron.catalog.models import Category, Product
from patron.core.bulk import insert_frame, refresh_statistics
from patron.customers.models import Customer
from patron.engine.frames import EngineInputError
from patron.engine.recommend import (
    ALSRecommender,
    EASERecommender,
    HybridRecommender,
    Interactions,
    InteractionWeighting,
    ItemKNNRecommender,
    PopularityRecommender,
    Recommender,
    association_rules,
    build_interactions,
    day_of,
    default_components,
    evaluate_recommenders,
    fpgrowth,
    holdout,
    mmr_rerank,
)
from patron.orders.frames import behaviour_events_frame, latest_activity_at, purchase_lines_frame
from patron.privacy.choices import ConsentPurposeChoices
from patron.privacy.consent import consent_set
from patron.recommend.choices import FeedbackKindChoices, TrainingRunStatusChoices
from patron.recommend.config import TrainingSettings, repeat_purchase_categories
from patron.recommend.models import (
    BasketRule,
    PopularProduct,
    Recommendation,
    RecommendationFeedback,
    SimilarProduct,
    TrainingRun,
)
from patron.recommend.rules import repeat_purchase_products

#: The recommender the API serves (the best on Online Retail, docs/recommendations.md).
SERVED_RECOMMENDER = "hybrid"
#: Products whose neighbours are computed together (a dense block of products x catalogue).
NEIGHBOUR_BATCH = 1_000
#: Catalogues up to this size get their item-item cosine computed once for the diversity.
DENSE_SIMILARITY_ITEMS = 4_000


class RecommendError(RuntimeError):
    """Training could not run (no purchases yet, refused settings ...); says why."""


class FeedbackError(ValueError):
    """A feedback event was refused; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def weighting_of(training: TrainingSettings) -> InteractionWeighting:
    """The interaction weighting of a run's settings."""
    return InteractionWeighting(
        kind_weights={
            "purchase": training.purchase_weight,
            "add_to_cart": training.cart_weight,
            "view": training.view_weight,
        },
        half_life_days=training.half_life_days,
    )


def served_recommender(n_items: int) -> HybridRecommender:
    """The hybrid with the engine's default components; EASE (dense) only where the catalogue
    fits its limit."""
    components = [
        (name, model)
        for name, model in default_components()
        if not (isinstance(model, EASERecommender) and n_items > model.max_items)
    ]
    return HybridRecommender(components=components)


def evaluation_lineup(n_items: int) -> dict[str, Recommender]:
    """The recommenders every run evaluates: the baselines, then ours."""
    lineup: dict[str, Recommender] = {
        "popularity": PopularityRecommender(),
        "als_default": ALSRecommender(random_state=0),
        "trending": PopularityRecommender(measure="weight"),
        "item_knn": ItemKNNRecommender(k=100),
    }
    if n_items <= EASERecommender().max_items:
        lineup["ease"] = EASERecommender()
    lineup[SERVED_RECOMMENDER] = served_recommender(n_items)
    return lineup


def read_events(until: dt.datetime) -> pl.DataFrame:
    """The store's interactions before ``until``: ``customer_id, product_id, occurred_at
    (UTC, naive), event_type, quantity`` plus ``order_id`` on purchases, of the customers who
    consent to personalisation (:func:`without_unconsented`).

    Feedback ``purchased`` adds a purchase (unless the same product is in an order of that
    customer anyway); a ``dismissed`` product's views and cart adds are dropped.
    """
    purchases = purchase_lines_frame(until).with_columns(pl.lit("purchase").alias("event_type"))
    behaviour = behaviour_events_frame(until=until).with_columns(
        pl.lit(1, dtype=pl.Int64).alias("quantity"), pl.lit(None, dtype=pl.Int64).alias("order_id")
    )
    feedback = list(
        RecommendationFeedback.objects.filter(
            kind__in=(FeedbackKindChoices.PURCHASED, FeedbackKindChoices.DISMISSED),
            occurred_at__lt=until,
        ).values_list("customer_id", "product_id", "kind", "occurred_at")
    )
    bought = {(c, p) for c, p in purchases.select("customer_id", "product_id").iter_rows()}
    dismissed = [(c, p) for c, p, kind, _ in feedback if kind == FeedbackKindChoices.DISMISSED]
    reported = [
        (c, p, at.astimezone(dt.UTC).replace(tzinfo=None))
        for c, p, kind, at in feedback
        if kind == FeedbackKindChoices.PURCHASED and (c, p) not in bought
    ]
    if dismissed:
        drop = pl.DataFrame(
            dismissed, schema={"customer_id": pl.Int64, "product_id": pl.Int64}, orient="row"
        )
        behaviour = behaviour.join(drop, on=["customer_id", "product_id"], how="anti")
    columns = ["customer_id", "product_id", "occurred_at", "event_type", "quantity", "order_id"]
    frames = [purchases.select(columns), behaviour.select(columns)]
    if reported:
        frames.append(
            pl.DataFrame(
                reported,
                schema={
                    "customer_id": pl.Int64,
                    "product_id": pl.Int64,
                    "occurred_at": pl.Datetime("us"),
                },
                orient="row",
            ).with_columns(
                pl.lit("purchase").alias("event_type"),
                pl.lit(1, dtype=pl.Int64).alias("quantity"),
                pl.lit(None, dtype=pl.Int64).alias("order_id"),
            )
        )
    return without_unconsented(pl.concat(frames)).sort("occurred_at", "customer_id", "product_id")


def without_unconsented(events: pl.DataFrame) -> pl.DataFrame:
    """``events`` less those of customers who do not consent to personalisation (profiling):
    their behaviour trains nothing, not even the popular products or the basket rules."""
    consent = consent_set(ConsentPurposeChoices.PERSONALISATION)
    exceptions = list(consent.exceptions)
    if consent.default:
        if not exceptions:
            return events
        return events.filter(~pl.col("customer_id").is_in(exceptions))
    return events.filter(pl.col("customer_id").is_in(exceptions))


def rfm_segments() -> dict[Hashable, Hashable]:
    """Customer id -> RFM segment in the latest analysis (empty before the first)."""
    run = latest_run()
    if run is None:
        return {}
    segments: dict[Hashable, Hashable] = {}
    for code, _ in segment_codes(run, SegmentationChoices.RFM):
        rows = segment_customers(run, SegmentationChoices.RFM, code).values_list(
            "customer_id", flat=True
        )
        segments.update(dict.fromkeys(rows, code))
    return segments


def _end_of(as_of: dt.datetime | dt.date | None) -> dt.datetime:
    """The moment a run's data ends: the given time (a day: its end in the shop's zone), or
    just after the latest order or event."""
    if isinstance(as_of, dt.datetime):
        return as_of if timezone.is_aware(as_of) else timezone.make_aware(as_of)
    if isinstance(as_of, dt.date):
        start = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
        return timezone.make_aware(start, timezone.get_default_timezone())
    latest = latest_activity_at()
    if latest is None:
        raise RecommendError(
            "the store holds no orders or events yet: import them first "
            "(patron import orders FILE) or build the demo shop (patron demo)"
        )
    return latest + dt.timedelta(seconds=1)


def train_recommendations(
    as_of: dt.datetime | dt.date | None = None,
    training: TrainingSettings | None = None,
    *,
    triggered_by: str = "command",
) -> TrainingRun:
    """Train, evaluate and precompute the recommendations on the data before ``as_of``.

    ``as_of`` is a moment, or a day (counted to its end in the shop's time zone); by default
    the latest order or event. The run is recorded as running before anything is read; on
    success it holds the evaluation report and the served rows (module docstring); on
    failure it is marked failed with the reason and :class:`RecommendError` is raised.
    """
    training = training or TrainingSettings()
    began = time.perf_counter()
    run = TrainingRun.objects.create(
        as_of=timezone.now(),
        started_at=timezone.now(),
        status=TrainingRunStatusChoices.RUNNING,
        recommender=SERVED_RECOMMENDER,
        parameters=_json_safe(asdict(training)),
        triggered_by=triggered_by,
    )
    try:
        problems = training.check()
        if problems:
            raise RecommendError("; ".join(problems))
        until = _end_of(as_of)
        run.as_of = until
        events = read_events(until)
        if events.filter(pl.col("event_type") == "purchase").height == 0:
            raise RecommendError(
                "no purchases before "
                f"{timezone.localtime(until):%Y-%m-%d %H:%M}: nothing to learn from yet"
            )
        _train(run, events, until, training, began)
    except (RecommendError, EngineInputError) as error:
        _mark_failed(run, began, str(error))
        raise RecommendError(f"recommendation training #{run.pk} failed: {error}") from error
    except Exception as error:
        # Anything unforeseen still closes the run's record before it propagates.
        _mark_failed(run, began, f"{type(error).__name__}: {error}")
        raise
    return run


def _train(
    run: TrainingRun,
    events: pl.DataFrame,
    until: dt.datetime,
    training: TrainingSettings,
    began: float,
) -> None:
    weighting = weighting_of(training)
    reference = until.astimezone(dt.UTC).replace(tzinfo=None)
    active_products = set(Product.objects.filter(is_active=True).values_list("pk", flat=True))
    interactions = build_interactions(
        events.drop("order_id"), weighting=weighting, reference_date=reference
    )
    segments = rfm_segments()
    stages = {"read": time.perf_counter() - began}

    def lap(stage: str) -> None:
        stages[stage] = time.perf_counter() - began - sum(stages.values())

    report, evaluation = _evaluate(interactions, reference, training, segments)
    lap("evaluate")
    model = served_recommender(interactions.n_items)
    model.fit(interactions, segments=segments)
    lap("fit")
    lists = _precompute(model, interactions, events, reference, training, active_products)
    lap("precompute")
    neighbours = _neighbours(model, interactions, training.neighbours, active_products)
    lap("neighbours")
    rules, baskets = _basket_rules(events, training)
    lap("rules")
    popular = _popular(interactions, segments, training.popular_products, active_products)
    lap("popular")
    served_tables = (
        ("recommend_recommendation", lists),
        ("recommend_similarproduct", neighbours),
        ("recommend_basketrule", rules),
        ("recommend_popularproduct", popular),
    )
    with transaction.atomic():
        for table, frame in served_tables:
            insert_frame(table, frame.with_columns(pl.lit(run.pk).alias("run_id")))
        run.parameters = {
            **run.parameters,
            "repeat_purchase_categories": list(repeat_purchase_categories()),
            "hybrid_weights": {name: float(w) for name, w in model.weights_.items()},
            "baskets": baskets,
            "seconds": {stage: round(seconds, 2) for stage, seconds in stages.items()},
        }
        run.report = report
        run.evaluation = evaluation
        run.customers = interactions.n_customers
        run.products = interactions.n_items
        run.interactions = int(interactions.matrix.nnz)
        run.recommended_customers = lists["customer_id"].n_unique() if lists.height else 0
        run.rules = rules.height
        run.status = TrainingRunStatusChoices.SUCCEEDED
        run.finished_at = timezone.now()
        run.duration_seconds = time.perf_counter() - began
        run.save()
        # The new rows serve from now on; older runs keep their records and reports only.
        for model_class in (Recommendation, SimilarProduct, BasketRule, PopularProduct):
            model_class.objects.exclude(run=run).delete()
    # Served at once: the planner must know the new rows (a stale estimate of a few rows
    # per run made the serving queries scan every neighbour of the run). Every served list
    # joins the products and their categories: with the estimate of an empty catalogue
    # (autovacuum off, or not yet run after an import) PostgreSQL hashed the whole catalogue
    # for each list (a list 0.44 -> 0.12 ms, the popular products 0.73 -> 0.07 ms).
    refresh_statistics(
        [
            *(table for table, _ in served_tables),
            Product._meta.db_table,
            Category._meta.db_table,
        ]
    )


def _evaluate(
    interactions: Interactions,
    reference: dt.datetime,
    training: TrainingSettings,
    segments: Mapping[Hashable, Hashable],
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The report of every recommender on the last ``test_days`` (empty when there is no
    test customer, with the reason)."""
    cut = reference - dt.timedelta(days=training.test_days)
    evaluation: dict[str, Any] = {
        "cut": cut.replace(tzinfo=dt.UTC).isoformat(),
        "test_days": training.test_days,
        "k": 10,
    }
    if not training.evaluate:
        return [], {**evaluation, "skipped": "not asked for"}
    split = holdout(interactions, day_of(cut), day_of(reference))
    evaluation["test_customers"] = len(split.truth)
    if not split.truth or split.train.n_items < 2:
        return [], {**evaluation, "skipped": "no customer bought something new in the test days"}
    lineup = evaluation_lineup(split.train.n_items)
    fit_params = {
        name: {"segments": segments}
        for name, model in lineup.items()
        if isinstance(model, PopularityRecommender | HybridRecommender)
    }
    table = evaluate_recommenders(
        lineup,
        split,
        k=10,
        max_customers=training.max_evaluation_customers,
        fit_params=fit_params,
    )
    evaluation["evaluated_customers"] = int(table["customers"][0]) if table.height else 0
    return _json_safe(table.to_dicts()), evaluation


def _precompute(
    model: Recommender,
    interactions: Interactions,
    events: pl.DataFrame,
    reference: dt.datetime,
    training: TrainingSettings,
    active_products: set[int],
) -> pl.DataFrame:
    """The lists of the customers with an order or event (in the last ``active_days`` when
    set): bought products left out (but those of repeat-purchase categories) and dismissed
    ones, only active products, diversified by MMR."""
    recent = events
    if training.active_days is not None:
        since = reference - dt.timedelta(days=training.active_days)
        recent = events.filter(pl.col("occurred_at") >= since)
    active = recent["customer_id"].unique().sort()
    repeat = repeat_purchase_products()
    bought = (
        events.filter(pl.col("event_type") == "purchase")
        .filter(~pl.col("product_id").is_in(list(repeat)))
        .group_by("customer_id")
        .agg(pl.col("product_id").unique())
    )
    exclude: dict[Hashable, set[Hashable]] = {
        customer: set(products) for customer, products in bought.iter_rows()
    }
    for customer, product in RecommendationFeedback.objects.filter(
        kind=FeedbackKindChoices.DISMISSED
    ).values_list("customer_id", "product_id"):
        exclude.setdefault(customer, set()).add(product)
    # A pool of candidates with their reasons, re-ranked here: the engine's own MMR rebuilds
    # the item similarity from the whole matrix for every customer (48 s of 57 on the demo).
    pool = max(4 * training.list_length, 50) if training.diversity > 0 else training.list_length
    table = model.recommend(
        active.to_list(),
        pool,
        exclude_seen=False,
        exclude=exclude,
        filter_items=active_products,
    )
    table = diversify(table, interactions, training.list_length, training.diversity)
    return table.select(
        pl.col("customer_id").cast(pl.Int64),
        pl.col("rank").cast(pl.Int64),
        pl.col("product_id").cast(pl.Int64),
        pl.col("score").cast(pl.Float64),
        pl.col("reason"),
        pl.col("reason_product_id").cast(pl.Int64),
    )


def diversify(
    table: pl.DataFrame, interactions: Interactions, n: int, weight: float
) -> pl.DataFrame:
    """Each customer's ``n`` best of ``table`` (``customer_id, rank, product_id, score, ...``)
    in maximal-marginal-relevance order (Carbonell & Goldstein 1998; ``weight`` 0: by score),
    over the cosine of the products' customer columns, ranks renumbered from 1."""
    if table.height == 0:
        return table
    if weight == 0:
        return table.filter(pl.col("rank") <= n)
    binary = sp.csc_matrix(interactions.matrix, dtype=np.float64, copy=True)
    binary.data[:] = 1.0
    norms = np.sqrt(np.asarray(binary.sum(axis=0)).ravel())
    norms[norms == 0] = 1.0
    unit = sp.csc_matrix(binary @ sp.diags(1.0 / norms))
    # Small catalogues: every pair once (4,000 products: 64 MB); larger: per list.
    dense = (
        np.asarray((unit.T @ unit).toarray(), dtype=np.float32)
        if interactions.n_items <= DENSE_SIMILARITY_ITEMS
        else None
    )
    item_index = interactions.item_index
    table = table.sort("customer_id", "rank")
    items = np.array([item_index[p] for p in table["product_id"].to_list()], dtype=np.int64)
    scores = table["score"].to_numpy()
    customers = table["customer_id"].to_list()
    starts = [0] + [i for i in range(1, len(customers)) if customers[i] != customers[i - 1]]
    ends = [*starts[1:], len(customers)]
    kept: list[int] = []
    ranks: list[int] = []
    for start, end in zip(starts, ends, strict=True):
        pool = items[start:end]
        if dense is not None:
            similarity = dense[np.ix_(pool, pool)].astype(np.float64)
        else:
            block = unit[:, pool]
            similarity = np.asarray((block.T @ block).toarray())
        order = mmr_rerank(scores[start:end], similarity, n, weight)
        kept.extend((start + order).tolist())
        ranks.extend(range(1, len(order) + 1))
    return table[kept].with_columns(pl.Series("rank", ranks).cast(table["rank"].dtype))


def _neighbours(
    model: Recommender, interactions: Interactions, n: int, active_products: set[int]
) -> pl.DataFrame:
    """Every product's ``n`` nearest active products (the model's item similarity)."""
    products = interactions.item_ids.tolist()
    frames = [
        model.similar_items(products[start : start + NEIGHBOUR_BATCH], n=n * 2)
        for start in range(0, len(products), NEIGHBOUR_BATCH)
    ]
    table = pl.concat(frames) if frames else pl.DataFrame()
    if table.height == 0:
        return pl.DataFrame(
            schema={
                "product_id": pl.Int64,
                "rank": pl.Int64,
                "similar_product_id": pl.Int64,
                "score": pl.Float64,
            }
        )
    return (
        table.select(
            pl.col("product_id").cast(pl.Int64),
            pl.col("similar_product_id").cast(pl.Int64),
            pl.col("score").cast(pl.Float64),
            pl.col("rank"),
        )
        .filter(pl.col("similar_product_id").is_in(list(active_products)))
        .sort("product_id", "rank")
        .with_columns(pl.int_range(1, pl.len() + 1).over("product_id").alias("rank"))
        .filter(pl.col("rank") <= n)
    )


def _basket_rules(
    events: pl.DataFrame, training: TrainingSettings
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Rules "bought X, also bought Y" between single products, from the orders' baskets."""
    baskets = (
        events.filter(pl.col("order_id").is_not_null())
        .select(
            pl.col("order_id").alias("basket_id"),
            pl.col("product_id").cast(pl.String),
        )
        .unique()
    )
    orders = baskets["basket_id"].n_unique()
    empty = pl.DataFrame(
        schema={
            "antecedent_id": pl.Int64,
            "consequent_id": pl.Int64,
            "baskets": pl.Int64,
            "support": pl.Float64,
            "confidence": pl.Float64,
            "lift": pl.Float64,
        }
    )
    # At least min_rule_orders orders, whatever the share: a pair seen once is no rule.
    min_support = max(training.min_support, training.min_rule_orders / max(orders, 1))
    summary = {"orders": orders, "min_support": min_support}
    if orders < max(training.min_rule_orders, 1):
        # Fewer orders than a rule needs (a small shop, or most customers not consenting).
        return empty, summary
    itemsets = fpgrowth(baskets, min_support=min_support, max_length=2)
    if itemsets.filter(pl.col("length") == 2).height == 0:
        return empty, summary
    rules = association_rules(
        itemsets, min_confidence=training.min_confidence, min_lift=training.min_lift
    )
    single = rules.filter(
        (pl.col("antecedent").list.len() == 1) & (pl.col("consequent").list.len() == 1)
    )
    return (
        single.select(
            pl.col("antecedent").list.first().cast(pl.Int64).alias("antecedent_id"),
            pl.col("consequent").list.first().cast(pl.Int64).alias("consequent_id"),
            (pl.col("support") * orders).round().cast(pl.Int64).alias("baskets"),
            pl.col("support").cast(pl.Float64),
            pl.col("confidence").cast(pl.Float64),
            pl.col("lift").cast(pl.Float64),
        ),
        summary,
    )


def _popular(
    interactions: Interactions,
    segments: Mapping[Hashable, Hashable],
    n: int,
    active_products: set[int],
) -> pl.DataFrame:
    """The ``n`` most popular active products (decayed weight: "trending") in the shop
    (segment "") and in every RFM segment with enough customers."""
    model = PopularityRecommender(measure="weight").fit(interactions, segments=segments)
    allowed = np.array([p in active_products for p in interactions.item_ids.tolist()], dtype=bool)
    rows: list[dict[str, Any]] = []
    for segment, popularity in [("", model.popularity_), *model.segment_popularity_.items()]:
        scores = np.where(allowed & (popularity > 0), popularity, -np.inf)
        order = np.argsort(-scores, kind="stable")[:n]
        order = order[np.isfinite(scores[order])]
        rows.extend(
            {
                "segment": str(segment),
                "rank": rank,
                "product_id": int(interactions.item_ids[item]),
                "score": float(scores[item]),
            }
            for rank, item in enumerate(order.tolist(), start=1)
        )
    return pl.DataFrame(
        rows,
        schema={
            "segment": pl.String,
            "rank": pl.Int64,
            "product_id": pl.Int64,
            "score": pl.Float64,
        },
    )


def _mark_failed(run: TrainingRun, began: float, message: str) -> None:
    run.status = TrainingRunStatusChoices.FAILED
    run.error = message
    run.finished_at = timezone.now()
    run.duration_seconds = time.perf_counter() - began
    run.save(update_fields=["status", "error", "as_of", "finished_at", "duration_seconds"])


def _json_safe(value: Any) -> Any:
    """``value`` with NaN/infinite floats as None and tuples as lists (JSON columns)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def record_feedback(
    event_id: str,
    customer: Customer,
    product: Product,
    kind: str,
    occurred_at: dt.datetime | None = None,
) -> tuple[RecommendationFeedback, bool]:
    """Record what ``customer`` did with a recommended ``product``; ``event_id`` is the shop's
    id of the event: the same id again records nothing and returns the first record with
    ``False``. Refuses an unknown kind, an empty or over-long id and a naive time."""
    if kind not in FeedbackKindChoices.values:
        raise FeedbackError(
            "kind", f"unknown kind {kind!r}; use one of: {', '.join(FeedbackKindChoices.values)}"
        )
    if not event_id or len(event_id) > 128:
        raise FeedbackError("event_id", "event_id must be 1 to 128 characters long")
    if occurred_at is not None and timezone.is_naive(occurred_at):
        raise FeedbackError("occurred_at", "occurred_at needs a time zone (2024-11-11T08:00Z)")
    feedback, created = RecommendationFeedback.objects.get_or_create(
        event_id=event_id,
        defaults={
            "customer": customer,
            "product": product,
            "kind": kind,
            "occurred_at": occurred_at or timezone.now(),
        },
    )
    return feedback, created
