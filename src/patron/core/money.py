"""Money rules: amounts are ``Decimal`` with a currency, quantized in one place."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.conf import settings
from django.db import models

#: Digits kept in the store. Four places keep wholesale unit prices such as 0.001 exact;
#: display rounds to the currency's own precision.
MONEY_DECIMAL_PLACES = 4
MONEY_MAX_DIGITS = 18
_STORAGE_QUANTUM = Decimal(1).scaleb(-MONEY_DECIMAL_PLACES)

#: Minor-unit digits of currencies whose precision is not two places.
_CURRENCY_PLACES = {"JPY": 0, "KRW": 0, "VND": 0, "BHD": 3, "KWD": 3, "OMR": 3}


def default_currency() -> str:
    """The shop's currency (``PATRON_CURRENCY``, CNY by default)."""
    return str(settings.PATRON_CURRENCY)


def quantize_amount(amount: Decimal) -> Decimal:
    """Round an amount to the store's precision, half up (the one rounding rule for storage)."""
    return amount.quantize(_STORAGE_QUANTUM, rounding=ROUND_HALF_UP)


def currency_places(currency: str) -> int:
    """Number of minor-unit digits of a currency (2 unless listed otherwise)."""
    return _CURRENCY_PLACES.get(currency.upper(), 2)


def round_for_currency(amount: Decimal, currency: str) -> Decimal:
    """Round an amount to the currency's own precision, half up (for display and totals)."""
    return amount.quantize(Decimal(1).scaleb(-currency_places(currency)), rounding=ROUND_HALF_UP)


class MoneyField(models.DecimalField):
    """A money amount column with the store's precision (pair it with a ``currency`` column)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", MONEY_MAX_DIGITS)
        kwargs.setdefault("decimal_places", MONEY_DECIMAL_PLACES)
        super().__init__(*args, **kwargs)


class CurrencyField(models.CharField):
    """ISO 4217 currency code, the shop's currency by default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 3)
        kwargs.setdefault("default", default_currency)
        super().__init__(*args, **kwargs)
