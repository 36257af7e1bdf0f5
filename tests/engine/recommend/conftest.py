"""Small hand-made interactions for the recommender tests."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from patron.engine.recommend import Interactions, build_interactions

DAY = dt.datetime(2024, 6, 1, 12, 0)


def purchases(rows: list[tuple[str, str, int]]) -> pl.DataFrame:
    """Purchase events ``(customer, product, days before DAY)``."""
    return pl.DataFrame(
        {
            "customer_id": [row[0] for row in rows],
            "product_id": [row[1] for row in rows],
            "event_type": ["purchase"] * len(rows),
            "occurred_at": [DAY - dt.timedelta(days=row[2]) for row in rows],
        }
    )


SHOP = [
    # Tea drinkers buy tea, cups and honey; coffee drinkers coffee, mugs and milk.
    ("ann", "tea", 1),
    ("ann", "cup", 2),
    ("ann", "honey", 3),
    ("bob", "tea", 1),
    ("bob", "cup", 4),
    ("cat", "tea", 5),
    ("cat", "honey", 6),
    ("dan", "coffee", 1),
    ("dan", "mug", 2),
    ("dan", "milk", 3),
    ("eve", "coffee", 2),
    ("eve", "mug", 3),
    ("fay", "coffee", 1),
    ("fay", "milk", 2),
    ("gus", "tea", 1),
    ("hal", "coffee", 1),
]


@pytest.fixture
def shop() -> Interactions:
    """Two tastes, tea and coffee, eight customers."""
    return build_interactions(purchases(SHOP))
