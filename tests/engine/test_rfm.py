"""RFM table against a plain-Python computation on the real CDNOW log and the demo shop."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from patron.engine.frames import EngineInputError
from patron.engine.rfm import RFM_COLUMNS, RFM_SEGMENT_GRID, RFM_SEGMENTS, VALUE_CLASSES, rfm_table
from tests.engine.data import (
    CDNOW_AS_OF,
    DEMO_AS_OF,
    cdnow_lines,
    demo_orders,
    orders_by_customer,
    plain_orders,
)

# The RFM map as the spec writes it: rows R = 5..1, columns FM = 1..5.
SPEC_GRID = """
new            potential_loyalist potential_loyalist champions      champions
promising      potential_loyalist potential_loyalist loyal          champions
about_to_sleep about_to_sleep     need_attention     loyal          loyal
hibernating    hibernating        at_risk            at_risk        cant_lose_them
lost           lost               at_risk            cant_lose_them cant_lose_them
"""
SPEC_CLASSES = {
    ("+", "+", "+"): "important_value",
    ("+", "-", "+"): "important_develop",
    ("-", "+", "+"): "important_retain",
    ("-", "-", "+"): "important_win_back",
    ("+", "+", "-"): "general_value",
    ("+", "-", "-"): "general_develop",
    ("-", "+", "-"): "general_retain",
    ("-", "-", "-"): "general_win_back",
}


def spec_segment(r_score: int, f_score: int, m_score: int) -> str:
    rows = SPEC_GRID.split("\n")[1:-1]
    fm_score = (f_score + m_score + 1) // 2
    return rows[5 - r_score].split()[fm_score - 1]


def expected_rfm(lines: pl.DataFrame, as_of: dt.date) -> dict[str, dict[str, Any]]:
    """RFM by loops over the rows: the spec's definitions, written out independently."""
    customers = orders_by_customer(plain_orders(lines, as_of))
    table: dict[str, dict[str, Any]] = {}
    for customer_id, orders in customers.items():
        monetary = sum((order.net for order in orders), Decimal(0))
        table[customer_id] = {
            "first_order_at": min(order.ordered_at for order in orders),
            "last_order_at": max(order.ordered_at for order in orders),
            "recency_days": (as_of - max(order.day for order in orders)).days,
            "tenure_days": (as_of - min(order.day for order in orders)).days,
            "frequency": len(orders),
            "monetary": monetary,
            "average_order_value": monetary / len(orders),
        }
    count = len(table)
    for score, key in (
        ("r_score", lambda c: (-table[c]["recency_days"], c)),
        ("f_score", lambda c: (table[c]["frequency"], c)),
        ("m_score", lambda c: (table[c]["monetary"], c)),
    ):
        for rank, customer_id in enumerate(sorted(table, key=key), start=1):
            table[customer_id][score] = (rank - 1) * 5 // count + 1
    mean_recency = statistics.mean(row["recency_days"] for row in table.values())
    mean_frequency = statistics.mean(row["frequency"] for row in table.values())
    mean_monetary = statistics.mean(row["monetary"] for row in table.values())
    for row in table.values():
        row["rfm_segment"] = spec_segment(row["r_score"], row["f_score"], row["m_score"])
        signs = (
            "+" if row["recency_days"] < mean_recency else "-",
            "+" if row["frequency"] > mean_frequency else "-",
            "+" if row["monetary"] > mean_monetary else "-",
        )
        row["value_class"] = SPEC_CLASSES[signs]
    return table


def assert_matches(result: pl.DataFrame, expected: dict[str, dict[str, Any]]) -> None:
    assert result.columns == list(RFM_COLUMNS)
    assert result["customer_id"].to_list() == sorted(expected)
    for row in result.iter_rows(named=True):
        want = expected[row["customer_id"]]
        for column in RFM_COLUMNS[1:]:
            if column in ("monetary", "average_order_value"):
                assert row[column] == pytest.approx(float(want[column]), rel=1e-12, abs=1e-6)
            else:
                assert row[column] == want[column], (row["customer_id"], column)


def test_rfm_of_the_cdnow_log_matches_a_plain_computation(shared_data: Path) -> None:
    # given the CDNOW log (one customer's rows of one day are one order)
    lines = cdnow_lines(shared_data)

    # when its RFM table is computed as of the log's last day
    result = rfm_table(lines, CDNOW_AS_OF)

    # then every customer's values, scores, segment and value class are the plain ones
    expected = expected_rfm(lines, CDNOW_AS_OF)
    assert len(expected) == 23_570
    assert_matches(result, expected)
    # and each score holds exactly a fifth of the 23,570 customers
    for score in ("r_score", "f_score", "m_score"):
        assert Counter(result[score].to_list()) == dict.fromkeys(range(1, 6), 4_714)


def test_rfm_of_the_demo_shop_nets_refunds_and_drops_cancelled_orders() -> None:
    # given the demo shop's lines: discounts, refunds, cancelled orders, some after as_of
    lines = demo_orders(2000, 11)
    as_of = DEMO_AS_OF - dt.timedelta(days=60)
    assert lines.filter(pl.col("status") == "cancelled").height > 0
    assert lines.filter(pl.col("refund_amount") > 0).height > 0

    # when RFM is computed as of 60 days before the end of the data
    result = rfm_table(lines, as_of)

    # then it equals the plain computation, customer by customer
    expected = expected_rfm(lines, as_of)
    assert_matches(result, expected)
    # and the quintiles are as even as the customer count allows
    count = len(expected)
    sizes = Counter((rank * 5) // count + 1 for rank in range(count))
    for score in ("r_score", "f_score", "m_score"):
        assert Counter(result[score].to_list()) == sizes


def test_ties_are_broken_by_customer_id() -> None:
    # given seven customers who all bought once, on the same day, for the same amount
    customers = ["c7", "c1", "c5", "c3", "c2", "c6", "c4"]
    lines = pl.DataFrame(
        {
            "order_id": [f"o-{customer}" for customer in customers],
            "customer_id": customers,
            "ordered_at": [dt.datetime(2025, 1, 10, 12)] * 7,
            "line_total": [10.0] * 7,
        }
    )

    # when scored
    result = rfm_table(lines, dt.date(2025, 1, 31))

    # then ranks follow the customer ids: floor((rank - 1) * 5 / 7) + 1 for ranks 1..7
    assert result["customer_id"].to_list() == ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]
    for score in ("r_score", "f_score", "m_score"):
        assert result[score].to_list() == [1, 1, 2, 3, 3, 4, 5]
    assert result["recency_days"].to_list() == [21] * 7
    # nobody is above the mean, so everyone is a general win-back customer
    assert set(result["value_class"]) == {"general_win_back"}


def test_segment_grid_and_codes_are_the_spec() -> None:
    # given the spec's grid, written out in this test
    rows = SPEC_GRID.split("\n")[1:-1]

    # then the engine's grid holds the same cell for every R and FM
    for r_score in range(1, 6):
        assert list(RFM_SEGMENT_GRID[r_score]) == rows[5 - r_score].split()
    assert set(RFM_SEGMENTS) == {cell for row in rows for cell in row.split()}
    assert RFM_SEGMENTS[0] == "champions"
    assert RFM_SEGMENTS[-1] == "lost"
    assert len(RFM_SEGMENTS) == 11
    assert tuple(SPEC_CLASSES.values()) == VALUE_CLASSES


def test_a_lazy_frame_gives_a_lazy_frame_with_the_same_rows() -> None:
    # given the demo shop's lines as a LazyFrame
    lines = demo_orders(300, 5)

    # when RFM is computed from it
    result = rfm_table(lines.lazy(), DEMO_AS_OF)

    # then the result is lazy, and collects to the plain computation
    assert isinstance(result, pl.LazyFrame)
    assert_matches(result.collect(), expected_rfm(lines, DEMO_AS_OF))


def test_missing_columns_are_named() -> None:
    # given lines without customer_id and ordered_at
    lines = pl.DataFrame({"order_id": ["o1"], "line_total": [1.0]})

    # then the error names both
    with pytest.raises(EngineInputError, match="lacks the column\\(s\\) customer_id, ordered_at"):
        rfm_table(lines, DEMO_AS_OF)


def test_lines_without_amounts_are_refused() -> None:
    lines = pl.DataFrame(
        {"order_id": ["o1"], "customer_id": ["c1"], "ordered_at": [dt.date(2025, 1, 1)]}
    )
    with pytest.raises(EngineInputError, match="line_total column, or quantity and unit_price"):
        rfm_table(lines, DEMO_AS_OF)


@pytest.mark.parametrize("as_of", ["2025-06-01", dt.datetime(2025, 6, 1), None])
def test_as_of_must_be_a_date(as_of: Any) -> None:
    lines = demo_orders(300, 5)
    with pytest.raises(EngineInputError, match="as_of must be a date"):
        rfm_table(lines, as_of)


def test_a_non_dataframe_is_refused() -> None:
    with pytest.raises(EngineInputError, match="expected a dataframe"):
        rfm_table([{"order_id": "o1"}], DEMO_AS_OF)
