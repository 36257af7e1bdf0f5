"""Frequently bought together: frequent itemsets by FP-growth and association rules.

FP-growth (Han, Pei & Yin 2000, "Mining frequent patterns without candidate generation",
SIGMOD; Han, Pei, Yin & Mao 2004, Data Mining and Knowledge Discovery 8) finds every itemset
contained in at least ``min_support`` of the baskets without generating candidates: items
are ranked by descending frequency, every basket becomes the path of its frequent items in
that order, and for each item the *conditional pattern base* (the prefixes of the paths that
end in it, with their counts) is mined recursively. Here a pattern base is a dictionary of
prefix -> count, which merges identical prefixes exactly as the FP-tree's shared nodes do;
the counts are exact integers, so the result equals any other exact miner's.

Rules (Agrawal, Imielinski & Swami 1993, "Mining association rules between sets of items in
large databases", SIGMOD) are split from each frequent itemset ``Z`` into every non-empty
antecedent ``X`` and consequent ``Y = Z \\ X``:

* support = ``supp(Z)``;
* confidence = ``supp(Z) / supp(X)``;
* lift = ``confidence / supp(Y)`` (Brin, Motwani, Ullman & Tsur 1997).
"""

from __future__ import annotations

import gc
import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable
from itertools import chain, combinations
from typing import Any

import narwhals as nw
import polars as pl

from patron.engine.frames import EngineInputError, collect, prepare

ITEMSET_COLUMNS = ("itemset", "length", "count", "support")
RULE_COLUMNS = (
    "antecedent",
    "consequent",
    "antecedent_support",
    "consequent_support",
    "support",
    "confidence",
    "lift",
)

Path = tuple[int, ...]


def read_baskets(baskets: Any) -> list[list[str]]:
    """Baskets as lists of item strings, from an iterable of iterables or a table.

    A table needs ``basket_id`` (order id) and ``product_id`` columns: one row per line.
    Items are compared as strings; an item repeated within a basket counts once.
    """
    if not _is_table(baskets):
        return [[str(item) for item in basket] for basket in baskets]
    prepared = prepare(baskets, ("basket_id", "product_id"), "baskets")
    table = collect(
        prepared.frame.select(nw.col("basket_id"), nw.col("product_id").cast(nw.String))
    )
    grouped: dict[Hashable, list[str]] = defaultdict(list)
    for basket, item in zip(
        table["basket_id"].to_list(), table["product_id"].to_list(), strict=True
    ):
        grouped[basket].append(item)
    return list(grouped.values())


def _is_table(value: Any) -> bool:
    try:
        nw.from_native(value)
    except TypeError:
        return False
    return True


def fpgrowth(baskets: Any, min_support: float, max_length: int | None = None) -> pl.DataFrame:
    """Every itemset in at least ``min_support`` (a fraction) of ``baskets``.

    Parameters
    ----------
    baskets
        Iterable of baskets (iterables of items), or a table with ``basket_id`` and
        ``product_id`` (see :func:`read_baskets`).
    min_support
        Fraction of baskets, in (0, 1]; an itemset qualifies when its count is at least
        ``ceil(min_support * n_baskets)``.
    max_length
        Longest itemset mined (all when None).

    Returns
    -------
    polars.DataFrame
        ``itemset`` (sorted list of item strings), ``length``, ``count`` (baskets holding it)
        and ``support`` (count / baskets), longest-first by support then by itemset.
    """
    if not 0 < min_support <= 1:
        raise EngineInputError(f"min_support must be in (0, 1], got {min_support!r}")
    if max_length is not None and max_length < 1:
        raise EngineInputError(f"max_length must be at least 1, got {max_length!r}")
    # Mining allocates millions of small sets, tuples and dictionaries, none of them in a
    # cycle: the cyclic collector would only rescan them (a quarter of the time on 100,000
    # baskets).
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _fpgrowth(baskets, min_support, max_length)
    finally:
        if collecting:
            gc.enable()


def _fpgrowth(baskets: Any, min_support: float, max_length: int | None) -> pl.DataFrame:
    if _is_table(baskets):
        transactions = [set(basket) for basket in read_baskets(baskets)]
    else:
        transactions = [set(map(str, basket)) for basket in baskets]
    n_baskets = len(transactions)
    if n_baskets == 0:
        return _itemset_frame([], [], 0)
    # The smallest count whose support reaches min_support, as mlxtend computes it.
    min_count = max(1, math.ceil(min_support * n_baskets))

    counts = Counter(chain.from_iterable(transactions))
    frequent = sorted(
        (item for item, count in counts.items() if count >= min_count),
        key=lambda item: (-counts[item], item),
    )
    # Ranks from 1, so that filter(None, ...) drops the items without one at C speed.
    rank = {item: position for position, item in enumerate(frequent, start=1)}
    paths = Counter(tuple(sorted(filter(None, map(rank.get, basket)))) for basket in transactions)
    paths.pop((), None)
    database: dict[Path, int] = dict(paths)

    found_sets: list[tuple[int, ...]] = []
    found_counts: list[int] = []
    limit = max_length if max_length is not None else len(frequent)
    _mine(database, (), min_count, limit, found_sets, found_counts)
    itemsets = [sorted(frequent[position - 1] for position in itemset) for itemset in found_sets]
    return _itemset_frame(itemsets, found_counts, n_baskets)


def _mine(
    database: dict[Path, int],
    suffix: tuple[int, ...],
    min_count: int,
    max_length: int,
    found_sets: list[tuple[int, ...]],
    found_counts: list[int],
) -> None:
    """Emit ``suffix`` extended by every item of ``database``, and recurse.

    ``database`` maps paths (item ranks ascending: most frequent first) to counts, and holds
    only items frequent in it. An item's conditional pattern base is the part of each path
    before it; all the bases are gathered in one pass over the paths (each path is read
    once, not once per item), then pruned to their own frequent items before recursing.
    """
    grow = len(suffix) + 1 < max_length
    item_counts: dict[int, int] = defaultdict(int)
    bases: dict[int, dict[Path, int]] = defaultdict(lambda: defaultdict(int))
    for path, count in database.items():
        for position, item in enumerate(path):
            item_counts[item] += count
            if grow and position:
                bases[item][path[:position]] += count
    for item, count in item_counts.items():
        itemset = (*suffix, item)
        found_sets.append(itemset)
        found_counts.append(count)
        base = bases.get(item)
        if base:
            conditional = _frequent_paths(base, min_count)
            if conditional:
                _mine(conditional, itemset, min_count, max_length, found_sets, found_counts)


def _frequent_paths(base: dict[Path, int], min_count: int) -> dict[Path, int]:
    """``base`` without the items under ``min_count`` in it (identical paths merged)."""
    counts: dict[int, int] = defaultdict(int)
    for path, count in base.items():
        for item in path:
            counts[item] += count
    keep = {item for item, count in counts.items() if count >= min_count}
    if len(keep) == len(counts):
        return base
    pruned: dict[Path, int] = defaultdict(int)
    if keep:
        for path, count in base.items():
            kept = tuple(item for item in path if item in keep)
            if kept:
                pruned[kept] += count
    return pruned


def _itemset_frame(itemsets: list[list[str]], counts: list[int], n_baskets: int) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "itemset": itemsets,
            "length": [len(itemset) for itemset in itemsets],
            "count": counts,
            "support": [count / n_baskets for count in counts] if n_baskets else [],
        },
        schema={
            "itemset": pl.List(pl.String),
            "length": pl.Int32,
            "count": pl.Int64,
            "support": pl.Float64,
        },
    )
    return frame.sort(["support", "length", "itemset"], descending=[True, False, False])


def association_rules(
    itemsets: pl.DataFrame, min_confidence: float = 0.0, min_lift: float = 0.0
) -> pl.DataFrame:
    """Rules ``antecedent -> consequent`` from frequent itemsets (see the module docstring).

    Parameters
    ----------
    itemsets
        The table of :func:`fpgrowth` (every subset of a frequent itemset is in it, so every
        support needed is known).
    min_confidence, min_lift
        Keep rules with at least this confidence and lift.

    Returns
    -------
    polars.DataFrame
        :data:`RULE_COLUMNS`; antecedents and consequents are sorted lists of items; ordered
        by lift, then confidence, descending.
    """
    missing = [column for column in ("itemset", "support") if column not in itemsets.columns]
    if missing:
        raise EngineInputError(f"itemsets lacks the column(s) {', '.join(missing)}")
    support: dict[frozenset[Hashable], float] = {
        frozenset(itemset): value
        for itemset, value in zip(
            itemsets["itemset"].to_list(), itemsets["support"].to_list(), strict=True
        )
    }
    rows: dict[str, list[Any]] = {column: [] for column in RULE_COLUMNS}
    for itemset, itemset_support in support.items():
        if len(itemset) < 2:
            continue
        items = sorted(itemset, key=str)
        for size in range(1, len(items)):
            for antecedent in combinations(items, size):
                antecedent_set = frozenset(antecedent)
                consequent_set = itemset - antecedent_set
                antecedent_support = support[antecedent_set]
                consequent_support = support[consequent_set]
                confidence = itemset_support / antecedent_support
                lift = confidence / consequent_support
                if confidence < min_confidence or lift < min_lift:
                    continue
                rows["antecedent"].append(sorted(antecedent_set, key=str))
                rows["consequent"].append(sorted(consequent_set, key=str))
                rows["antecedent_support"].append(antecedent_support)
                rows["consequent_support"].append(consequent_support)
                rows["support"].append(itemset_support)
                rows["confidence"].append(confidence)
                rows["lift"].append(lift)
    frame = pl.DataFrame(
        rows,
        schema={
            "antecedent": pl.List(pl.String),
            "consequent": pl.List(pl.String),
            "antecedent_support": pl.Float64,
            "consequent_support": pl.Float64,
            "support": pl.Float64,
            "confidence": pl.Float64,
            "lift": pl.Float64,
        },
    )
    return frame.sort(
        ["lift", "confidence", "antecedent", "consequent"],
        descending=[True, True, False, False],
    )


def bought_together(
    rules: pl.DataFrame, product_ids: Iterable[Hashable], n: int = 10
) -> pl.DataFrame:
    """ "Often bought with": for each product, consequents of its single-item rules.

    Returns ``product_id, rank, similar_product_id, score`` (the rule's lift),
    ``confidence, reason`` (``often_bought_with``), best lift first; only rules with one
    antecedent and one consequent are used.
    """
    wanted = [str(product) for product in product_ids]
    pairs = (
        rules.filter(
            (pl.col("antecedent").list.len() == 1) & (pl.col("consequent").list.len() == 1)
        )
        .with_columns(
            pl.col("antecedent").list.first().alias("product_id"),
            pl.col("consequent").list.first().alias("similar_product_id"),
        )
        .filter(pl.col("product_id").is_in(wanted))
        .sort(["product_id", "lift", "confidence"], descending=[False, True, True])
        .with_columns(pl.int_range(1, pl.len() + 1).over("product_id").cast(pl.Int32).alias("rank"))
        .filter(pl.col("rank") <= n)
    )
    return pairs.select(
        "product_id",
        "rank",
        "similar_product_id",
        pl.col("lift").alias("score"),
        "confidence",
        pl.lit("often_bought_with").alias("reason"),
    )
