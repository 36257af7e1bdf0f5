"""Template filters for money, counts and rates that follow the active language.

``{% load patron_format %}`` then ``{{ amount|money:currency }}``,
``{{ amount|money_compact:currency }}``, ``{{ count|count }}`` and ``{{ rate|percent }}``.
"""

from __future__ import annotations

from decimal import Decimal

from django import template
from django.utils.translation import get_language

from patron.web import formatting

register = template.Library()


@register.filter
def money(amount: Decimal | None, currency: str = "CNY") -> str:
    """An exact amount: ``¥1,234.50``."""
    return formatting.format_money(amount, currency or "CNY")


@register.filter
def money_compact(amount: Decimal | None, currency: str = "CNY") -> str:
    """A headline amount: ``¥12.35万`` in Chinese, ``¥1.23M`` in English for large sums."""
    return formatting.format_money_compact(amount, currency or "CNY", get_language())


@register.filter(name="count")
def count_filter(value: int | None) -> str:
    """A count: ``12,345`` in English, ``1.23万`` in Chinese."""
    return formatting.format_count(value, get_language())


@register.filter
def percent(rate: Decimal | float | None) -> str:
    """A share as a percentage: ``42.5%``."""
    return formatting.format_percent(rate)


@register.filter
def change(rate: Decimal | None) -> str:
    """A relative change with its sign: ``+5.2%``."""
    return formatting.format_change(rate)


@register.filter
def number(value: Decimal | float | None, places: int = 1) -> str:
    """A measured figure with ``places`` decimals: ``1,234.6``."""
    return formatting.format_number(value, places)


@register.filter
def points(delta: Decimal | float | None) -> str:
    """The change of a rate in percentage points: ``+2.1 pp`` / ``+2.1个百分点``."""
    return formatting.format_point_change(delta, get_language())


@register.filter
def signed(value: int | None) -> str:
    """A change of a count with its sign: ``+1,200``, ``-50``."""
    return formatting.format_signed_count(value, get_language())
