"""FP-growth and association rules: by hand, and equal to mlxtend's on the Groceries data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest

from patron.engine.frames import EngineInputError
from patron.engine.recommend import association_rules, bought_together, fpgrowth
from tests.conftest import require

BASKETS = [["bread", "milk"], ["bread", "butter", "milk"], ["beer", "bread"], ["milk", "butter"]]


def test_fpgrowth_counts_every_frequent_itemset() -> None:
    itemsets = fpgrowth(BASKETS, min_support=0.5)

    assert {tuple(row[0]): row[2] for row in itemsets.rows()} == {
        ("bread",): 3,
        ("milk",): 3,
        ("butter",): 2,
        ("bread", "milk"): 2,
        ("butter", "milk"): 2,
    }
    assert itemsets["support"].to_list()[:2] == [0.75, 0.75]


def test_fpgrowth_reads_a_lines_table_and_respects_max_length() -> None:
    lines = pl.DataFrame(
        {
            "basket_id": [1, 1, 2, 2, 2, 3, 3, 4, 4],
            "product_id": [
                "bread",
                "milk",
                "bread",
                "butter",
                "milk",
                "beer",
                "bread",
                "milk",
                "butter",
            ],
        }
    )

    itemsets = fpgrowth(lines, min_support=0.5, max_length=1)

    assert sorted(itemsets["itemset"].list.first().to_list()) == ["bread", "butter", "milk"]
    with pytest.raises(EngineInputError, match="min_support"):
        fpgrowth(BASKETS, min_support=0)


def test_rules_have_support_confidence_and_lift() -> None:
    rules = association_rules(fpgrowth(BASKETS, min_support=0.5), min_confidence=0.9)

    assert rules.select("antecedent", "consequent", "support", "confidence", "lift").rows() == [
        (["butter"], ["milk"], 0.5, 1.0, 1.0 / 0.75)
    ]


def test_bought_together_ranks_consequents_by_lift() -> None:
    rules = association_rules(fpgrowth(BASKETS, min_support=0.25), min_lift=1.0)

    together = bought_together(rules, ["butter"], n=2)

    assert together.select("product_id", "rank", "similar_product_id", "reason").rows() == [
        ("butter", 1, "milk", "often_bought_with")
    ]
    assert together["score"].to_list() == pytest.approx([1.0 / 0.75])


@pytest.mark.shared_data
@pytest.mark.parametrize(("min_support", "min_confidence"), [(0.005, 0.1), (0.001, 0.5)])
def test_groceries_itemsets_and_rules_equal_mlxtend(
    shared_data: Path, min_support: float, min_confidence: float
) -> None:
    require(importlib.util.find_spec("mlxtend") is not None, "mlxtend is not installed (dev extra)")
    import pandas as pd
    from mlxtend.frequent_patterns import association_rules as mlxtend_rules
    from mlxtend.frequent_patterns import fpgrowth as mlxtend_fpgrowth
    from mlxtend.preprocessing import TransactionEncoder

    text = (shared_data / "groceries_arules" / "groceries.csv").read_text(encoding="utf-8")
    baskets = [line.split(",") for line in text.splitlines() if line]
    encoder = TransactionEncoder()
    onehot = pd.DataFrame(encoder.fit(baskets).transform(baskets), columns=encoder.columns_)

    ours = fpgrowth(baskets, min_support=min_support)
    theirs = mlxtend_fpgrowth(onehot, min_support=min_support, use_colnames=True)
    our_rules = association_rules(ours, min_confidence=min_confidence, min_lift=1.0)
    their_rules = mlxtend_rules(theirs, metric="confidence", min_threshold=min_confidence)
    their_rules = their_rules[their_rules["lift"] >= 1.0]

    assert len(baskets) == 9835
    assert {
        frozenset(s): round(v, 12)
        for s, v in zip(ours["itemset"].to_list(), ours["support"], strict=True)
    } == {
        frozenset(s): round(v, 12)
        for s, v in zip(theirs["itemsets"], theirs["support"], strict=True)
    }
    assert {
        (frozenset(a), frozenset(c)): (round(s, 12), round(f, 12), round(lift, 9))
        for a, c, s, f, lift in our_rules.select(
            "antecedent", "consequent", "support", "confidence", "lift"
        ).rows()
    } == {
        (frozenset(a), frozenset(c)): (round(s, 12), round(f, 12), round(lift, 9))
        for a, c, s, f, lift in zip(
            their_rules["antecedents"],
            their_rules["consequents"],
            their_rules["support"],
            their_rules["confidence"],
            their_rules["lift"],
            strict=True,
        )
    }
