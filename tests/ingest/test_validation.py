"""Date-time spellings, amounts and quantities the importer accepts, and the ones it refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import polars as pl
import pytest

from patron.ingest.schemas import RecordKind
from patron.ingest.validation import datetime_utc, validate


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2011-12-01 08:26:00", datetime(2011, 12, 1, 0, 26, tzinfo=UTC)),
        ("2011-12-01T08:26:00.123", datetime(2011, 12, 1, 0, 26, 0, 123000, tzinfo=UTC)),
        ("20111201", datetime(2011, 11, 30, 16, 0, tzinfo=UTC)),
        ("2011-12-01", datetime(2011, 11, 30, 16, 0, tzinfo=UTC)),
        ("2011/12/01 08:26:10", datetime(2011, 12, 1, 0, 26, 10, tzinfo=UTC)),
        ("2011-12-01 08:26", datetime(2011, 12, 1, 0, 26, tzinfo=UTC)),
        ("2011-12-01T08:26:00+08:00", datetime(2011, 12, 1, 0, 26, tzinfo=UTC)),
        ("2011-12-01T08:26:00Z", datetime(2011, 12, 1, 8, 26, tzinfo=UTC)),
        ("2011-12-01T08:26:00-0530", datetime(2011, 12, 1, 13, 56, tzinfo=UTC)),
        ("2011-12-01T08:26-05:30", datetime(2011, 12, 1, 13, 56, tzinfo=UTC)),
    ],
)
def test_accepted_spellings_are_read_in_the_shop_zone_unless_they_carry_an_offset(
    text: str, expected: datetime
) -> None:
    parsed, error = datetime_utc(pl.col("at"), "Asia/Shanghai")

    result = pl.DataFrame({"at": [text]}).select(parsed.alias("parsed"), error.alias("error"))

    assert result.row(0) == (expected, None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("tomorrow", "not a date or time: tomorrow"),
        ("2011-13-01", "not a date or time: 2011-13-01"),
        ("1850-01-01", "date out of range: 1850-01-01"),
    ],
)
def test_unreadable_or_implausible_times_are_refused_with_the_value(text: str, reason: str) -> None:
    _, error = datetime_utc(pl.col("at"), "Asia/Shanghai")

    result = pl.DataFrame({"at": [text, None]}).select(error.alias("error"))

    assert result.get_column("error").to_list() == [reason, None]


def _order_rows(**columns: list[str | None]) -> pl.DataFrame:
    """Raw order rows (text, as read from a file) numbered from row 2."""
    count = len(next(iter(columns.values())))
    return pl.DataFrame(
        {
            "__row": list(range(2, count + 2)),
            "order_id": [f"O{index}" for index in range(count)],
            "customer_id": ["C1"] * count,
            "ordered_at": ["2024-05-01 10:00:00"] * count,
            **columns,
        }
    )


def test_amounts_are_exact_decimals_and_bad_ones_are_refused_with_the_value() -> None:
    # given amounts with a currency sign and thousands separator, and four bad ones
    raw = _order_rows(
        unit_price=["¥1,234.50", "abc", "-2", "10000000000000", " 7 "],
        quantity=["1", "1", "1", "1", "1"],
    )

    # when validated
    validated = validate(RecordKind.ORDERS, raw, "Asia/Shanghai")

    # then the good rows keep exact values and each bad row names its field and value
    assert validated.good.select("__row", "unit_price").rows() == [
        (2, Decimal("1234.5000")),
        (6, Decimal("7.0000")),
    ]
    assert validated.errors.rows() == [
        (3, "unit_price", "not a number: abc"),
        (4, "unit_price", "negative amount: -2"),
        (5, "unit_price", "amount too large: 10000000000000"),
    ]


def test_quantities_must_be_whole_and_positive() -> None:
    # given one good quantity and one of each refused kind
    raw = _order_rows(
        quantity=["3", "x", "1.5", "-3", "0", "2000000000", "4.0"],
        unit_price=["1"] * 7,
    )

    # when validated
    validated = validate(RecordKind.ORDERS, raw, "Asia/Shanghai")

    # then
    assert validated.good.select("__row", "quantity").rows() == [(2, 3), (8, 4)]
    assert validated.errors.rows() == [
        (3, "quantity", "not a number: x"),
        (4, "quantity", "not a whole number: 1.5"),
        (5, "quantity", "negative quantity: -3 (a return belongs in refund_amount)"),
        (6, "quantity", "quantity is 0"),
        (7, "quantity", "quantity too large: 2000000000"),
    ]
