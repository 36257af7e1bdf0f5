"""Evaluation of the recommenders on the real Online Retail data (issue 6, first goal).

    .venv/bin/python bench/recommend_eval.py [--data PATH] [--test-days 30]
                                             [--max-customers N] [--customers-fraction F]

Reads the UCI Online Retail invoice lines (../shared/data/online_retail, see its SOURCE.md)
and keeps product purchases: cancellations (``InvoiceNo`` starting with ``C``), lines
without a ``CustomerID``, non-positive quantities or prices and the non-product stock codes
(``POST``, ``M``, ``D``, ``BANK CHARGES``, ``AMAZONFEE``, ...: every code not starting with
five digits) are dropped. Every line is a ``purchase`` event at its invoice time.

Temporal split on the last month: training on the lines before ``last invoice - test_days``,
truth = products each customer bought in the last ``test_days`` days and had not bought
before (patron.engine.recommend.evaluation). The half-life of the time decay is chosen on a
validation split inside the training data (the ``test_days`` before the cut), never on the
test period; so are the hybrid's weights.

Prints the metric table (precision, recall, NDCG, MAP at 10, catalogue coverage, intra-list
diversity, fit and recommend seconds) per recommender, the ratios of the best NDCG@10 to the
popularity baseline and to ``implicit``'s ALS with its default settings (on the raw purchase
counts and on the decayed interactions: the larger of the two is the bar), PASS/FAIL against
the goals (3.5x and 1.1x) and one JSON line of the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from patron.engine.recommend import (
    ALSRecommender,
    BPRRecommender,
    EASERecommender,
    HybridRecommender,
    InteractionWeighting,
    ItemKNNRecommender,
    PopularityRecommender,
    Recommender,
    build_interactions,
    day_of,
    evaluate_recommenders,
    holdout,
)

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "online_retail"
HALF_LIVES: tuple[float | None, ...] = (None, 15.0, 30.0, 60.0, 120.0)
POPULARITY_GOAL = 3.5
ALS_GOAL = 1.1
PLAIN = InteractionWeighting()
"""Raw purchase counts: every purchase line counts 1, no decay."""


def online_retail_events(
    path: Path, customers_fraction: float = 1.0, seed: int = 0
) -> pl.DataFrame:
    """Purchase events of Online Retail: ``customer_id, product_id, event_type, occurred_at,
    quantity``; ``customers_fraction`` keeps a random share of the customers (all by default).
    """
    lines = pl.read_csv(
        path / "online_retail.csv.gz",
        schema_overrides={"InvoiceNo": pl.String, "StockCode": pl.String, "CustomerID": pl.Int64},
    )
    events = lines.filter(
        ~pl.col("InvoiceNo").str.starts_with("C")
        & pl.col("CustomerID").is_not_null()
        & pl.col("StockCode").str.contains(r"^\d{5}")
        & (pl.col("Quantity") > 0)
        & (pl.col("UnitPrice") > 0)
    ).select(
        pl.col("CustomerID").cast(pl.String).alias("customer_id"),
        pl.col("StockCode").str.to_uppercase().alias("product_id"),
        pl.lit("purchase").alias("event_type"),
        pl.col("InvoiceDate").str.to_datetime("%Y-%m-%d %H:%M:%S").alias("occurred_at"),
        pl.col("Quantity").alias("quantity"),
    )
    if customers_fraction < 1.0:
        customers = events["customer_id"].unique().sort()
        kept = customers.sample(fraction=customers_fraction, seed=seed)
        events = events.filter(pl.col("customer_id").is_in(kept.implode()))
    return events


def recommenders() -> dict[str, Recommender | tuple[Recommender, InteractionWeighting]]:
    """The line-up: the baselines first, then ours (all on the chosen weighting)."""
    return {
        "popularity": PopularityRecommender(),
        "als_default_raw": (ALSRecommender(random_state=0), PLAIN),
        "als_default": ALSRecommender(random_state=0),
        "als_bm25": ALSRecommender(factors=64, regularization=0.05, bm25=True, random_state=0),
        "bpr": BPRRecommender(random_state=0),
        "trending": PopularityRecommender(measure="weight"),
        "item_knn_cosine": ItemKNNRecommender(similarity="cosine", k=100),
        "item_knn_bm25": ItemKNNRecommender(similarity="bm25", k=100),
        "ease": EASERecommender(),
        "hybrid": HybridRecommender(),
    }


BASELINES = ("popularity", "als_default_raw", "als_default")


def choose_half_life(
    events: pl.DataFrame,
    cut: dt.datetime,
    test_days: float,
    half_lives: tuple[float | None, ...] = HALF_LIVES,
) -> dict[str, float]:
    """NDCG@10 of EASE on the validation split (the ``test_days`` before ``cut``) per half-life."""
    found = {}
    for half_life in half_lives:
        weighting = InteractionWeighting(half_life_days=half_life)
        interactions = build_interactions(events, weighting=weighting, reference_date=cut)
        validation = holdout(interactions, day_of(cut) - test_days, day_of(cut))
        table = evaluate_recommenders({"ease": EASERecommender()}, validation)
        found["none" if half_life is None else f"{half_life:g}"] = float(table["ndcg"][0])
    return found


@dataclass(frozen=True)
class Outcome:
    table: pl.DataFrame
    half_life_days: float | None
    validation: dict[str, float]
    best: str
    ratio_popularity: float
    ratio_als: float


def run(
    events: pl.DataFrame,
    test_days: float = 30.0,
    max_customers: int | None = None,
    lineup: dict[str, Any] | None = None,
    half_lives: tuple[float | None, ...] = HALF_LIVES,
) -> Outcome:
    """Choose the half-life on validation, evaluate the line-up on the last ``test_days``."""
    last = events["occurred_at"].max()
    assert isinstance(last, dt.datetime)
    cut = last - dt.timedelta(days=test_days)
    validation = choose_half_life(
        events.filter(pl.col("occurred_at") < cut), cut, test_days, half_lives
    )
    chosen = max(validation, key=lambda key: validation[key])
    half_life = None if chosen == "none" else float(chosen)
    weighting = InteractionWeighting(half_life_days=half_life)
    interactions = build_interactions(events, weighting=weighting)
    split = holdout(interactions, day_of(cut))
    table = evaluate_recommenders(
        recommenders() if lineup is None else lineup, split, k=10, max_customers=max_customers
    )
    ndcg = dict(zip(table["recommender"].to_list(), table["ndcg"].to_list(), strict=True))
    candidates = {name: value for name, value in ndcg.items() if name not in BASELINES}
    best = max(candidates, key=lambda name: candidates[name])
    als_bar = max(ndcg["als_default_raw"], ndcg["als_default"])
    return Outcome(
        table=table,
        half_life_days=half_life,
        validation=validation,
        best=best,
        ratio_popularity=ndcg[best] / ndcg["popularity"],
        ratio_als=ndcg[best] / als_bar,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--test-days", type=float, default=30.0)
    parser.add_argument("--max-customers", type=int, default=None)
    parser.add_argument("--customers-fraction", type=float, default=1.0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    events = online_retail_events(args.data, args.customers_fraction)
    outcome = run(events, args.test_days, args.max_customers)
    print(
        f"Online Retail: {len(events):,} purchase lines, "
        f"{events['customer_id'].n_unique():,} customers, {events['product_id'].n_unique():,} "
        f"products; test = last {args.test_days:g} days"
    )
    print("half-life chosen on validation (EASE NDCG@10 per half-life in days):")
    print("  " + ", ".join(f"{key}: {value:.4f}" for key, value in outcome.validation.items()))
    print(f"  -> {outcome.half_life_days}")
    with pl.Config(tbl_rows=-1, tbl_cols=-1, float_precision=4, tbl_width_chars=200):
        print(outcome.table)
    print(f"best: {outcome.best}")
    for label, ratio, goal in (
        ("popularity", outcome.ratio_popularity, POPULARITY_GOAL),
        ("ALS default", outcome.ratio_als, ALS_GOAL),
    ):
        verdict = "PASS" if ratio >= goal else "FAIL"
        print(f"NDCG@10 best / {label} = {ratio:.2f} (goal >= {goal}: {verdict})")
    print(f"seconds: {time.perf_counter() - started:.1f}")
    print(
        json.dumps(
            {
                "half_life_days": outcome.half_life_days,
                "best": outcome.best,
                "ratio_popularity": round(outcome.ratio_popularity, 4),
                "ratio_als": round(outcome.ratio_als, 4),
                "rows": outcome.table.to_dicts(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
