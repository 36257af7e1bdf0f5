"""Locale-aware money and count formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from patron.web.formatting import (
    compact_number,
    format_change,
    format_count,
    format_money,
    format_money_compact,
    format_number,
    format_percent,
    format_point_change,
)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (Decimal("1234.5"), "CNY", "¥1,234.50"),
        (Decimal("0.005"), "CNY", "¥0.01"),
        (Decimal("-12"), "CNY", "-¥12.00"),
        (Decimal("1234567.891"), "USD", "$1,234,567.89"),
        (Decimal("1500"), "JPY", "¥1,500"),
        (Decimal("10"), "CHF", "CHF 10.00"),
        (None, "CNY", ""),
    ],
)
def test_format_money(amount: Decimal | None, currency: str, expected: str) -> None:
    assert format_money(amount, currency) == expected


@pytest.mark.parametrize(
    ("value", "language", "expected"),
    [
        (9_876, "zh-hans", "9,876"),
        (12_345, "zh-hans", "1.23万"),
        (10_000, "zh-hans", "1万"),
        (123_456_789, "zh-hans", "1.23亿"),
        (12_345, "en", "12,345"),
        (123_456_789, "en", "123,456,789"),
    ],
)
def test_format_count(value: int, language: str, expected: str) -> None:
    assert format_count(value, language) == expected


@pytest.mark.parametrize(
    ("amount", "language", "expected"),
    [
        (Decimal("9999.99"), "zh-hans", "¥9,999.99"),
        (Decimal("123456.78"), "zh-hans", "¥12.35万"),
        (Decimal("250000000"), "zh-hans", "¥2.5亿"),
        (Decimal("10770931.6"), "zh-hans", "¥1,077.09万"),
        (Decimal("123456.78"), "en", "¥123,456.78"),
        (Decimal("2345678.9"), "en", "¥2.35M"),
    ],
)
def test_format_money_compact(amount: Decimal, language: str, expected: str) -> None:
    assert format_money_compact(amount, "CNY", language) == expected


def test_compact_number_in_english_uses_billions() -> None:
    assert compact_number(3_200_000_000, "en") == "3.2B"


@pytest.mark.parametrize(
    ("rate", "expected"),
    [(Decimal("0.4251"), "42.5%"), (Decimal(1), "100.0%"), (0, "0.0%"), (None, "–")],
)
def test_format_percent(rate: Decimal | int | None, expected: str) -> None:
    assert format_percent(rate) == expected


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (Decimal("0.0521"), "+5.2%"),
        (Decimal("-0.549"), "-54.9%"),
        (Decimal(0), "+0.0%"),
        (None, ""),
    ],
)
def test_format_change(change: Decimal | None, expected: str) -> None:
    assert format_change(change) == expected


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        (1234.56, 1, "1,234.6"),
        (Decimal("2.005"), 2, "2.01"),
        (0.25, 1, "0.3"),
        (7, 0, "7"),
        (None, 1, "–"),
    ],
)
def test_measured_figures_keep_the_asked_decimals(
    value: Decimal | float | None, places: int, expected: str
) -> None:
    # when / then
    assert format_number(value, places) == expected


@pytest.mark.parametrize(
    ("delta", "language", "expected"),
    [
        (0.021, "en", "+2.1 pp"),
        (-0.0495, "en", "-5.0 pp"),
        (0.0, "en", "+0.0 pp"),
        (0.233, "zh-hans", "+23.3个百分点"),
        (None, "en", ""),
    ],
)
def test_rate_changes_are_in_percentage_points(
    delta: float | None, language: str, expected: str
) -> None:
    # when / then
    assert format_point_change(delta, language) == expected
