"""Interactions: who did what with which product, as a weighted customer x item matrix.

The recommenders learn from one sparse matrix whose rows are customers and whose columns are
products. Each event adds ``kind weight x quantity factor x time decay`` to its cell:

* the kind weight says how much an event tells about a taste (a purchase more than a cart,
  a cart more than a view), set per ``event_type`` in :class:`InteractionWeighting`;
* the quantity factor is 1, or ``1 + log(quantity)`` when quantities are asked for (a
  wholesaler's 1,000 units should not drown a customer's single purchase);
* the decay halves an event's weight every ``half_life_days`` before the reference time, so
  that last month's tastes count more than last year's (exponential forgetting, as in Ding &
  Li 2005, "Time weight collaborative filtering", CIKM).

Cancelled, refunded and returned order lines are not interactions: the caller leaves them out
of ``events`` before calling :func:`build_interactions` (the ``recommend`` app reads only paid
lines; an evaluation drops Online Retail's ``C`` invoices). The same applies to customers who
did not consent to profiling.

The :class:`Interactions` keeps its events (indices, kind weights, times), so that it can be
weighted again (:meth:`Interactions.reweighted`) or cut at a date into a training part and a
held-out truth (:func:`holdout`) without going back to the table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import narwhals as nw
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from patron.engine.frames import EngineInputError, collect, day_number, prepare

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EVENT_COLUMNS = ("customer_id", "product_id", "occurred_at")
"""Columns an events table must have; ``event_type`` and ``quantity`` are optional."""

PURCHASE = "purchase"
ADD_TO_CART = "add_to_cart"
VIEW = "view"

DEFAULT_KIND_WEIGHTS: Mapping[str, float] = {PURCHASE: 1.0, ADD_TO_CART: 0.3, VIEW: 0.1}
"""Weights per ``event_type``; a type missing from the mapping counts for nothing."""

_EPOCH = dt.datetime(1970, 1, 1)


@dataclass(frozen=True)
class InteractionWeighting:
    """How events become cell values of the interaction matrix.

    Parameters
    ----------
    kind_weights
        Weight of one event of each ``event_type``. Types not named weigh 0 and are dropped.
    half_life_days
        An event ``a`` days before the reference time weighs ``0.5 ** (a / half_life_days)``
        of a fresh one; ``None`` switches the decay off.
    quantity
        ``"ignore"``: every event counts once; ``"log"``: an event of ``q`` units counts
        ``1 + log(q)`` times (``q`` below 1 counts as 1).
    """

    kind_weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_KIND_WEIGHTS))
    half_life_days: float | None = None
    quantity: Literal["ignore", "log"] = "ignore"

    def __post_init__(self) -> None:
        if self.half_life_days is not None and not self.half_life_days > 0:
            raise EngineInputError(
                f"half_life_days must be positive or None, got {self.half_life_days!r}"
            )
        if self.quantity not in ("ignore", "log"):
            raise EngineInputError(f"quantity must be 'ignore' or 'log', got {self.quantity!r}")
        negative = [kind for kind, weight in self.kind_weights.items() if weight < 0]
        if negative:
            raise EngineInputError(f"kind_weights must not be negative: {', '.join(negative)}")


@dataclass(frozen=True)
class EventArrays:
    """Events as parallel arrays: one entry per event row of the table."""

    customer: IntArray
    """Row index of the event's customer."""
    item: IntArray
    """Column index of the event's product."""
    kind: npt.NDArray[np.object_]
    """The event's ``event_type``."""
    quantity: FloatArray
    """Units on the event (1 where the table has no quantity)."""
    day: FloatArray
    """Time of the event in (fractional) days since 1970-01-01."""

    def __len__(self) -> int:
        return len(self.customer)

    def take(self, mask: npt.NDArray[np.bool_]) -> EventArrays:
        """The events where ``mask`` is true."""
        return EventArrays(
            customer=self.customer[mask],
            item=self.item[mask],
            kind=self.kind[mask],
            quantity=self.quantity[mask],
            day=self.day[mask],
        )


@dataclass(frozen=True)
class Interactions:
    """A weighted customer x item matrix, its id <-> index mappings and the events behind it.

    ``matrix[c, i]`` is the summed weight of customer ``customer_ids[c]``'s events on product
    ``item_ids[i]`` (float32 CSR, explicit zeros removed). ``reference_day`` is the time the
    decay counts back from, in days since 1970-01-01.
    """

    matrix: sp.csr_matrix
    customer_ids: npt.NDArray[np.object_]
    item_ids: npt.NDArray[np.object_]
    events: EventArrays
    weighting: InteractionWeighting
    reference_day: float

    @property
    def n_customers(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def customer_index(self) -> dict[Hashable, int]:
        """Customer id -> row index."""
        return {customer: index for index, customer in enumerate(self.customer_ids.tolist())}

    @property
    def item_index(self) -> dict[Hashable, int]:
        """Product id -> column index."""
        return {item: index for index, item in enumerate(self.item_ids.tolist())}

    def seen_items(self, customer: int) -> IntArray:
        """Column indices of the products customer row ``customer`` interacted with."""
        start, end = self.matrix.indptr[customer], self.matrix.indptr[customer + 1]
        return np.asarray(self.matrix.indices[start:end], dtype=np.int64)

    def binary(self) -> sp.csr_matrix:
        """The matrix with every stored cell set to 1."""
        ones = self.matrix.copy()
        ones.data = np.ones_like(ones.data)
        return ones

    def reweighted(
        self, weighting: InteractionWeighting, reference_day: float | None = None
    ) -> Interactions:
        """The same events weighted by ``weighting`` (at ``reference_day``, or the same one)."""
        day = self.reference_day if reference_day is None else reference_day
        matrix = _weighted_matrix(self.events, weighting, day, self.matrix.shape)
        return replace(self, matrix=matrix, weighting=weighting, reference_day=day)


def day_of(moment: dt.date | dt.datetime) -> float:
    """Fractional days since 1970-01-01 of a date (its midnight) or a naive/aware datetime.

    An aware datetime is read as its UTC wall clock; a naive one as it stands.
    """
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        return (moment - _EPOCH).total_seconds() / 86_400.0
    if isinstance(moment, dt.date):
        return float((moment - _EPOCH.date()).days)
    raise EngineInputError(f"expected a date or datetime, got {type(moment).__name__}")


def build_interactions(
    events: Any,
    *,
    weighting: InteractionWeighting | None = None,
    reference_date: dt.date | dt.datetime | None = None,
    items: Iterable[Hashable] | None = None,
) -> Interactions:
    """Turn an events table into a weighted customer x item matrix.

    Parameters
    ----------
    events
        A dataframe (Polars, pandas, PySpark, anything Narwhals reads) with ``customer_id``,
        ``product_id`` and ``occurred_at`` (date or datetime), and optionally ``event_type``
        (``purchase``, ``add_to_cart``, ``view``, ...; all purchases when absent) and
        ``quantity``. Rows with a null customer or product are refused. Cancelled, refunded
        and returned lines must already be left out.
    weighting
        Kind weights, time decay and quantity handling; :class:`InteractionWeighting` by
        default (purchase 1, cart 0.3, view 0.1, no decay).
    reference_date
        The decay counts back from here; events after it are dropped. Default: the latest
        event. A date means its midnight (the start of that day).
    items
        Product ids to give a column even without events (new products, so that a content
        recommender can suggest them), listed first in this order.

    Returns
    -------
    Interactions
        Customers in order of first appearance, products in the order of ``items`` then of
        first appearance.
    """
    weighting = InteractionWeighting() if weighting is None else weighting
    prepared = prepare(events, EVENT_COLUMNS, "events")
    frame = prepared.frame
    names = frame.collect_schema().names()
    schema = frame.collect_schema()
    moment = nw.col("occurred_at")
    day = day_number(moment).cast(nw.Float64)
    if schema["occurred_at"] != nw.Date:
        day = (
            day
            + moment.dt.hour().cast(nw.Float64) / 24.0
            + moment.dt.minute().cast(nw.Float64) / 1_440.0
            + moment.dt.second().cast(nw.Float64) / 86_400.0
        )
    columns = [
        nw.col("customer_id"),
        nw.col("product_id"),
        day.alias("day"),
        (nw.col("event_type") if "event_type" in names else nw.lit(PURCHASE)).alias("kind"),
        (nw.col("quantity").cast(nw.Float64) if "quantity" in names else nw.lit(1.0)).alias(
            "quantity"
        ),
    ]
    table = collect(frame.select(columns))
    customers = table["customer_id"].to_numpy()
    products = table["product_id"].to_numpy()
    for name, values in (
        ("customer_id", table["customer_id"]),
        ("product_id", table["product_id"]),
    ):
        missing = int(values.null_count())
        if missing:
            raise EngineInputError(f"events: {missing} row(s) have no {name}")
    if int(table["day"].null_count()):
        raise EngineInputError(f"events: {table['day'].null_count()} row(s) have no occurred_at")
    days = table["day"].to_numpy().astype(np.float64)
    kinds = _shared_strings(table["kind"])
    quantities = np.nan_to_num(table["quantity"].to_numpy().astype(np.float64), nan=1.0)

    del table  # its columns are copied out: 20 million events hold 600 MB in it

    reference_day = float(days.max()) if reference_date is None else day_of(reference_date)
    if reference_date is None and len(days) == 0:
        reference_day = 0.0
    keep = days <= reference_day
    if not keep.all():
        # Only when some events are after the reference day: a copy of every column.
        customers, products = customers[keep], products[keep]
        kinds, quantities, days = kinds[keep], quantities[keep], days[keep]
    customer_ids, customer_codes = _encode(customers, ())
    del customers
    item_ids, item_codes = _encode(products, () if items is None else tuple(items))
    del products
    arrays = EventArrays(
        customer=customer_codes,
        item=item_codes,
        kind=kinds,
        quantity=quantities,
        day=days,
    )
    shape = (len(customer_ids), len(item_ids))
    return Interactions(
        matrix=_weighted_matrix(arrays, weighting, reference_day, shape),
        customer_ids=customer_ids,
        item_ids=item_ids,
        events=arrays,
        weighting=weighting,
        reference_day=reference_day,
    )


def _shared_strings(values: Any) -> npt.NDArray[np.object_]:
    """An object array of a column with few distinct values, one Python object per value.

    ``Series.to_numpy()`` makes one string object per row: 20 million events of one kind
    would hold a gigabyte of identical strings.
    """
    kinds = np.empty(len(values), dtype=object)
    for value in values.unique().to_list():
        if value is not None:
            kinds[(values == value).fill_null(False).to_numpy()] = value
    return kinds


def _encode(
    values: npt.NDArray[Any], first: tuple[Hashable, ...]
) -> tuple[npt.NDArray[np.object_], IntArray]:
    """Ids in order of first appearance (after ``first``) and each value's code."""
    index: dict[Hashable, int] = {}
    for value in first:
        index.setdefault(value, len(index))
    if values.dtype.kind in "iub" and len(values):
        # Integer ids: sort once (numpy) instead of a dictionary look-up per event.
        uniques, first_seen, inverse = np.unique(values, return_index=True, return_inverse=True)
        order = np.argsort(first_seen, kind="stable")
        unique_codes = np.empty(len(uniques), dtype=np.int64)
        for position, value in zip(order.tolist(), uniques[order].tolist(), strict=True):
            code = index.get(value)
            if code is None:
                code = index[value] = len(index)
            unique_codes[position] = code
        codes = unique_codes[inverse.ravel()]
    else:
        codes = np.empty(len(values), dtype=np.int64)
        for position, value in enumerate(values.tolist()):
            code = index.get(value)
            if code is None:
                code = index[value] = len(index)
            codes[position] = code
    ids = np.empty(len(index), dtype=object)
    ids[:] = list(index)
    return ids, codes


def event_weights(
    events: EventArrays, weighting: InteractionWeighting, reference_day: float
) -> FloatArray:
    """The weight of every event under ``weighting`` at ``reference_day``."""
    kind_weight = np.zeros(len(events), dtype=np.float64)
    for kind, weight in weighting.kind_weights.items():
        kind_weight[events.kind == kind] = weight
    if weighting.quantity == "log":
        kind_weight *= 1.0 + np.log(np.maximum(events.quantity, 1.0))
    if weighting.half_life_days is not None:
        age = np.maximum(reference_day - events.day, 0.0)
        kind_weight *= np.exp2(-age / weighting.half_life_days)
    return kind_weight


def _weighted_matrix(
    events: EventArrays,
    weighting: InteractionWeighting,
    reference_day: float,
    shape: tuple[int, int],
) -> sp.csr_matrix:
    weights = event_weights(events, weighting, reference_day)
    matrix = sp.csr_matrix((weights, (events.customer, events.item)), shape=shape, dtype=np.float64)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return sp.csr_matrix(matrix, dtype=np.float32)


@dataclass(frozen=True)
class Holdout:
    """A temporal split of interactions: what was known at the cut and what came after."""

    train: Interactions
    """Events before the cut, decayed to the cut; only customers and products seen by then."""
    truth: dict[int, IntArray]
    """Train customer index -> train item indices purchased in the test window and not
    bought before the cut (customers with nothing new are left out)."""


def holdout(
    interactions: Interactions,
    cut_day: float,
    end_day: float | None = None,
    *,
    truth_kinds: tuple[str, ...] = (PURCHASE,),
) -> Holdout:
    """Split ``interactions`` at ``cut_day`` (days since 1970-01-01, see :func:`day_of`).

    The training part holds the events before the cut, weighted as ``interactions`` at the
    cut, re-indexed to the customers and products seen before it. The truth of a customer is
    the products of their ``truth_kinds`` events in ``[cut_day, end_day)`` that they had not
    bought (had no ``truth_kinds`` event on) before the cut; products first seen after the
    cut cannot be recommended by a model trained at the cut and are left out.
    """
    events = interactions.events
    before = events.day < cut_day
    after = (events.day >= cut_day) & np.isin(events.kind, truth_kinds)
    if end_day is not None:
        after &= events.day < end_day
    train_events = events.take(before)
    customers, customer_codes = np.unique(train_events.customer, return_inverse=True)
    items, item_codes = np.unique(train_events.item, return_inverse=True)
    arrays = replace(
        train_events,
        customer=customer_codes.astype(np.int64),
        item=item_codes.astype(np.int64),
    )
    shape = (len(customers), len(items))
    train = Interactions(
        matrix=_weighted_matrix(arrays, interactions.weighting, cut_day, shape),
        customer_ids=interactions.customer_ids[customers],
        item_ids=interactions.item_ids[items],
        events=arrays,
        weighting=interactions.weighting,
        reference_day=cut_day,
    )
    customer_map = np.full(interactions.n_customers, -1, dtype=np.int64)
    customer_map[customers] = np.arange(len(customers))
    item_map = np.full(interactions.n_items, -1, dtype=np.int64)
    item_map[items] = np.arange(len(items))
    test_customer = customer_map[events.customer[after]]
    test_item = item_map[events.item[after]]
    known = (test_customer >= 0) & (test_item >= 0)
    pairs = np.unique(np.stack([test_customer[known], test_item[known]]), axis=1)
    bought_before = np.isin(arrays.kind, truth_kinds)
    seen = sp.csr_matrix(
        (
            np.ones(int(bought_before.sum())),
            (arrays.customer[bought_before], arrays.item[bought_before]),
        ),
        shape=shape,
    )
    truth: dict[int, IntArray] = {}
    if pairs.size:
        is_new = np.asarray(seen[pairs[0], pairs[1]]).ravel() == 0
        pairs = pairs[:, is_new]
        boundaries = np.flatnonzero(np.diff(pairs[0])) + 1
        for customer_items, customer in zip(
            np.split(pairs[1], boundaries), pairs[0][np.r_[0, boundaries]], strict=False
        ):
            if len(customer_items):
                truth[int(customer)] = customer_items.astype(np.int64)
    return Holdout(train=train, truth=truth)
