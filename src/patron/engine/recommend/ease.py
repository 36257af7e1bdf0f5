"""EASE: the closed-form item-item linear model of Steck (2019).

Steck, H. (2019). Embarrassingly shallow autoencoders for sparse data. The Web Conference
(WWW '19), 3251-3257. With the Gram matrix ``G = X'X + lambda I`` and ``P = G^-1``, the item
weights are ``B_ij = -P_ij / P_jj`` for ``i != j`` and ``B_jj = 0`` (the paper's equation 8);
a customer's scores are ``x_u B``. It is a dense ``n_items x n_items`` model: fine for a
catalogue of a few thousand to ~20,000 products (3 GB of float64 at 20,000), refused above
``max_items``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import scipy.linalg

from patron.engine.frames import EngineInputError
from patron.engine.recommend.base import Reasons, Recommender, history_reasons, reject_params
from patron.engine.recommend.interactions import FloatArray, IntArray, Interactions


class EASERecommender(Recommender):
    """Item-item regression with a zero diagonal, solved in closed form (see the module).

    Parameters
    ----------
    l2
        The ridge penalty ``lambda`` (Steck found a few hundred best on his data sets).
    max_items
        Refuse catalogues larger than this (the model is a dense square matrix).

    Attributes
    ----------
    weights_ : ndarray of shape (n_items, n_items)
        ``B``; row ``i`` says how much having item ``i`` predicts every other item.
    """

    def __init__(self, l2: float = 300.0, max_items: int = 20_000) -> None:
        self.l2 = l2
        self.max_items = max_items

    def _fit(self, interactions: Interactions, **params: Any) -> None:
        reject_params(self, params)
        if interactions.n_items > self.max_items:
            raise EngineInputError(
                f"EASE keeps a dense {interactions.n_items} x {interactions.n_items} matrix; "
                f"catalogues above max_items={self.max_items} are refused"
            )
        matrix = interactions.matrix.astype(np.float64)
        gram = np.asarray((matrix.T @ matrix).toarray())
        gram[np.diag_indices_from(gram)] += self.l2
        inverse = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
        weights = -inverse / np.diag(inverse)[None, :]
        np.fill_diagonal(weights, 0.0)
        self.weights_ = weights.astype(np.float32)

    def _score(self, customers: IntArray, customer_ids: Sequence[Hashable]) -> FloatArray:
        matrix = self.interactions_.matrix
        scores = np.full((len(customers), matrix.shape[1]), np.nan)
        known = customers >= 0
        if known.any():
            scores[known] = matrix[customers[known]] @ self.weights_
        return scores

    def _item_similarity(self, items: IntArray) -> FloatArray:
        return np.asarray(self.weights_[items], dtype=np.float64)

    def _reasons(
        self, customers: IntArray, customer_ids: Sequence[Hashable], items: IntArray
    ) -> Reasons:
        return history_reasons(
            self,
            customers,
            items,
            lambda history, weights, recommended: (
                weights[:, None] * self.weights_[np.ix_(history, recommended)]
            ),
        )
