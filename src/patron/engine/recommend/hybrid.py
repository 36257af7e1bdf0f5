"""A weighted blend of recommenders, with the weights chosen on a validation split.

Each component's scores are normalised per customer over the products it can recommend
(see ``normalization``), then blended: ``score = sum_c w_c norm_c``. The weights are chosen
by coordinate ascent over ``weight_grid``, starting from the best single component (each
weight in turn takes the grid value that maximises NDCG@n with the others fixed, for a few
rounds) on a temporal validation split of
the training interactions: the components are fitted on the events before the last
``validation_days`` and judged on the purchases of those days (the protocol of
:mod:`patron.engine.recommend.evaluation`), then refitted on everything with the chosen
weights. Linear blending of normalised scores is the "linear combination" hybrid of Burke
(2002), "Hybrid recommender systems: survey and experiments", UMUAI 12(4).

Customers without history get the ``fallback`` (popularity, per segment when segments are
given) and its reasons. For the others, each item's reason is the reason given by the
component that contributed most to its blended score.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from sklearn.base import clone

from patron.engine.frames import EngineInputError
from patron.engine.recommend.base import Reasons, Recommender, reject_params, top_n
from patron.engine.recommend.content import ContentRecommender
from patron.engine.recommend.ease import EASERecommender
from patron.engine.recommend.evaluation import ranking_metrics, sample_customers
from patron.engine.recommend.interactions import FloatArray, IntArray, Interactions, holdout
from patron.engine.recommend.item_knn import ItemKNNRecommender
from patron.engine.recommend.matrix_factorization import ALSRecommender
from patron.engine.recommend.popularity import PopularityRecommender

Normalization = Literal["minmax", "zscore", "rank"]


def default_components() -> list[tuple[str, Recommender]]:
    """ALS, item neighbours (cosine), EASE and trending popularity."""
    return [
        ("als", ALSRecommender(random_state=0)),
        ("item_knn", ItemKNNRecommender(k=100)),
        ("ease", EASERecommender()),
        ("trending", PopularityRecommender(measure="weight")),
    ]


def normalize_scores(scores: FloatArray, how: Normalization) -> FloatArray:
    """Per-row normalisation over the finite scores; others become 0.

    ``minmax`` maps a row to [0, 1]; ``zscore`` subtracts the row's mean and divides by its
    standard deviation; ``rank`` gives ``1 - rank / n`` (1 for the best, ~0 for the worst).
    """
    finite = np.isfinite(scores)
    result = np.zeros_like(scores, dtype=np.float64)
    for row in range(scores.shape[0]):
        mask = finite[row]
        if not mask.any():
            continue
        values = scores[row, mask]
        if how == "minmax":
            low, high = values.min(), values.max()
            result[row, mask] = (values - low) / (high - low) if high > low else 1.0
        elif how == "zscore":
            spread = values.std()
            result[row, mask] = (values - values.mean()) / spread if spread > 0 else 0.0
        elif how == "rank":
            order = np.argsort(-values, kind="stable")
            ranks = np.empty(len(values))
            ranks[order] = np.arange(len(values))
            result[row, mask] = 1.0 - ranks / len(values)
        else:
            raise EngineInputError(f"normalization must be minmax, zscore or rank, got {how!r}")
    return result


class HybridRecommender(Recommender):
    """Weighted blend of normalised component scores (see the module docstring).

    Parameters
    ----------
    components
        ``(name, recommender)`` pairs (unfitted; clones are fitted). Default:
        :func:`default_components`.
    weights
        Fixed weights by name; when given, no validation search is run.
    validation_days
        Length of the validation period at the end of the training interactions.
    weight_grid
        Values each weight may take in the search.
    rounds
        Coordinate-ascent rounds over the components.
    normalization
        How component scores are put on one scale (:func:`normalize_scores`).
    fallback
        The recommender for customers without history (default: popularity).
    n
        List length whose NDCG the search maximises.
    max_validation_customers
        Validation customers sampled at most (the search holds their dense scores).
    random_state
        Seed of that sample.

    Fit parameters
    --------------
    segments
        Passed to popularity components and the fallback.
    products
        Passed to content components.

    Attributes
    ----------
    components_ : list of (str, Recommender)
        The fitted components.
    weights_ : dict
        Name -> weight used (summing to 1).
    validation_ndcg_ : dict
        NDCG@n on the validation split: per component alone, and ``"hybrid"``.
    fallback_ : Recommender
    """

    def __init__(
        self,
        components: Sequence[tuple[str, Recommender]] | None = None,
        weights: Mapping[str, float] | None = None,
        validation_days: float = 30.0,
        weight_grid: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0),
        rounds: int = 2,
        normalization: Normalization = "minmax",
        fallback: Recommender | None = None,
        n: int = 10,
        max_validation_customers: int | None = 2_000,
        random_state: int = 0,
    ) -> None:
        self.components = components
        self.weights = weights
        self.validation_days = validation_days
        self.weight_grid = weight_grid
        self.rounds = rounds
        self.normalization = normalization
        self.fallback = fallback
        self.n = n
        self.max_validation_customers = max_validation_customers
        self.random_state = random_state

    def _component_list(self) -> list[tuple[str, Recommender]]:
        components = default_components() if self.components is None else list(self.components)
        if not components:
            raise EngineInputError("HybridRecommender needs at least one component")
        names = [name for name, _ in components]
        if len(set(names)) != len(names):
            raise EngineInputError(f"component names must be unique: {names}")
        return components

    @staticmethod
    def _fit_component(
        model: Recommender,
        interactions: Interactions,
        segments: Mapping[Hashable, Hashable] | None,
        products: Any,
    ) -> Recommender:
        estimator = clone(model)
        if isinstance(estimator, PopularityRecommender):
            return estimator.fit(interactions, segments=segments)
        if isinstance(estimator, ContentRecommender):
            return estimator.fit(interactions, products=products)
        return estimator.fit(interactions)

    def fit(
        self,
        interactions: Interactions,
        segments: Mapping[Hashable, Hashable] | None = None,
        products: Any = None,
        **params: Any,
    ) -> HybridRecommender:
        """Choose the weights on a validation split, then fit every component on all data."""
        return super().fit(interactions, segments=segments, products=products, **params)

    def _fit(
        self,
        interactions: Interactions,
        segments: Mapping[Hashable, Hashable] | None = None,
        products: Any = None,
        **params: Any,
    ) -> None:
        reject_params(self, params)
        components = self._component_list()
        names = [name for name, _ in components]
        self.validation_ndcg_: dict[str, float] = {}
        if self.weights is not None:
            unknown = set(self.weights) - set(names)
            if unknown:
                raise EngineInputError(f"weights name unknown components: {sorted(unknown)}")
            weights = {name: float(self.weights.get(name, 0.0)) for name in names}
        else:
            weights = self._search_weights(components, interactions, segments, products)
        total = sum(weights.values())
        if total <= 0:
            raise EngineInputError("the component weights sum to zero")
        self.weights_ = {name: weight / total for name, weight in weights.items()}
        self.components_ = [
            (name, self._fit_component(model, interactions, segments, products))
            for name, model in components
            if self.weights_[name] > 0
        ]
        fallback = PopularityRecommender() if self.fallback is None else self.fallback
        self.fallback_ = self._fit_component(fallback, interactions, segments, products)

    def _search_weights(
        self,
        components: list[tuple[str, Recommender]],
        interactions: Interactions,
        segments: Mapping[Hashable, Hashable] | None,
        products: Any,
    ) -> dict[str, float]:
        names = [name for name, _ in components]
        split = holdout(interactions, interactions.reference_day - self.validation_days)
        if not split.truth or split.train.n_items < 2:
            # Too little history for a validation split: blend equally.
            return dict.fromkeys(names, 1.0)
        customers = sample_customers(split.truth, self.max_validation_customers, self.random_state)
        truths = [split.truth[int(c)] for c in customers]
        seen = np.zeros((len(customers), split.train.n_items), dtype=bool)
        for row, customer in enumerate(customers.tolist()):
            seen[row, split.train.seen_items(customer)] = True
        blocks = []
        for _name, model in components:
            fitted = self._fit_component(model, split.train, segments, products)
            blocks.append(
                normalize_scores(fitted.scores(customers), self.normalization).astype(np.float32)
            )
        stacked = np.stack(blocks)
        del blocks

        def ndcg(weight_vector: Sequence[float]) -> float:
            blended = np.tensordot(np.asarray(weight_vector, dtype=np.float32), stacked, axes=1)
            blended[seen] = -np.inf
            return ranking_metrics(top_n(blended.astype(np.float64), self.n), truths, self.n).ndcg

        for position, name in enumerate(names):
            alone = [1.0 if i == position else 0.0 for i in range(len(names))]
            self.validation_ndcg_[name] = ndcg(alone)
        # Start from the best component alone, so the blend is never worse on validation.
        leader = max(range(len(names)), key=lambda position: self.validation_ndcg_[names[position]])
        current = [1.0 if position == leader else 0.0 for position in range(len(names))]
        best = self.validation_ndcg_[names[leader]]
        for _ in range(self.rounds):
            improved = False
            for position in range(len(names)):
                for value in self.weight_grid:
                    trial = list(current)
                    trial[position] = value
                    if sum(trial) <= 0 or trial == current:
                        continue
                    score = ndcg(trial)
                    if score > best + 1e-12:
                        best, current, improved = score, trial, True
            if not improved:
                break
        self.validation_ndcg_["hybrid"] = best
        return dict(zip(names, current, strict=True))

    def _has_history(self, customers: IntArray) -> np.ndarray:
        matrix = self.interactions_.matrix
        known = customers >= 0
        result = np.zeros(len(customers), dtype=bool)
        result[known] = np.diff(matrix.indptr)[customers[known]] > 0
        return result

    def _blend(
        self, customers: IntArray, customer_ids: Sequence[Hashable]
    ) -> tuple[FloatArray, list[FloatArray]]:
        n_items = self.interactions_.n_items
        blended = np.zeros((len(customers), n_items))
        parts = []
        for name, model in self.components_:
            raw = model.scores(customers, customer_ids)
            part = self.weights_[name] * normalize_scores(raw, self.normalization)
            blended += part
            parts.append(part)
        return blended, parts

    def _score(self, customers: IntArray, customer_ids: Sequence[Hashable]) -> FloatArray:
        blended, _ = self._blend(customers, customer_ids)
        cold = ~self._has_history(customers)
        if cold.any():
            fallback = self.fallback_.scores(
                customers[cold], [customer_ids[int(i)] for i in np.flatnonzero(cold)]
            )
            blended[cold] = normalize_scores(fallback, self.normalization)
            blended[cold] = np.where(np.isfinite(fallback), blended[cold], -np.inf)
        return blended

    def _reasons(
        self, customers: IntArray, customer_ids: Sequence[Hashable], items: IntArray
    ) -> Reasons:
        codes = np.full(items.shape, None, dtype=object)
        reason_items = np.full(items.shape, -1, dtype=np.int64)
        cold = ~self._has_history(customers)
        if cold.any():
            cold_rows = np.flatnonzero(cold)
            fallback = self.fallback_._reasons(
                customers[cold_rows], [customer_ids[int(i)] for i in cold_rows], items[cold_rows]
            )
            codes[cold_rows] = fallback.codes
            reason_items[cold_rows] = fallback.items
        warm_rows = np.flatnonzero(~cold)
        if len(warm_rows):
            warm = customers[warm_rows]
            warm_ids = [customer_ids[int(i)] for i in warm_rows]
            warm_items = items[warm_rows]
            _, parts = self._blend(warm, warm_ids)
            safe = np.where(warm_items >= 0, warm_items, 0)
            contribution = np.stack([np.take_along_axis(part, safe, axis=1) for part in parts])
            leader = np.argmax(contribution, axis=0)
            for position, (_, model) in enumerate(self.components_):
                reasons = model._reasons(warm, warm_ids, warm_items)
                chosen = (leader == position) & (warm_items >= 0)
                rows, columns = np.nonzero(chosen)
                codes[warm_rows[rows], columns] = reasons.codes[rows, columns]
                reason_items[warm_rows[rows], columns] = reasons.items[rows, columns]
        return Reasons(codes=codes, items=reason_items)
