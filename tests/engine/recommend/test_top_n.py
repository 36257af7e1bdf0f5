"""top_n: the n largest finite scores per row, on narrow and on wide (blocked) rows."""

from __future__ import annotations

import numpy as np
import pytest

from patron.engine.recommend.base import TOP_N_BLOCK, top_n


def _expected_values(scores: np.ndarray, n: int) -> np.ndarray:
    finite = np.where(np.isfinite(scores), scores, -np.inf)
    ordered = np.full((len(scores), n), np.nan)
    best = -np.sort(-finite, axis=1)[:, :n]
    ordered[:, : best.shape[1]] = np.where(np.isfinite(best), best, np.nan)
    return ordered


@pytest.mark.parametrize("n_columns", [7, 100, 40 * TOP_N_BLOCK, 40 * TOP_N_BLOCK + 13])
def test_top_n_returns_the_largest_finite_scores_best_first(n_columns: int) -> None:
    # given scores with ties, unscored (NaN) and excluded (-inf) cells, and a row with
    # fewer finite scores than asked
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 50, size=(6, n_columns)).astype(np.float64)
    scores[rng.random(scores.shape) < 0.2] = np.nan
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    scores[5] = -np.inf
    scores[5, :3] = [2.0, np.nan, 1.0]

    # when
    best = top_n(scores, 10)

    # then the chosen columns are distinct and hold the 10 largest values, in order
    values = np.where(best >= 0, np.take_along_axis(scores, np.maximum(best, 0), 1), np.nan)
    np.testing.assert_array_equal(values, _expected_values(scores, 10))
    for row in best:
        chosen = row[row >= 0]
        assert len(set(chosen.tolist())) == len(chosen)
    assert best[5].tolist() == [0, 2] + [-1] * 8
