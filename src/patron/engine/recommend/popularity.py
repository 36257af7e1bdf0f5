"""Popularity, overall and per customer segment: the cold-start recommender and the baseline."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from patron.engine.frames import EngineInputError
from patron.engine.recommend.base import ReasonChoices, Reasons, Recommender, reject_params
from patron.engine.recommend.interactions import FloatArray, IntArray, Interactions


class PopularityRecommender(Recommender):
    """Recommends the most popular products, in the customer's segment where it has one.

    Parameters
    ----------
    measure
        ``"customers"``: popularity is the number of distinct customers with the product (the
        usual baseline; weights and decay play no part); ``"weight"``: the summed interaction
        weight, so that with a time decay it favours what sells now (trending).
    min_segment_customers
        A segment with fewer customers falls back to the overall ranking.

    Fit parameters
    --------------
    segments
        Mapping customer id -> segment (RFM segment, tier, region ...). A customer of a known
        segment gets that segment's ranking ("popular in your segment"), even one without
        history; the others the overall ranking ("popular").

    Attributes
    ----------
    popularity_ : ndarray of shape (n_items,)
        Overall popularity.
    segment_popularity_ : dict
        Segment -> popularity array, for segments with at least ``min_segment_customers``.
    segments_ : dict
        The customer -> segment mapping used.
    """

    def __init__(
        self,
        measure: Literal["customers", "weight"] = "customers",
        min_segment_customers: int = 20,
    ) -> None:
        self.measure = measure
        self.min_segment_customers = min_segment_customers

    def _fit(
        self,
        interactions: Interactions,
        segments: Mapping[Hashable, Hashable] | None = None,
        **params: Any,
    ) -> None:
        reject_params(self, params)
        if self.measure not in ("customers", "weight"):
            raise EngineInputError(f"measure must be 'customers' or 'weight', got {self.measure!r}")
        matrix = interactions.binary() if self.measure == "customers" else interactions.matrix
        self.popularity_ = np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel()
        self.segments_ = dict(segments or {})
        self.segment_popularity_: dict[Hashable, FloatArray] = {}
        if self.segments_:
            labels = np.array(
                [self.segments_.get(c) for c in interactions.customer_ids.tolist()], dtype=object
            )
            for segment in {s for s in labels.tolist() if s is not None}:
                members = np.flatnonzero(labels == segment)
                if len(members) >= self.min_segment_customers:
                    self.segment_popularity_[segment] = np.asarray(
                        matrix[members].sum(axis=0), dtype=np.float64
                    ).ravel()

    def _segment_of(self, customer_id: Hashable) -> Hashable | None:
        segment = self.segments_.get(customer_id)
        return segment if segment in self.segment_popularity_ else None

    def _score(self, customers: IntArray, customer_ids: Sequence[Hashable]) -> FloatArray:
        scores = np.tile(self.popularity_, (len(customers), 1))
        for row, customer_id in enumerate(customer_ids):
            segment = self._segment_of(customer_id)
            if segment is not None:
                scores[row] = self.segment_popularity_[segment]
        # A product nobody has is not popular: it is not recommended at all.
        scores[scores <= 0] = -np.inf
        return scores

    def _reasons(
        self, customers: IntArray, customer_ids: Sequence[Hashable], items: IntArray
    ) -> Reasons:
        codes = np.full(items.shape, None, dtype=object)
        for row, customer_id in enumerate(customer_ids):
            code = (
                ReasonChoices.POPULAR_IN_SEGMENT
                if self._segment_of(customer_id) is not None
                else ReasonChoices.POPULAR
            )
            codes[row, items[row] >= 0] = code.value
        return Reasons(codes=codes, items=np.full(items.shape, -1, dtype=np.int64))

    def fit(
        self,
        interactions: Interactions,
        segments: Mapping[Hashable, Hashable] | None = None,
        **params: Any,
    ) -> PopularityRecommender:
        """Count popularity overall and per segment (see the class docstring)."""
        return super().fit(interactions, segments=segments, **params)
