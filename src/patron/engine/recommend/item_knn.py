"""Item-to-item neighbours: cosine or BM25-weighted co-occurrence, top ``k`` per item.

Item-based collaborative filtering (Sarwar, Karypis, Konstan & Riedl 2001, "Item-based
collaborative filtering recommendation algorithms", WWW '01; Linden, Smith & York 2003,
"Amazon.com recommendations: item-to-item collaborative filtering", IEEE Internet Computing
7(1)). The similarity of products ``i`` and ``j`` is

* cosine: ``x_i . x_j / (|x_i| |x_j|)`` over their customer columns;
* bm25: ``w_i . x_j`` where ``w`` is the matrix with Okapi BM25 weights (Robertson & Zaragoza
  2009, "The probabilistic relevance framework: BM25 and beyond"), which damps heavy buyers
  and very common products, as in ``implicit``'s ``BM25Recommender``.

Only the ``k`` largest similarities of each item are kept (a sparse item x item matrix). A
customer's score of item ``j`` is ``sum_i h_i s_ij`` over their history ``h`` (the weighted,
decayed interactions), and the reason for ``j`` is the history item with the largest term.
Items no history item neighbours (score 0) are not recommended.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from patron.engine.frames import EngineInputError
from patron.engine.recommend.base import (
    Reasons,
    Recommender,
    history_reasons,
    reject_params,
    top_n,
)
from patron.engine.recommend.interactions import FloatArray, IntArray, Interactions

SIMILARITY_CHUNK = 1_024
"""Items whose similarity column block is computed densely at once (n_items x 1,024)."""


def bm25_weight(matrix: sp.csr_matrix, k1: float = 1.2, b: float = 0.75) -> sp.csr_matrix:
    """Okapi BM25 weights of a customer x item matrix (customers as the 'terms').

    ``idf_c = log(n_items / df_c)`` over the items a customer has, and each cell
    ``x (k1 + 1) / (x + k1 (1 - b + b len_i / avg_len))`` with ``len_i`` the item's total.
    """
    coo = sp.coo_matrix(matrix, dtype=np.float64)
    n_items = matrix.shape[1]
    customer_items = np.bincount(coo.row, minlength=matrix.shape[0]).astype(np.float64)
    idf = np.log(n_items / np.maximum(customer_items, 1.0)) + 1e-12
    item_length = np.bincount(coo.col, weights=coo.data, minlength=n_items)
    average = item_length.mean() if n_items else 1.0
    norm = k1 * (1.0 - b + b * item_length / max(average, 1e-12))
    data = coo.data * (k1 + 1.0) / (coo.data + norm[coo.col]) * idf[coo.row]
    return sp.csr_matrix((data, (coo.row, coo.col)), shape=matrix.shape)


def top_k_similarity(left: sp.csr_matrix, right: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """``left.T @ right`` (item x item) keeping the ``k`` largest of each row, diagonal out.

    Computed by blocks of :data:`SIMILARITY_CHUNK` items, so that the dense block stays
    small whatever the catalogue size.
    """
    left_csc = sp.csc_matrix(left, dtype=np.float32)
    right_csr = sp.csr_matrix(right, dtype=np.float32)
    n_items = left.shape[1]
    k = min(k, max(n_items - 1, 0))
    rows: list[IntArray] = []
    columns: list[IntArray] = []
    values: list[FloatArray] = []
    for start in range(0, n_items, SIMILARITY_CHUNK):
        block_items = np.arange(start, min(start + SIMILARITY_CHUNK, n_items))
        block = np.asarray((left_csc[:, block_items].T @ right_csr).toarray())
        block[np.arange(len(block_items)), block_items] = 0.0
        if k == 0:
            continue
        best = top_n(block, k)
        best_values = np.take_along_axis(block, np.maximum(best, 0), axis=1)
        keep = (best >= 0) & (best_values > 0)
        rows.append(np.repeat(block_items, keep.sum(axis=1)))
        columns.append(best[keep])
        values.append(best_values[keep])
    if not rows:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
        shape=(n_items, n_items),
        dtype=np.float32,
    )


class ItemKNNRecommender(Recommender):
    """Item-to-item nearest neighbours over co-occurrence (see the module docstring).

    Parameters
    ----------
    similarity
        ``"cosine"`` or ``"bm25"``.
    k
        Neighbours kept per item.
    binary_similarity
        Compute the similarity on who has which product (1/0), not on the weights; the
        weights (kind, decay) still weigh the customer's history when scoring. Co-occurrence
        says what goes together whenever it was bought; the decay says what the customer
        wants now.
    bm25_k1, bm25_b
        BM25's saturation and length normalisation (``similarity="bm25"`` only).

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_matrix of shape (n_items, n_items)
        Row ``i`` holds the ``k`` neighbours of item ``i`` and their similarities.
    """

    def __init__(
        self,
        similarity: Literal["cosine", "bm25"] = "cosine",
        k: int = 100,
        binary_similarity: bool = True,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
    ) -> None:
        self.similarity = similarity
        self.k = k
        self.binary_similarity = binary_similarity
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b

    def _fit(self, interactions: Interactions, **params: Any) -> None:
        reject_params(self, params)
        if self.k < 1:
            raise EngineInputError(f"k must be at least 1, got {self.k!r}")
        base = interactions.binary() if self.binary_similarity else interactions.matrix
        base = sp.csr_matrix(base, dtype=np.float64)
        if self.similarity == "cosine":
            norms = np.sqrt(np.asarray(base.multiply(base).sum(axis=0)).ravel())
            norms[norms == 0] = 1.0
            scaled = sp.csr_matrix(base @ sp.diags(1.0 / norms))
            self.similarity_ = top_k_similarity(scaled, scaled, self.k)
        elif self.similarity == "bm25":
            weighted = bm25_weight(base, self.bm25_k1, self.bm25_b)
            self.similarity_ = top_k_similarity(weighted, base, self.k)
        else:
            raise EngineInputError(
                f"similarity must be 'cosine' or 'bm25', got {self.similarity!r}"
            )

    def _score(self, customers: IntArray, customer_ids: Sequence[Hashable]) -> FloatArray:
        matrix = self.interactions_.matrix
        scores = np.full((len(customers), matrix.shape[1]), np.nan)
        known = customers >= 0
        if known.any():
            known_scores = (matrix[customers[known]] @ self.similarity_).toarray()
            # No neighbour in the history is no evidence: such items are not recommended.
            known_scores[known_scores <= 0] = -np.inf
            scores[known] = known_scores
        return scores

    def _item_similarity(self, items: IntArray) -> FloatArray:
        return np.asarray(self.similarity_[items].toarray(), dtype=np.float64)

    def _reasons(
        self, customers: IntArray, customer_ids: Sequence[Hashable], items: IntArray
    ) -> Reasons:
        return history_reasons(
            self,
            customers,
            items,
            lambda history, weights, recommended: (
                weights[:, None] * self.similarity_[history][:, recommended].toarray()
            ),
        )
