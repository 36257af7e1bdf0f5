"""Locale-aware display of money, counts and rates (pure functions behind the template filters).

Chinese readers group large figures by 万 (10⁴) and 亿 (10⁸) rather than by thousands, so in
Chinese a compact figure is ``12.35万`` where English shows ``123,456``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from patron.core.money import currency_places, round_for_currency

_CURRENCY_SYMBOLS = {
    "CNY": "¥",
    "JPY": "¥",
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "HKD": "HK$",
    "TWD": "NT$",
    "KRW": "₩",
}
_WAN = Decimal(10_000)
_YI = Decimal(100_000_000)
_MILLION = Decimal(1_000_000)
_BILLION = Decimal(1_000_000_000)


def is_chinese(language: str | None) -> bool:
    """True for a Chinese language code (``zh-hans``, ``zh-cn`` ...)."""
    return bool(language) and str(language).lower().startswith("zh")


def currency_symbol(currency: str) -> str:
    """The sign written before an amount (``¥``), or the ISO code and a space if none known."""
    return _CURRENCY_SYMBOLS.get(currency.upper(), f"{currency.upper()} ")


def _group(amount: Decimal, places: int) -> str:
    return f"{amount:,.{places}f}"


def _two_places(value: Decimal) -> str:
    """Grouped digits and at most two decimals, without trailing zeros (1,077.30 → 1,077.3)."""
    text = f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_money(amount: Decimal | int | None, currency: str) -> str:
    """An exact amount with its currency sign and thousands separators: ``¥1,234.50``,
    ``-¥12.00``; empty for None."""
    if amount is None:
        return ""
    rounded = round_for_currency(Decimal(amount), currency)
    sign = "-" if rounded < 0 else ""
    return f"{sign}{currency_symbol(currency)}{_group(abs(rounded), currency_places(currency))}"


def compact_number(value: Decimal | int, language: str | None) -> str:
    """A large figure shortened for a headline: ``1.23万`` / ``4.5亿`` in Chinese,
    ``1.23M`` / ``4.5B`` in English; smaller figures keep their digits (``9,876``)."""
    number = Decimal(value)
    magnitude = abs(number)
    if is_chinese(language):
        if magnitude >= _YI:
            return f"{_two_places(number / _YI)}亿"
        if magnitude >= _WAN:
            return f"{_two_places(number / _WAN)}万"
    else:
        if magnitude >= _BILLION:
            return f"{_two_places(number / _BILLION)}B"
        if magnitude >= _MILLION:
            return f"{_two_places(number / _MILLION)}M"
    if number == number.to_integral_value():
        return _group(number, 0)
    return _group(number, 2)


def format_count(value: int | None, language: str | None) -> str:
    """A count of things: grouped digits, or 万 / 亿 in Chinese from ten thousand up."""
    if value is None:
        return ""
    if is_chinese(language) and abs(value) >= _WAN:
        return compact_number(value, language)
    return _group(Decimal(value), 0)


def format_money_compact(amount: Decimal | None, currency: str, language: str | None) -> str:
    """Money for a KPI card: exact below ten thousand (or a million in English), else
    ``¥12.35万`` / ``¥1.2亿`` in Chinese and ``¥1.23M`` in English."""
    if amount is None:
        return ""
    magnitude = abs(Decimal(amount))
    threshold = _WAN if is_chinese(language) else _MILLION
    if magnitude < threshold:
        return format_money(amount, currency)
    sign = "-" if amount < 0 else ""
    return f"{sign}{currency_symbol(currency)}{compact_number(magnitude, language)}"


def format_percent(rate: Decimal | float | None, places: int = 1) -> str:
    """A share as a percentage: ``0.4251`` → ``42.5%``; an en dash when there is no rate."""
    if rate is None:
        return "–"
    percent = (Decimal(str(rate)) * 100).quantize(
        Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP
    )
    return f"{percent}%"


def format_change(change: Decimal | None) -> str:
    """A relative change with its sign: ``+5.2%``, ``-12.0%``; empty when there is none."""
    if change is None:
        return ""
    text = format_percent(change)
    return text if text.startswith("-") else f"+{text}"


def format_number(value: Decimal | float | None, places: int = 1) -> str:
    """A measured figure (days, orders per customer): grouped digits, ``places`` decimals,
    half up: ``1234.56`` → ``1,234.6``; an en dash when there is none."""
    if value is None:
        return "–"
    rounded = Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return _group(rounded, places)


def format_point_change(delta: Decimal | float | None, language: str | None) -> str:
    """The change of a rate in percentage points, with its sign: ``0.021`` → ``+2.1 pp``, or
    ``+2.1个百分点`` in Chinese (a relative change of a rate reads ambiguously); empty when
    there is none."""
    if delta is None:
        return ""
    points = (Decimal(str(delta)) * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    sign = "-" if points < 0 else "+"
    unit = "个百分点" if is_chinese(language) else " pp"
    return f"{sign}{abs(points)}{unit}"


def format_signed_count(value: int | None, language: str | None) -> str:
    """A change of a count with its sign: ``+1,200``, ``-50`` (``+1.2万`` in Chinese); empty
    for None, ``0`` for zero."""
    if value is None:
        return ""
    text = format_count(abs(value), language)
    if value > 0:
        return f"+{text}"
    return f"-{text}" if value < 0 else text
