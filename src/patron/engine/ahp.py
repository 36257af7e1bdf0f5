"""AHP value score: indicator weights from the user's pairwise judgements, a score and tiers.

The Analytic Hierarchy Process (Saaty, T. L., 1980, *The Analytic Hierarchy Process*,
McGraw-Hill; and 1990, "How to make a decision: the analytic hierarchy process", European
Journal of Operational Research 48, 9-26) turns judgements such as "spend matters three times as
much as frequency" into weights: the principal eigenvector of the reciprocal comparison matrix.
Its consistency ratio ``CR = CI / RI`` with ``CI = (lambda_max - n) / (n - 1)`` compares the
judgements' contradiction with that of random matrices (RI); Saaty's rule refuses CR >= 0.1.

Chinese CRM practice ("RFM + AHP" customer value) scores each customer with these weights over
the normalised R, F, M indicators; any per-customer numeric column can join them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import narwhals as nw
import numpy as np
import numpy.typing as npt

from patron.engine.frames import EngineInputError, prepare

RANDOM_INDEX = (
    0.0,
    0.0,
    0.58,
    0.90,
    1.12,
    1.24,
    1.32,
    1.41,
    1.45,
    1.49,
    1.51,
    1.48,
    1.56,
    1.57,
    1.59,
)
"""Saaty's random consistency index RI for n = 1..15 criteria: the mean CI of random reciprocal
matrices. n = 1..10 as published by Saaty (1980) and tabulated in Saaty (1990, section 4);
n = 11..15 from the larger simulation usually quoted with Saaty (1980) (note the dip at 12,
a sampling artefact kept as published). Beyond 15 criteria no index comes with the method and
pairwise judgement stops being reliable (Saaty advises 7 +- 2 elements), so larger matrices
are refused."""

CONSISTENCY_LIMIT = 0.1
RECIPROCAL_TOLERANCE = 1e-6

DEFAULT_VALUE_CRITERIA: MappingProxyType[str, tuple[str, bool]] = MappingProxyType(
    {
        "recency": ("recency_days", False),
        "frequency": ("frequency", True),
        "monetary": ("monetary", True),
        "tenure": ("tenure_days", True),
    }
)
"""Indicator name -> (column of the RFM table, whether a higher value is better)."""

DEFAULT_VALUE_MATRIX: tuple[tuple[float, ...], ...] = (
    # recency  frequency  monetary  tenure
    (1.0, 1 / 2, 1 / 3, 2.0),  # recency
    (2.0, 1.0, 1 / 2, 3.0),  # frequency
    (3.0, 2.0, 1.0, 4.0),  # monetary
    (1 / 2, 1 / 3, 1 / 4, 1.0),  # tenure
)
"""Judgements over :data:`DEFAULT_VALUE_CRITERIA`: spend matters most, then frequency, then
recency, then tenure (weights about 0.47, 0.28, 0.16, 0.10; CR about 0.01)."""


@dataclass(frozen=True)
class ValueTier:
    """A value tier: ``percent`` of the customers, taken in order of score after the tiers
    before it."""

    name: str
    percent: int


DEFAULT_VALUE_TIERS = (
    ValueTier("top", 10),
    ValueTier("high", 20),
    ValueTier("medium", 30),
    ValueTier("low", 40),
)
VALUE_TIERS = tuple(tier.name for tier in DEFAULT_VALUE_TIERS)
"""Codes of the default tiers, best first (display names: analytics/choices.py)."""

SCORE_DECIMALS = 6
"""Scores are rounded so that equal scores tie on every engine (float sums differ in the last
bits with the order of operations)."""


@dataclass(frozen=True)
class AHPResult:
    """Weights derived from a pairwise comparison matrix, and how consistent it is."""

    criteria: tuple[str, ...]
    weights: tuple[float, ...]
    lambda_max: float
    consistency_index: float
    consistency_ratio: float

    def weight(self, criterion: str) -> float:
        """The weight of one criterion."""
        return self.weights[self.criteria.index(criterion)]


class InconsistentMatrixError(EngineInputError):
    """A comparison matrix whose consistency ratio is 0.1 or more; ``result`` holds its
    weights and consistency figures all the same, for the user to look at."""

    def __init__(self, message: str, result: AHPResult) -> None:
        super().__init__(message)
        self.result = result


def _checked_matrix(matrix: Any, criteria: Sequence[str]) -> npt.NDArray[np.float64]:
    try:
        array = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise EngineInputError(f"the comparison matrix must hold numbers: {error}") from error
    size = len(criteria)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise EngineInputError(f"the comparison matrix must be square, got shape {array.shape}")
    if array.shape[0] != size:
        raise EngineInputError(
            f"the comparison matrix is {array.shape[0]}x{array.shape[0]} but there are "
            f"{size} criteria ({', '.join(criteria)})"
        )
    if size == 0:
        raise EngineInputError("the comparison matrix needs at least one criterion")
    if len(set(criteria)) != size:
        raise EngineInputError(f"criteria must be distinct: {', '.join(criteria)}")
    if size > len(RANDOM_INDEX):
        raise EngineInputError(
            f"{size} criteria are too many to compare in pairs (at most {len(RANDOM_INDEX)})"
        )
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise EngineInputError("every judgement in the comparison matrix must be a positive number")
    for i in range(size):
        if abs(array[i, i] - 1.0) > RECIPROCAL_TOLERANCE:
            raise EngineInputError(
                f"the diagonal must be 1 (a criterion is as important as itself): "
                f"{criteria[i]} has {array[i, i]:g}"
            )
        for j in range(i + 1, size):
            implied = 1.0 / array[i, j]
            if abs(array[j, i] - implied) > RECIPROCAL_TOLERANCE * max(array[j, i], implied):
                raise EngineInputError(
                    f"the matrix must be reciprocal: {criteria[i]} over {criteria[j]} is "
                    f"{array[i, j]:g}, so {criteria[j]} over {criteria[i]} must be "
                    f"{implied:g}, not {array[j, i]:g}"
                )
    return array


def ahp_weights(matrix: Any, criteria: Sequence[str]) -> AHPResult:
    """Weights of ``criteria`` from their pairwise comparison ``matrix`` (Saaty's AHP).

    ``matrix[i][j]`` says how many times more important criterion i is than j (Saaty's 1-9
    scale); it must be square, positive, with 1 on the diagonal and reciprocal
    (``matrix[j][i] == 1 / matrix[i][j]`` within a relative 1e-6). The weights are the
    principal eigenvector normalised to sum to 1. Raises :class:`InconsistentMatrixError` when
    the consistency ratio is 0.1 or more; one or two criteria are always consistent (CR 0).
    """
    names = tuple(criteria)
    array = _checked_matrix(matrix, names)
    size = len(names)
    eigenvalues, eigenvectors = np.linalg.eig(array)
    principal = int(np.argmax(eigenvalues.real))
    # Perron-Frobenius: the principal eigenvector of a positive matrix has one sign throughout.
    vector = np.abs(eigenvectors[:, principal].real)
    weights = vector / vector.sum()
    lambda_max = float(eigenvalues[principal].real)
    if size <= 2:
        consistency_index = consistency_ratio = 0.0
    else:
        consistency_index = (lambda_max - size) / (size - 1)
        consistency_ratio = consistency_index / RANDOM_INDEX[size - 1]
    result = AHPResult(
        criteria=names,
        weights=tuple(float(weight) for weight in weights),
        lambda_max=lambda_max,
        consistency_index=float(consistency_index),
        consistency_ratio=float(consistency_ratio),
    )
    if consistency_ratio >= CONSISTENCY_LIMIT:
        # The judgement furthest from what the weights imply is the first one to revisit.
        worst_i, worst_j = max(
            ((i, j) for i in range(size) for j in range(i + 1, size)),
            key=lambda pair: abs(math.log(array[pair] * weights[pair[1]] / weights[pair[0]])),
        )
        raise InconsistentMatrixError(
            f"the comparison matrix is too inconsistent to use: its consistency ratio is "
            f"{consistency_ratio:.3f}, and AHP accepts less than {CONSISTENCY_LIMIT:g}. Revise "
            f"the judgements that contradict each other; the furthest off is "
            f"{names[worst_i]} over {names[worst_j]}: judged {array[worst_i, worst_j]:.3g}, while "
            f"the weights drawn from all the judgements imply about "
            f"{weights[worst_i] / weights[worst_j]:.3g}.",
            result,
        )
    return result


def _checked_tiers(tiers: Sequence[ValueTier]) -> tuple[ValueTier, ...]:
    checked = tuple(tiers)
    if (
        not checked
        or any(not isinstance(tier, ValueTier) or tier.percent <= 0 for tier in checked)
        or sum(tier.percent for tier in checked) != 100
    ):
        raise EngineInputError(
            "tiers must be ValueTier(name, percent) with positive percents summing to 100"
        )
    if len({tier.name for tier in checked}) != len(checked):
        raise EngineInputError("tier names must be distinct")
    return checked


def value_scores(
    table: Any,
    matrix: Any = None,
    criteria: Mapping[str, tuple[str, bool]] | None = None,
    tiers: Sequence[ValueTier] = DEFAULT_VALUE_TIERS,
) -> Any:
    """AHP value score (0..100) and value tier per customer of a per-customer ``table``.

    ``criteria`` maps indicator names to (column, higher is better), in the order of the rows
    of ``matrix`` (defaults: :data:`DEFAULT_VALUE_CRITERIA` over :func:`rfm_table`'s columns
    and :data:`DEFAULT_VALUE_MATRIX`). Each indicator is normalised to its percentile rank,
    ``(rank - 1) / (n - 1)`` with tied values sharing their average rank (0.5 for a single
    customer), inverted when lower is better: ranks are robust to the long tail of spend, where
    min-max scaling would squeeze everyone but a few whales to zero, and they put indicators in
    days, orders and money on one scale. A missing value counts as the worst.
    ``value_score = 100 * sum(weight * normalised)``. Tiers take the customers in order of
    score, best first (ties by ``customer_id``): the first 10% ``top``, the next 20% ``high``,
    the next 30% ``medium``, the rest ``low`` (or the given ``tiers``).
    Columns ``customer_id, value_score, value_tier``, sorted by customer; the caller's kind.
    """
    if criteria is None:
        criteria = DEFAULT_VALUE_CRITERIA
    if matrix is None:
        if tuple(criteria) != tuple(DEFAULT_VALUE_CRITERIA):
            raise EngineInputError(
                "give a comparison matrix for the criteria " + ", ".join(criteria)
            )
        matrix = DEFAULT_VALUE_MATRIX
    checked_tiers = _checked_tiers(tiers)
    result = ahp_weights(matrix, tuple(criteria))
    columns = [column for column, _ in criteria.values()]
    prepared = prepare(table, ["customer_id", *columns], "value indicators")
    schema = prepared.frame.collect_schema()
    not_numeric = [column for column in columns if not schema[column].is_numeric()]
    if not_numeric:
        raise EngineInputError(
            "value indicators must be numeric; not numeric: "
            + ", ".join(f"{column} ({schema[column]})" for column in not_numeric)
        )
    count = nw.len()
    score: nw.Expr = nw.lit(0.0)
    for weight, (column, higher_is_better) in zip(result.weights, criteria.values(), strict=True):
        percentile = (
            nw.when(count > 1)
            .then((nw.col(column).rank(method="average") - 1) / (count - 1))
            .otherwise(nw.lit(0.5))
        )
        normalised = percentile if higher_is_better else 1 - percentile
        score = score + weight * normalised.fill_null(0.0)
    position = nw.col("customer_id").cum_count().over(order_by=["score_order", "customer_id"])
    *firsts, last = checked_tiers
    tier: nw.Expr = nw.lit(last.name, dtype=nw.String)
    cumulative = 100 - last.percent
    for value_tier in reversed(firsts):
        # Integer arithmetic: position p is in the first c percent when (p - 1) * 100 < c * n.
        tier = (
            nw.when((nw.col("position") - 1) * 100 < cumulative * count)
            .then(nw.lit(value_tier.name, dtype=nw.String))
            .otherwise(tier)
        )
        cumulative -= value_tier.percent
    scores = (
        prepared.frame.select(
            nw.col("customer_id"), (100 * score).round(SCORE_DECIMALS).alias("value_score")
        )
        .with_columns((-nw.col("value_score")).alias("score_order"))
        .with_columns(position.alias("position"))
        .with_columns(tier.alias("value_tier"))
        .select("customer_id", "value_score", "value_tier")
        .sort("customer_id")
    )
    return prepared.output(scores)
