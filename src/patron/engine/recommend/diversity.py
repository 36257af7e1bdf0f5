"""Diversity re-ranking by maximal marginal relevance.

Carbonell, J. & Goldstein, J. (1998). The use of MMR, diversity-based reranking for
reordering documents and producing summaries. SIGIR '98, 335-336. Each next item maximises

    (1 - lambda) * relevance(i) - lambda * max_{j already chosen} similarity(i, j)

over the candidates, with relevance scaled to [0, 1] over the candidates so that the weight
``lambda`` means the same for every model. ``lambda = 0`` keeps the model's order.
"""

from __future__ import annotations

import numpy as np

from patron.engine.recommend.interactions import FloatArray, IntArray


def mmr_rerank(relevance: FloatArray, similarity: FloatArray, n: int, weight: float) -> IntArray:
    """Positions of up to ``n`` candidates in maximal-marginal-relevance order.

    Parameters
    ----------
    relevance
        The candidates' scores (any scale), shape ``(m,)``.
    similarity
        Item-item similarity among the candidates, shape ``(m, m)``.
    n
        How many to choose.
    weight
        ``lambda`` above, between 0 and 1.
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    count = len(relevance)
    low, high = float(np.min(relevance)), float(np.max(relevance))
    scaled = (relevance - low) / (high - low) if high > low else np.ones(count)
    chosen: list[int] = []
    redundancy = np.zeros(count)
    available = np.ones(count, dtype=bool)
    for _ in range(min(n, count)):
        value = (1.0 - weight) * scaled - weight * redundancy
        value[~available] = -np.inf
        best = int(np.argmax(value))
        chosen.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, similarity[best])
    return np.asarray(chosen, dtype=np.int64)
