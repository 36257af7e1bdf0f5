"""Date-time spellings the importer accepts, and the ones it refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from patron.ingest.validation import datetime_utc


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
