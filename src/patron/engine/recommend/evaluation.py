"""Offline evaluation of recommenders on a temporal split.

The protocol (issue 6): train on the events before a cut date, test on the purchases of the
following period. A customer's truth is what they bought in the test period and had not
bought before the cut (re-purchases are easy to predict and say little about discovery);
products first sold after the cut are left out of the truth (no model trained at the cut
can know them). Customers with history before the cut and a non-empty truth are evaluated;
each gets ``k`` recommendations with the items they already have excluded.

Metrics at ``k`` (per customer, then averaged over customers), with ``hits_i = 1`` when the
item at rank ``i`` is in the truth ``T``:

* precision@k = ``sum hits / k``;
* recall@k = ``sum hits / |T|``;
* NDCG@k = ``sum_i hits_i / log2(i + 1)`` divided by its best possible value
  ``sum_{i <= min(|T|, k)} 1 / log2(i + 1)`` (Jarvelin & Kekalainen 2002, "Cumulated gain-based
  evaluation of IR techniques", ACM TOIS 20(4));
* MAP@k = ``sum_i hits_i precision@i / min(|T|, k)``;
* catalogue coverage = distinct items recommended to the evaluated customers / items in
  the training catalogue (Ge, Delgado-Battenfeld & Jannach 2010, "Beyond accuracy", RecSys);
* intra-list diversity = mean over customers of the mean ``1 - cos(i, j)`` over the pairs
  of their list, with ``cos`` the cosine of the items' customer columns in the training data
  (binary), the same for every recommender (Ziegler, McNee, Konstan & Lausen 2005,
  "Improving recommendation lists through topic diversification", WWW).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp
from sklearn.base import clone

from patron.engine.frames import EngineInputError
from patron.engine.recommend.base import Recommender
from patron.engine.recommend.interactions import (
    Holdout,
    IntArray,
    InteractionWeighting,
    build_interactions,
    day_of,
    holdout,
)

METRIC_COLUMNS = (
    "recommender",
    "customers",
    "precision",
    "recall",
    "ndcg",
    "map",
    "coverage",
    "diversity",
    "fit_seconds",
    "recommend_seconds",
)
"""Columns of :func:`evaluate_recommenders` (metrics at ``k``, named without the ``@k``)."""


@dataclass(frozen=True)
class RankingMetrics:
    """Accuracy of top-k lists, averaged over customers."""

    precision: float
    recall: float
    ndcg: float
    map: float


def ranking_metrics(recommended: IntArray, truths: list[IntArray], k: int) -> RankingMetrics:
    """Precision, recall, NDCG and MAP at ``k`` (module docstring) of lists against truths.

    ``recommended`` has one row per customer (item indices, -1 pads); ``truths`` the same
    customers' true items.
    """
    if len(truths) == 0:
        return RankingMetrics(0.0, 0.0, 0.0, 0.0)
    lists = recommended[:, :k]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    precision = recall = ndcg = average_precision = 0.0
    for row, truth in enumerate(truths):
        hits = np.isin(lists[row], truth) & (lists[row] >= 0)
        found = float(hits.sum())
        best = min(len(truth), k)
        precision += found / k
        recall += found / len(truth)
        ndcg += float(discounts[hits[: len(discounts)]].sum() / discounts[:best].sum())
        if found:
            precision_at = np.cumsum(hits) / np.arange(1, len(hits) + 1)
            average_precision += float(precision_at[hits].sum() / best)
    count = len(truths)
    return RankingMetrics(
        precision=precision / count,
        recall=recall / count,
        ndcg=ndcg / count,
        map=average_precision / count,
    )


def intra_list_diversity(recommended: IntArray, matrix: sp.csr_matrix) -> float:
    """Mean pairwise ``1 - cosine`` within each list (binary customer columns of ``matrix``)."""
    binary = sp.csc_matrix(matrix, dtype=np.float64, copy=True)
    binary.data[:] = 1.0
    norms = np.sqrt(np.asarray(binary.sum(axis=0)).ravel())
    norms[norms == 0] = 1.0
    unit = sp.csc_matrix(binary @ sp.diags(1.0 / norms))
    values = []
    for row in recommended:
        items = row[row >= 0]
        if len(items) < 2:
            continue
        block = unit[:, items]
        cosine = np.asarray((block.T @ block).toarray())
        upper = np.triu_indices(len(items), k=1)
        values.append(float(np.mean(1.0 - cosine[upper])))
    return float(np.mean(values)) if values else 0.0


def sample_customers(truth: Mapping[int, IntArray], limit: int | None, seed: int) -> IntArray:
    """Customers of ``truth`` in index order, an evenly random ``limit`` of them if given."""
    customers = np.array(sorted(truth), dtype=np.int64)
    if limit is not None and len(customers) > limit:
        rng = np.random.default_rng(seed)
        customers = np.sort(rng.choice(customers, size=limit, replace=False))
    return customers


def temporal_holdout(
    events: Any,
    cut: dt.date | dt.datetime,
    *,
    test_days: float | None = None,
    weighting: InteractionWeighting | None = None,
) -> Holdout:
    """Build interactions from ``events`` and split them at ``cut`` (see :func:`holdout`).

    The test period runs from ``cut`` for ``test_days`` days (to the end of the data when
    None). The training part is decayed to ``cut``.
    """
    interactions = build_interactions(events, weighting=weighting)
    cut_day = day_of(cut)
    end_day = None if test_days is None else cut_day + test_days
    return holdout(interactions, cut_day, end_day)


def evaluate_recommenders(
    recommenders: Mapping[str, Recommender | tuple[Recommender, InteractionWeighting]],
    split: Holdout,
    *,
    k: int = 10,
    max_customers: int | None = None,
    fit_params: Mapping[str, Mapping[str, Any]] | None = None,
    random_state: int = 0,
) -> pl.DataFrame:
    """Fit each recommender on ``split.train`` and measure its top-``k`` lists.

    Parameters
    ----------
    recommenders
        Name -> recommender (an unfitted estimator; a clone is fitted), or name ->
        ``(recommender, weighting)`` to train it on the same events weighted differently
        (e.g. a baseline on raw counts beside models on decayed interactions).
    split
        The temporal split (:func:`temporal_holdout`).
    k
        List length.
    max_customers
        Evaluate an evenly random sample of at most this many customers (all when None).
    fit_params
        Name -> keyword arguments of that recommender's ``fit`` (``segments``, ``products``).

    Returns
    -------
    polars.DataFrame
        One row per recommender, columns :data:`METRIC_COLUMNS`, in the order given.
    """
    if not recommenders:
        raise EngineInputError("evaluate_recommenders needs at least one recommender")
    customers = sample_customers(split.truth, max_customers, random_state)
    truths = [split.truth[int(c)] for c in customers]
    rows = []
    for name, entry in recommenders.items():
        model, weighting = entry if isinstance(entry, tuple) else (entry, None)
        train = split.train if weighting is None else split.train.reweighted(weighting)
        estimator = clone(model)
        started = time.perf_counter()
        estimator.fit(train, **dict((fit_params or {}).get(name, {})))
        fitted = time.perf_counter()
        recommended, _ = estimator.recommend_indices(customers, k)
        finished = time.perf_counter()
        metrics = ranking_metrics(recommended, truths, k)
        listed = np.unique(recommended[recommended >= 0])
        rows.append(
            {
                "recommender": name,
                "customers": len(customers),
                "precision": metrics.precision,
                "recall": metrics.recall,
                "ndcg": metrics.ndcg,
                "map": metrics.map,
                "coverage": len(listed) / max(split.train.n_items, 1),
                "diversity": intra_list_diversity(recommended, split.train.matrix),
                "fit_seconds": fitted - started,
                "recommend_seconds": finished - fitted,
            }
        )
    return pl.DataFrame(rows).select(METRIC_COLUMNS)
