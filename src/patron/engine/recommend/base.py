"""The interface every recommender shares: fit on interactions, recommend, similar items.

A recommender is a scikit-learn style estimator: ``__init__`` only stores its settings,
``fit(interactions, ...)`` learns and returns ``self``, learned attributes end in ``_``.
Subclasses implement three things on indices:

* ``_fit(interactions, **params)``: learn;
* ``_score(customers, customer_ids)``: a dense ``(len(customers), n_items)`` array of
  relevance scores, higher is better; ``customers`` holds row indices of the fitted
  interactions, ``-1`` for a customer the model has never seen (``customer_ids`` gives the
  ids, for models that know something about unseen customers, such as their segment). A row
  of NaN means "cannot score this customer": it gets no recommendations;
* ``_reasons(customers, customer_ids, items)``: why each recommended item is there.

and may override ``_item_similarity(items)`` (rows of item-item similarity, used by
:meth:`Recommender.similar_items` and the diversity re-ranking; by default the cosine of
the items' customer columns, :func:`cooccurrence_similarity`).

The public methods take and give ids and return Polars tables:

* :meth:`Recommender.recommend` -> ``customer_id, rank, product_id, score, reason,
  reason_product_id``;
* :meth:`Recommender.similar_items` -> ``product_id, rank, similar_product_id, score,
  reason``.

Reasons are codes from :class:`ReasonChoices` (with the product they point at), so that the
application words them in the customer's language.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import polars as pl
import scipy.sparse as sp
from sklearn.base import BaseEstimator

from patron.engine.frames import EngineInputError
from patron.engine.recommend.interactions import FloatArray, IntArray, Interactions

BATCH_CUSTOMERS = 512
"""Customers scored together: 512 x 50,000 products is 100 MB of float32 scores."""

RECOMMENDATION_COLUMNS = (
    "customer_id",
    "rank",
    "product_id",
    "score",
    "reason",
    "reason_product_id",
)
SIMILAR_COLUMNS = ("product_id", "rank", "similar_product_id", "score", "reason")


class ReasonChoices(StrEnum):
    """Why an item is recommended; the application turns the code into words."""

    BECAUSE_YOU_BOUGHT = "because_you_bought"
    """"Because you bought X": X is the history item that contributed most."""
    POPULAR_IN_SEGMENT = "popular_in_segment"
    """"Popular in your segment"."""
    POPULAR = "popular"
    """"Popular right now" (customers without history or segment)."""
    OFTEN_BOUGHT_WITH = "often_bought_with"
    """"Often bought with Y": Y is bought together with it (co-occurrence or a basket rule)."""
    SIMILAR_TO = "similar_to"
    """"Similar to X": X has a similar name and attributes (content similarity)."""


class NotFittedError(RuntimeError):
    """A recommender was asked for recommendations before ``fit``."""


@dataclass(frozen=True)
class Reasons:
    """Reason codes and the item each points at (-1 for none), shaped like the items."""

    codes: npt.NDArray[np.object_]
    items: IntArray


class Recommender(BaseEstimator):
    """Base class of the recommenders (see the module docstring for the contract)."""

    interactions_: Interactions

    # ---- to implement -------------------------------------------------------------------
    def _fit(self, interactions: Interactions, **params: Any) -> None:
        raise NotImplementedError

    def _score(self, customers: IntArray, customer_ids: Sequence[Hashable]) -> FloatArray:
        raise NotImplementedError

    def _reasons(
        self, customers: IntArray, customer_ids: Sequence[Hashable], items: IntArray
    ) -> Reasons:
        return history_reasons(self, customers, items)

    def _item_similarity(self, items: IntArray) -> FloatArray:
        return cooccurrence_similarity(self.interactions_.matrix, items)

    # ---- the interface ------------------------------------------------------------------
    def fit(self, interactions: Interactions, **params: Any) -> Self:
        """Learn from ``interactions``; ``params`` are model-specific data (segments ...)."""
        if not isinstance(interactions, Interactions):
            raise EngineInputError(
                "fit expects an Interactions (see build_interactions), "
                f"got {type(interactions).__name__}"
            )
        self.interactions_ = interactions
        self._fit(interactions, **params)
        return self

    def _check_fitted(self) -> Interactions:
        interactions = getattr(self, "interactions_", None)
        if interactions is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit first")
        return interactions

    def scores(
        self, customers: IntArray, customer_ids: Sequence[Hashable] | None = None
    ) -> FloatArray:
        """Raw scores of every item for customer rows ``customers`` (-1: unknown customer)."""
        interactions = self._check_fitted()
        customers = np.asarray(customers, dtype=np.int64)
        if customer_ids is None:
            ids = interactions.customer_ids
            customer_ids = [ids[c] if c >= 0 else None for c in customers.tolist()]
        return np.asarray(self._score(customers, customer_ids), dtype=np.float64)

    def recommend_indices(
        self,
        customers: IntArray,
        n: int = 10,
        *,
        customer_ids: Sequence[Hashable] | None = None,
        exclude_seen: bool = True,
        exclude: Mapping[int, Iterable[int]] | Iterable[int] | None = None,
        filter_items: Iterable[int] | None = None,
        diversity: float = 0.0,
    ) -> tuple[IntArray, FloatArray]:
        """Top ``n`` item indices and scores per customer row (-1 / NaN pad short lists).

        Parameters
        ----------
        customers
            Row indices of the fitted interactions; -1 for customers the model never saw.
        n
            List length.
        customer_ids
            The customers' ids (for models that use them for unknown customers).
        exclude_seen
            Leave out the items each customer already interacted with.
        exclude
            Items to leave out: one set for everyone, or a mapping row -> items (dismissed).
        filter_items
            Only these items may be recommended (active, in stock ...).
        diversity
            Weight of maximal marginal relevance re-ranking, 0 (none) to 1 (see
            :func:`patron.engine.recommend.diversity.mmr_rerank`).
        """
        interactions = self._check_fitted()
        customers = np.asarray(customers, dtype=np.int64)
        if not 0.0 <= diversity <= 1.0:
            raise EngineInputError(f"diversity must be between 0 and 1, got {diversity!r}")
        allowed: npt.NDArray[np.bool_] | None = None
        if filter_items is not None:
            allowed = np.zeros(interactions.n_items, dtype=bool)
            allowed[np.fromiter(filter_items, dtype=np.int64)] = True
        shared_exclude: IntArray | None = None
        per_customer: Mapping[int, Iterable[int]] = {}
        if isinstance(exclude, Mapping):
            per_customer = exclude
        elif exclude is not None:
            shared_exclude = np.fromiter(exclude, dtype=np.int64)
        pool = n if diversity == 0 else max(4 * n, 50)
        items_out = np.full((len(customers), n), -1, dtype=np.int64)
        scores_out = np.full((len(customers), n), np.nan, dtype=np.float64)
        for start in range(0, len(customers), BATCH_CUSTOMERS):
            batch = customers[start : start + BATCH_CUSTOMERS]
            batch_ids = None if customer_ids is None else customer_ids[start : start + len(batch)]
            scores = self.scores(batch, batch_ids)
            if allowed is not None:
                scores[:, ~allowed] = -np.inf
            if shared_exclude is not None:
                scores[:, shared_exclude] = -np.inf
            for row, customer in enumerate(batch.tolist()):
                if customer >= 0 and exclude_seen:
                    scores[row, interactions.seen_items(customer)] = -np.inf
                dismissed = per_customer.get(customer)
                if dismissed is not None:
                    scores[row, np.fromiter(dismissed, dtype=np.int64)] = -np.inf
            top = top_n(scores, pool)
            for row in range(len(batch)):
                chosen = top[row][top[row] >= 0]
                chosen_scores = scores[row, chosen]
                if diversity > 0 and len(chosen) > 1:
                    from patron.engine.recommend.diversity import mmr_rerank

                    order = mmr_rerank(
                        chosen_scores, self._item_similarity(chosen)[:, chosen], n, diversity
                    )
                    chosen, chosen_scores = chosen[order], chosen_scores[order]
                chosen, chosen_scores = chosen[:n], chosen_scores[:n]
                items_out[start + row, : len(chosen)] = chosen
                scores_out[start + row, : len(chosen)] = chosen_scores
        return items_out, scores_out

    def recommend(
        self,
        customer_ids: Iterable[Hashable],
        n: int = 10,
        *,
        exclude_seen: bool = True,
        exclude: Mapping[Hashable, Iterable[Hashable]] | Iterable[Hashable] | None = None,
        filter_items: Iterable[Hashable] | None = None,
        diversity: float = 0.0,
    ) -> pl.DataFrame:
        """Recommendations for customers by id, with a reason each.

        Returns a table with ``customer_id, rank`` (1 = best), ``product_id, score`` (the
        model's score; comparable within one model only), ``reason`` (a
        :class:`ReasonChoices` value) and ``reason_product_id`` (the product the reason
        names, or null). Unknown customers get what the model can give them without history
        (popularity and hybrid: popular items; the others: nothing). ``exclude`` and
        ``filter_items`` name products; unknown product ids in them are ignored.
        """
        interactions = self._check_fitted()
        ids = list(customer_ids)
        customer_index = interactions.customer_index
        item_index = interactions.item_index
        rows = np.array([customer_index.get(customer, -1) for customer in ids], dtype=np.int64)

        def to_items(products: Iterable[Hashable]) -> list[int]:
            return [item_index[p] for p in products if p in item_index]

        exclude_indices: Mapping[int, Iterable[int]] | Iterable[int] | None
        if isinstance(exclude, Mapping):
            exclude_indices = {
                customer_index[c]: to_items(products)
                for c, products in exclude.items()
                if c in customer_index
            }
        else:
            exclude_indices = None if exclude is None else to_items(exclude)
        items, scores = self.recommend_indices(
            rows,
            n,
            customer_ids=ids,
            exclude_seen=exclude_seen,
            exclude=exclude_indices,
            filter_items=None if filter_items is None else to_items(filter_items),
            diversity=diversity,
        )
        reasons = self._reasons(rows, ids, items)
        keep = items >= 0
        item_ids = interactions.item_ids
        reason_items = reasons.items[keep]
        return pl.DataFrame(
            {
                "customer_id": np.repeat(np.asarray(ids, dtype=object), keep.sum(axis=1)).tolist(),
                "rank": np.nonzero(keep)[1] + 1,
                "product_id": item_ids[items[keep]].tolist(),
                "score": scores[keep],
                "reason": reasons.codes[keep].tolist(),
                "reason_product_id": [
                    item_ids[r] if r >= 0 else None for r in reason_items.tolist()
                ],
            },
            schema_overrides={"rank": pl.Int32, "score": pl.Float64, "reason": pl.String},
        )

    def similar_items(self, product_ids: Iterable[Hashable], n: int = 10) -> pl.DataFrame:
        """The ``n`` products most similar to each of ``product_ids`` by this model.

        Returns ``product_id, rank, similar_product_id, score, reason``; unknown products are
        left out. The reason is ``often_bought_with`` (``similar_to`` for content models).
        """
        interactions = self._check_fitted()
        item_index = interactions.item_index
        known = [p for p in product_ids if p in item_index]
        rows: dict[str, list[Any]] = {column: [] for column in SIMILAR_COLUMNS}
        if known:
            items = np.array([item_index[p] for p in known], dtype=np.int64)
            similarity = self._item_similarity(items)
            similarity[np.arange(len(items)), items] = -np.inf
            top = top_n(similarity, n)
            for row, product in enumerate(known):
                chosen = top[row][top[row] >= 0]
                chosen = chosen[similarity[row, chosen] > 0]
                rows["product_id"].extend([product] * len(chosen))
                rows["rank"].extend(range(1, len(chosen) + 1))
                rows["similar_product_id"].extend(interactions.item_ids[chosen].tolist())
                rows["score"].extend(similarity[row, chosen].tolist())
                rows["reason"].extend([self._similarity_reason] * len(chosen))
        if not known:
            return _empty_similar()
        return pl.DataFrame(rows).with_columns(
            pl.col("rank").cast(pl.Int32), pl.col("score").cast(pl.Float64)
        )

    _similarity_reason: str = ReasonChoices.OFTEN_BOUGHT_WITH.value


def reject_params(model: Recommender, params: dict[str, Any]) -> None:
    """Refuse fit parameters ``model`` does not take (a misspelt name would be ignored)."""
    if params:
        raise EngineInputError(
            f"{type(model).__name__}.fit got unexpected parameter(s) {', '.join(sorted(params))}"
        )


def _empty_similar() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "product_id": pl.String,
            "rank": pl.Int32,
            "similar_product_id": pl.String,
            "score": pl.Float64,
            "reason": pl.String,
        }
    )


TOP_N_BLOCK = 64
"""Columns per block of :func:`top_n`'s first pass over wide rows."""


def top_n(scores: FloatArray, n: int) -> IntArray:
    """Column indices of the ``n`` largest finite scores of each row, best first (-1 pads).

    On wide rows (a catalogue of 50,000 products) a selection over every column costs a
    second per 512 rows; the ``n`` largest scores lie in the ``n`` blocks of
    :data:`TOP_N_BLOCK` columns with the largest maxima, so only those blocks' columns are
    selected from (a tenth of the time).
    """
    n_rows, n_columns = scores.shape
    width = min(n, n_columns)
    if width == 0:
        return np.full((n_rows, n), -1, dtype=np.int64)
    if width * TOP_N_BLOCK * 4 <= n_columns:
        candidates = _block_candidates(scores, width)
        candidate_scores = np.take_along_axis(scores, np.minimum(candidates, n_columns - 1), 1)
        candidate_scores[candidates >= n_columns] = -np.inf
    else:
        candidates = np.tile(np.arange(n_columns), (n_rows, 1))
        candidate_scores = scores
    finite = np.where(np.isfinite(candidate_scores), candidate_scores, -np.inf)
    if width < finite.shape[1]:
        part = np.argpartition(-finite, width - 1, axis=1)[:, :width]
    else:
        part = np.tile(np.arange(finite.shape[1]), (n_rows, 1))
    part_scores = np.take_along_axis(finite, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    best = np.take_along_axis(candidates, np.take_along_axis(part, order, axis=1), axis=1)
    best = best.astype(np.int64)
    best_scores = np.take_along_axis(part_scores, order, axis=1)
    best[~np.isfinite(best_scores)] = -1
    out = np.full((n_rows, n), -1, dtype=np.int64)
    out[:, :width] = best
    return out


def _block_candidates(scores: FloatArray, width: int) -> IntArray:
    """Columns of the ``width`` blocks with the largest finite maximum of each row.

    Every value above the ``width``-th largest lies in a block whose maximum is above it, and
    there are fewer than ``width`` such blocks; the blocks tied at that value hold enough
    copies of it. The last block may reach past the last column (such indices are returned
    as they are, ``>= n_columns``).
    """
    n_rows, n_columns = scores.shape
    whole = n_columns - n_columns % TOP_N_BLOCK
    # fmax skips NaN (unscored); a view of whole blocks, no copy of the scores.
    maxima = np.fmax.reduce(scores[:, :whole].reshape(n_rows, -1, TOP_N_BLOCK), axis=2)
    if whole < n_columns:
        maxima = np.concatenate([maxima, np.fmax.reduce(scores[:, whole:], axis=1)[:, None]], 1)
    maxima = np.where(np.isnan(maxima), -np.inf, maxima)
    blocks = np.argpartition(-maxima, width - 1, axis=1)[:, :width]
    return (blocks[:, :, None] * TOP_N_BLOCK + np.arange(TOP_N_BLOCK)).reshape(n_rows, -1)


def cooccurrence_similarity(matrix: sp.csr_matrix, items: IntArray) -> FloatArray:
    """Cosine similarity of ``items``' customer columns (who bought them) with every item.

    Computed on the binary matrix: two products are similar when the same customers have
    them, however often each bought.
    """
    binary = sp.csc_matrix(matrix, dtype=np.float64, copy=True)
    binary.data[:] = 1.0
    norms = np.sqrt(np.asarray(binary.sum(axis=0)).ravel())
    norms[norms == 0] = 1.0
    overlap = (binary[:, items].T @ binary).toarray()
    return np.asarray(overlap / norms[items][:, None] / norms[None, :], dtype=np.float64)


def history_reasons(
    model: Recommender,
    customers: IntArray,
    items: IntArray,
    contributions: Any = None,
) -> Reasons:
    """ "Because you bought X": per recommended item, the customer's history item most similar
    to it (weighted by the history's interaction weight), by the model's item similarity.

    ``contributions(history, weights, recommended) -> (len(history), len(recommended))``
    overrides the contribution of each history item to each recommended item.
    """
    interactions = model.interactions_
    codes = np.full(items.shape, None, dtype=object)
    reason_items = np.full(items.shape, -1, dtype=np.int64)
    matrix = interactions.matrix
    for row, customer in enumerate(np.asarray(customers).tolist()):
        recommended = items[row][items[row] >= 0]
        if len(recommended) == 0:
            continue
        codes[row, : len(recommended)] = ReasonChoices.POPULAR.value
        if customer < 0:
            continue
        start, end = matrix.indptr[customer], matrix.indptr[customer + 1]
        history = np.asarray(matrix.indices[start:end], dtype=np.int64)
        if len(history) == 0:
            continue
        weights = np.asarray(matrix.data[start:end], dtype=np.float64)
        if contributions is None:
            similarity = model._item_similarity(history)[:, recommended]
            contribution = weights[:, None] * similarity
        else:
            contribution = contributions(history, weights, recommended)
        best = np.argmax(contribution, axis=0)
        has_reason = contribution[best, np.arange(len(recommended))] > 0
        codes[row, : len(recommended)] = np.where(
            has_reason, ReasonChoices.BECAUSE_YOU_BOUGHT.value, ReasonChoices.POPULAR.value
        )
        reason_items[row, : len(recommended)] = np.where(has_reason, history[best], -1)
    return Reasons(codes=codes, items=reason_items)
