"""Implicit-feedback matrix factorisation with the ``implicit`` library: ALS and BPR.

* ALS: Hu, Koren & Volinsky (2008), "Collaborative filtering for implicit feedback
  datasets", ICDM, with the conjugate-gradient solver of Takacs, Pilaszy & Tikk (2011),
  "Applications of the conjugate gradient method for implicit feedback collaborative
  filtering", RecSys. A cell's confidence is ``1 + alpha * weight``.
* BPR: Rendle, Freudenthaler, Gantner & Schmidt-Thieme (2009), "BPR: Bayesian personalized
  ranking from implicit feedback", UAI.

The defaults are ``implicit``'s own (0.7), so ``ALSRecommender()`` is "ALS with its default
settings". ``bm25=True`` feeds the model BM25-weighted interactions instead of the raw
weights (:func:`patron.engine.recommend.item_knn.bm25_weight`), which damps heavy buyers.

Training runs on the CPU build of ``implicit`` with ``num_threads`` threads (0: one per core
the process may use) while the BLAS library is held to one thread: ``implicit`` parallelises
over customers itself, and a multi-threaded BLAS underneath oversubscribes the cores.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from patron.engine.recommend.base import Recommender, reject_params
from patron.engine.recommend.interactions import FloatArray, IntArray, Interactions
from patron.engine.recommend.item_knn import bm25_weight


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class _FactorModel(Recommender):
    """Shared scoring of factor models: ``user_factors_ @ item_factors_.T``."""

    bm25: bool
    bm25_k1: float
    bm25_b: float
    num_threads: int
    user_factors_: FloatArray
    item_factors_: FloatArray

    def _training_matrix(self, interactions: Interactions) -> sp.csr_matrix:
        if self.bm25:
            return sp.csr_matrix(
                bm25_weight(interactions.matrix, self.bm25_k1, self.bm25_b), dtype=np.float32
            )
        return interactions.matrix

    def _threads(self) -> int:
        return self.num_threads if self.num_threads > 0 else available_cores()

    def _train(self, factory: Any, settings: dict[str, Any], interactions: Interactions) -> None:
        # implicit checks the BLAS thread count when the model is built: limit it first.
        with threadpool_limits(limits=1, user_api="blas"):
            model = factory(**settings, num_threads=self._threads())
            model.fit(self._training_matrix(interactions), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)
        norms = np.linalg.norm(self.item_factors_, axis=1)
        norms[norms == 0] = 1.0
        self.unit_item_factors_ = self.item_factors_ / norms[:, None]

    def _score(self, customers: IntArray, customer_ids: Sequence[Hashable]) -> FloatArray:
        scores = np.full((len(customers), self.item_factors_.shape[0]), np.nan)
        known = customers >= 0
        if known.any():
            scores[known] = self.user_factors_[customers[known]] @ self.item_factors_.T
        return scores

    def _item_similarity(self, items: IntArray) -> FloatArray:
        """Cosine of the item factors."""
        return np.asarray(
            self.unit_item_factors_[items] @ self.unit_item_factors_.T, dtype=np.float64
        )


class ALSRecommender(_FactorModel):
    """Alternating least squares for implicit feedback (``implicit.cpu.als``).

    Parameters
    ----------
    factors, regularization, alpha, iterations, random_state
        Those of ``implicit.als.AlternatingLeastSquares`` (defaults: implicit's).
    bm25, bm25_k1, bm25_b
        Train on BM25-weighted interactions.
    num_threads
        Threads for training (0: one per available core).

    Attributes
    ----------
    user_factors_ : ndarray of shape (n_customers, factors)
    item_factors_ : ndarray of shape (n_items, factors)
    """

    def __init__(
        self,
        factors: int = 100,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        bm25: bool = False,
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        random_state: int | None = None,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.bm25 = bm25
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.random_state = random_state
        self.num_threads = num_threads

    def _fit(self, interactions: Interactions, **params: Any) -> None:
        reject_params(self, params)
        from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped]

        settings = {
            "factors": self.factors,
            "regularization": self.regularization,
            "alpha": self.alpha,
            "iterations": self.iterations,
            "random_state": self.random_state,
        }
        self._train(AlternatingLeastSquares, settings, interactions)


class BPRRecommender(_FactorModel):
    """Bayesian personalised ranking (``implicit.cpu.bpr``); factors include an item bias.

    Parameters
    ----------
    factors, learning_rate, regularization, iterations, random_state
        Those of ``implicit.bpr.BayesianPersonalizedRanking`` (defaults: implicit's).
    bm25, bm25_k1, bm25_b
        Train on BM25-weighted interactions (BPR only uses which cells are positive).
    num_threads
        Threads for training (0: one per available core).
    """

    def __init__(
        self,
        factors: int = 100,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        bm25: bool = False,
        bm25_k1: float = 100.0,
        bm25_b: float = 0.8,
        random_state: int | None = None,
        num_threads: int = 0,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.bm25 = bm25
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.random_state = random_state
        self.num_threads = num_threads

    def _fit(self, interactions: Interactions, **params: Any) -> None:
        reject_params(self, params)
        from implicit.cpu.bpr import BayesianPersonalizedRanking  # type: ignore[import-untyped]

        settings = {
            "factors": self.factors,
            "learning_rate": self.learning_rate,
            "regularization": self.regularization,
            "iterations": self.iterations,
            "random_state": self.random_state,
        }
        self._train(BayesianPersonalizedRanking, settings, interactions)
