"""RFM: recency, frequency and monetary value per customer, quintile scores and two segmentations.

The classic RFM map (eleven named segments from the R score and the mean of F and M) is what
Western CRM tools show; the eight value classes (重要价值客户 ... 一般挽留客户), from R, F and M
above or below their means, are what Chinese retailers know. Both come out of one table.

The table is one ``group_by`` of the counted orders per customer, then three window ranks; no
join and nothing collected, so that it runs as one plan on Polars and on Spark.
"""

from __future__ import annotations

import datetime as dt
from types import MappingProxyType
from typing import Any

import narwhals as nw

from patron.engine.frames import counted_orders, date_day_number, day_number, require_date

RFM_COLUMNS = (
    "customer_id",
    "first_order_at",
    "last_order_at",
    "recency_days",
    "tenure_days",
    "frequency",
    "monetary",
    "average_order_value",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "value_class",
)
"""Columns of :func:`rfm_table`, in order."""

SCORE_LEVELS = 5
"""Quintile scores: 1 (worst fifth of the customers) to 5 (best fifth)."""

RFM_SEGMENTS = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose_them",
    "hibernating",
    "lost",
)
"""Codes of the classic RFM map's segments, best first (display names: analytics/choices.py)."""

RFM_SEGMENT_GRID: MappingProxyType[int, tuple[str, str, str, str, str]] = MappingProxyType(
    {
        5: ("new", "potential_loyalist", "potential_loyalist", "champions", "champions"),
        4: ("promising", "potential_loyalist", "potential_loyalist", "loyal", "champions"),
        3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
        2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose_them"),
        1: ("lost", "lost", "at_risk", "cant_lose_them", "cant_lose_them"),
    }
)
"""The RFM map: ``RFM_SEGMENT_GRID[r_score][fm_score - 1]`` is the segment, where
``fm_score = (f_score + m_score + 1) // 2`` (their mean, halves rounded up)."""

VALUE_CLASSES = (
    "important_value",
    "important_develop",
    "important_retain",
    "important_win_back",
    "general_value",
    "general_develop",
    "general_retain",
    "general_win_back",
)
"""Codes of the eight value classes, 重要价值 first, 一般挽留 last (display names:
analytics/choices.py)."""

VALUE_CLASS_RULES: MappingProxyType[str, tuple[bool, bool, bool]] = MappingProxyType(
    {
        "important_value": (True, True, True),
        "important_develop": (True, False, True),
        "important_retain": (False, True, True),
        "important_win_back": (False, False, True),
        "general_value": (True, True, False),
        "general_develop": (True, False, False),
        "general_retain": (False, True, False),
        "general_win_back": (False, False, False),
    }
)
"""Value class by (R high, F high, M high): R is high when ``recency_days`` is below its mean
over all customers (bought more recently than the average), F and M when above their means."""

MONEY_DECIMALS = 6
"""Spend is rounded to this many decimals: summing the same amounts in another order (another
engine, another partitioning) changes the last bits of a float, and equal spends must tie
everywhere for the scores to agree. Money has at most four decimals, so nothing is lost."""


def customer_summary(orders: nw.LazyFrame[Any], as_of: dt.date) -> nw.LazyFrame[Any]:
    """One row per customer of counted ``orders``: the aggregate behind RFM and its kin.

    Columns ``customer_id, first_order_at, last_order_at, first_order_day, last_order_day,
    recency_days, tenure_days, frequency, monetary, gross_monetary``. Day numbers are taken from
    the first and last order times after aggregating, so each is computed once per customer.
    """
    as_of_day = date_day_number(as_of)
    summary = orders.group_by("customer_id").agg(
        nw.col("ordered_at").min().alias("first_order_at"),
        nw.col("ordered_at").max().alias("last_order_at"),
        nw.len().alias("frequency"),
        nw.col("net_amount").sum().alias("monetary"),
        nw.col("gross_amount").sum().alias("gross_monetary"),
    )
    return summary.with_columns(
        day_number(nw.col("first_order_at")).alias("first_order_day"),
        day_number(nw.col("last_order_at")).alias("last_order_day"),
        nw.col("frequency").cast(nw.Int64),
        nw.col("monetary").round(MONEY_DECIMALS),
        nw.col("gross_monetary").round(MONEY_DECIMALS),
    ).with_columns(
        (as_of_day - nw.col("last_order_day")).alias("recency_days"),
        (as_of_day - nw.col("first_order_day")).alias("tenure_days"),
    )


def quintile_score(*order_by: str) -> nw.Expr:
    """Score 1..5 from the ordinal rank of a row ordered by ``order_by`` (worst first).

    ``score = floor((rank - 1) * 5 / n) + 1`` with ranks 1..n, so each score holds a fifth of
    the rows; the last ``order_by`` column should make the order total (the customer id), so
    that ties are broken the same way on every engine.
    """
    rank = nw.col(order_by[0]).cum_count().over(order_by=list(order_by))
    return ((rank - 1) * SCORE_LEVELS // nw.len() + 1).cast(nw.Int64)


def _segment_expression() -> nw.Expr:
    """The RFM map as one expression over ``r_score`` and ``fm_score``."""
    cells: dict[str, list[int]] = {segment: [] for segment in RFM_SEGMENTS}
    for r_score, row in RFM_SEGMENT_GRID.items():
        for fm_index, segment in enumerate(row):
            cells[segment].append(r_score * 10 + fm_index + 1)
    cell = nw.col("r_score") * 10 + nw.col("fm_score")
    *firsts, last = RFM_SEGMENTS
    expression: nw.Expr = nw.lit(last, dtype=nw.String)
    for segment in reversed(firsts):
        expression = (
            nw.when(cell.is_in(cells[segment]))
            .then(nw.lit(segment, dtype=nw.String))
            .otherwise(expression)
        )
    return expression


def _value_class_expression() -> nw.Expr:
    """The eight value classes from R, F, M against their means over the whole table."""
    r_high = nw.col("recency_days") < nw.col("recency_days").mean()
    f_high = nw.col("frequency") > nw.col("frequency").mean()
    m_high = nw.col("monetary") > nw.col("monetary").mean()
    *firsts, last = VALUE_CLASSES
    expression: nw.Expr = nw.lit(last, dtype=nw.String)
    for value_class in reversed(firsts):
        wants_r, wants_f, wants_m = VALUE_CLASS_RULES[value_class]
        condition = (
            (r_high if wants_r else ~r_high)
            & (f_high if wants_f else ~f_high)
            & (m_high if wants_m else ~m_high)
        )
        expression = (
            nw.when(condition).then(nw.lit(value_class, dtype=nw.String)).otherwise(expression)
        )
    return expression


def rfm_table(lines: Any, as_of: dt.date) -> Any:
    """RFM per customer of an order-lines table, as of a day (columns :data:`RFM_COLUMNS`).

    Customers are those with a counted order (not cancelled) on or before ``as_of``.
    ``recency_days`` and ``tenure_days`` count days from the last and the first order to
    ``as_of``; ``frequency`` counts distinct orders; ``monetary`` is net spend (after discounts
    and refunds) and ``average_order_value`` is ``monetary / frequency``.

    Scores are quintiles of the ordinal rank by goodness (R: most recent best, F and M: more is
    better), ties broken by ``customer_id`` ascending (:func:`quintile_score`). ``rfm_segment``
    comes from :data:`RFM_SEGMENT_GRID`, ``value_class`` from :data:`VALUE_CLASS_RULES`.
    Returns the caller's kind (Polars DataFrame, LazyFrame, Spark DataFrame), sorted by
    ``customer_id``.
    """
    require_date(as_of, "as_of")
    prepared, orders = counted_orders(lines, as_of, with_channel=False)
    table = (
        customer_summary(orders, as_of)
        .with_columns(
            (nw.col("monetary") / nw.col("frequency")).alias("average_order_value"),
            # Worst first: the oldest last order is the worst recency.
            quintile_score("last_order_day", "customer_id").alias("r_score"),
            quintile_score("frequency", "customer_id").alias("f_score"),
            quintile_score("monetary", "customer_id").alias("m_score"),
            _value_class_expression().alias("value_class"),
        )
        .with_columns(((nw.col("f_score") + nw.col("m_score") + 1) // 2).alias("fm_score"))
        .with_columns(_segment_expression().alias("rfm_segment"))
        .select(*RFM_COLUMNS)
        .sort("customer_id")
    )
    return prepared.output(table)
