"""Normalisation of the identifiers that name a customer (e-mail, phone)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

DEFAULT_PHONE_REGION = "CN"
_EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class InvalidIdentifier(ValueError):
    """An e-mail address or phone number that cannot be normalised."""


def normalize_email(raw: str) -> str:
    """Return the e-mail address trimmed, NFKC-folded and lower-cased.

    Full-width characters typed on Chinese keyboards (``ｚｈａｎｇ＠qq.com``) fold to ASCII.
    """
    value = unicodedata.normalize("NFKC", raw).strip().lower()
    if not _EMAIL_PATTERN.match(value):
        raise InvalidIdentifier(f"not an e-mail address: {raw!r}")
    return value


@lru_cache(maxsize=65536)
def normalize_phone(raw: str, region: str = DEFAULT_PHONE_REGION) -> str:
    """Return the phone number in E.164 (``+8613812345678``), numbers without a country code
    being read in ``region`` (China by default)."""
    text = unicodedata.normalize("NFKC", raw).strip()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as error:
        raise InvalidIdentifier(f"not a phone number: {raw!r}") from error
    if not phonenumbers.is_possible_number(number):
        raise InvalidIdentifier(f"not a possible phone number: {raw!r}")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
