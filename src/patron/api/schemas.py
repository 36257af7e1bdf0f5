"""Field types shared by the API's schemas: times in the shop's zone, money as strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated

from django.utils import timezone
from pydantic import AfterValidator, AwareDatetime, PlainSerializer

from patron.core.money import round_for_currency

#: The last page number a paged list accepts (a 422 past it): far beyond any real list, and
#: its offset stays within the databases' 64-bit integers, which a page number near 2**63
#: overflowed (a 500).
MAX_PAGE_NUMBER = 1_000_000


def _shop_time(value: datetime) -> str:
    return timezone.localtime(value).isoformat()


#: A timezone-aware datetime, written as ISO 8601 in the shop's time zone with its offset
#: (``2024-11-11T20:00:00+08:00``).
ShopDateTime = Annotated[datetime, PlainSerializer(_shop_time, return_type=str)]


#: The widest UTC offsets in use (Baker Island -12:00, Kiribati +14:00). Wider offsets parse
#: as ISO 8601 but name no place, and PostgreSQL refuses any beyond 15:59 (a 500).
MIN_UTC_OFFSET = timedelta(hours=-12)
MAX_UTC_OFFSET = timedelta(hours=14)


def _real_offset_in_utc(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset is None or not MIN_UTC_OFFSET <= offset <= MAX_UTC_OFFSET:
        raise ValueError("the UTC offset must be between -12:00 and +14:00")
    return value.astimezone(UTC)


#: A timezone-aware datetime sent to the API (``2024-11-11T20:00:00+08:00``): refused with a
#: 422 when its offset is not a real one, stored in UTC.
ApiDateTime = Annotated[AwareDatetime, AfterValidator(_real_offset_in_utc)]


def format_amount(amount: Decimal | None, currency: str) -> str:
    """A money amount as a decimal string rounded to the currency (``"1234.50"``)."""
    return str(round_for_currency(amount or Decimal(0), currency))
