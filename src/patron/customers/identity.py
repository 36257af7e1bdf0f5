"""Normalisation of the identifiers that name a customer (e-mail, phone)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

from patron.privacy.pii.crypto import blind_index, blind_index_candidates

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


def index_form_email(raw: str) -> str:
    """The form of an e-mail address that is blind-indexed: normalised when it is an address,
    else folded the same way (NFKC, trimmed, lower-case) so an exact lookup still matches."""
    try:
        return normalize_email(raw)
    except InvalidIdentifier:
        return unicodedata.normalize("NFKC", raw).strip().lower()


def index_form_phone(raw: str) -> str:
    """The form of a phone number that is blind-indexed: E.164 when it parses, else its
    digits (and a leading ``+``)."""
    try:
        return normalize_phone(raw)
    except InvalidIdentifier:
        text = unicodedata.normalize("NFKC", raw).strip()
        return ("+" if text.startswith("+") else "") + re.sub(r"\D", "", text)


def index_form_name(raw: str) -> str:
    """The form of a name that is blind-indexed: NFKC, case-folded, spaces folded to one
    (``Zhang  Wei`` and ``zhang wei`` match; ``张伟`` and ``张 伟`` match)."""
    text = unicodedata.normalize("NFKC", raw).casefold()
    if any("\u3400" <= character <= "\u9fff" for character in text):
        return "".join(text.split())
    return " ".join(text.split())


#: Identity kinds that are personal data: stored as a blind index plus the encrypted value.
PERSONAL_IDENTITY_KINDS = frozenset({"email", "phone"})


def stored_identity(kind: str, value: str) -> tuple[str, str]:
    """``(value, secret)`` columns of an identity given its normalised value: for e-mail and
    phone the blind index (newest key) and the value to encrypt, else the value and ``""``."""
    if kind in PERSONAL_IDENTITY_KINDS:
        return blind_index(kind, value), value
    return value, ""


def identity_lookup_values(kind: str, value: str) -> list[str]:
    """What ``CustomerIdentity.value`` may hold for this normalised identifier: its blind index
    under every configured key for e-mail and phone (rows not yet rotated are found too), the
    value itself for other kinds."""
    if kind in PERSONAL_IDENTITY_KINDS:
        return blind_index_candidates(kind, value)
    return [value]
