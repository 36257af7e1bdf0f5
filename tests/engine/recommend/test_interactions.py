"""Interactions: kind weights, quantities, time decay, mappings and the temporal holdout."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from patron.engine.frames import EngineInputError
from patron.engine.recommend import InteractionWeighting, build_interactions, day_of, holdout

NOW = dt.datetime(2024, 6, 1)


def events() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b"],
            "product_id": ["p1", "p1", "p2", "p2", "p3"],
            "event_type": ["purchase", "view", "add_to_cart", "purchase", "search"],
            "occurred_at": [
                NOW,
                NOW,
                NOW - dt.timedelta(days=10),
                NOW - dt.timedelta(days=20),
                NOW,
            ],
            "quantity": [3, 1, 1, 1, 1],
        }
    )


def test_kind_weights_add_up_per_cell_and_unknown_kinds_are_dropped() -> None:
    interactions = build_interactions(events())

    assert interactions.customer_ids.tolist() == ["a", "b"]
    assert interactions.item_ids.tolist() == ["p1", "p2", "p3"]
    dense = interactions.matrix.toarray()
    np.testing.assert_allclose(dense, [[1.1, 0.3, 0.0], [0.0, 1.0, 0.0]], rtol=1e-6)
    assert interactions.matrix.dtype == np.float32
    assert interactions.matrix.nnz == 3


def test_decay_halves_the_weight_every_half_life() -> None:
    weighting = InteractionWeighting(
        kind_weights={"purchase": 1.0, "add_to_cart": 1.0}, half_life_days=10
    )

    interactions = build_interactions(events(), weighting=weighting, reference_date=NOW)

    np.testing.assert_allclose(
        interactions.matrix.toarray(), [[1.0, 0.5, 0.0], [0.0, 0.25, 0.0]], rtol=1e-6
    )


def test_log_quantity_and_events_after_the_reference_are_left_out() -> None:
    weighting = InteractionWeighting(kind_weights={"purchase": 1.0}, quantity="log")

    interactions = build_interactions(
        events(), weighting=weighting, reference_date=NOW - dt.timedelta(days=5)
    )

    assert interactions.customer_ids.tolist() == ["a", "b"]
    assert interactions.item_ids.tolist() == ["p2"]
    np.testing.assert_allclose(interactions.matrix.toarray(), [[0.0], [1.0]])
    weighting_now = build_interactions(events(), weighting=weighting).matrix.toarray()
    assert weighting_now[0, 0] == pytest.approx(1 + np.log(3), rel=1e-6)


def test_catalogue_items_get_a_column_without_events() -> None:
    interactions = build_interactions(events(), items=["new", "p3"])

    assert interactions.item_ids.tolist() == ["new", "p3", "p1", "p2"]
    assert interactions.matrix[:, 0].nnz == 0


def test_missing_columns_and_bad_settings_are_refused() -> None:
    with pytest.raises(EngineInputError, match="occurred_at"):
        build_interactions(events().drop("occurred_at"))
    with pytest.raises(EngineInputError, match="half_life_days"):
        InteractionWeighting(half_life_days=0)
    with pytest.raises(EngineInputError, match="customer_id"):
        build_interactions(
            events().with_columns(pl.lit(None, dtype=pl.String).alias("customer_id"))
        )


def test_reweighted_keeps_the_events_and_the_mappings() -> None:
    interactions = build_interactions(events())

    decayed = interactions.reweighted(InteractionWeighting(half_life_days=10))

    assert decayed.customer_ids.tolist() == interactions.customer_ids.tolist()
    assert decayed.matrix[1, 1] == pytest.approx(0.25, rel=1e-6)


def test_holdout_truth_is_what_was_bought_after_the_cut_and_not_before() -> None:
    table = pl.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "a", "b", "c"],
            "product_id": ["p1", "p2", "p1", "p2", "p3", "p1", "p1"],
            "event_type": [
                "purchase",
                "view",
                "purchase",
                "purchase",
                "purchase",
                "purchase",
                "purchase",
            ],
            "occurred_at": [
                NOW - dt.timedelta(days=9),
                NOW - dt.timedelta(days=8),
                NOW - dt.timedelta(days=1),  # bought before the cut: not in the truth
                NOW - dt.timedelta(days=1),  # only viewed before the cut: in the truth
                NOW - dt.timedelta(days=1),  # first sold after the cut: unknown, left out
                NOW - dt.timedelta(days=1),  # b has no history before the cut
                NOW - dt.timedelta(days=7),
            ],
        }
    )

    split = holdout(build_interactions(table), day_of(NOW - dt.timedelta(days=5)))

    assert split.train.customer_ids.tolist() == ["a", "c"]
    assert split.train.item_ids.tolist() == ["p1", "p2"]
    assert {
        split.train.customer_ids[customer]: split.train.item_ids[items].tolist()
        for customer, items in split.truth.items()
    } == {"a": ["p2"]}
    assert split.train.reference_day == day_of(NOW - dt.timedelta(days=5))


def test_integer_ids_keep_their_order_of_first_appearance_after_the_listed_items() -> None:
    # given integer ids, encoded by numpy rather than one dictionary look-up per event
    frame = pl.DataFrame(
        {
            "customer_id": [30, 10, 30, 20],
            "product_id": [7, 5, 9, 7],
            "event_type": ["purchase", "purchase", "view", None],
            "occurred_at": [NOW, NOW, NOW, NOW],
        }
    )

    # when
    interactions = build_interactions(frame, items=[9, 4])

    # then
    assert interactions.customer_ids.tolist() == [30, 10, 20]
    assert interactions.item_ids.tolist() == [9, 4, 7, 5]
    assert interactions.events.kind.tolist() == ["purchase", "purchase", "view", None]
    np.testing.assert_allclose(
        interactions.matrix.toarray(),
        [[0.1, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]],
        rtol=1e-6,
    )
