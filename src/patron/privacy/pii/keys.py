"""The key ring of personal-data encryption: ``PATRON_PII_KEYS``, newest key first.

``PATRON_PII_KEYS`` lists keys as ``id:base64`` entries separated by commas, e.g.
``k2:<44 characters>,k1:<44 characters>``. Each key is 32 random bytes. The first key
encrypts and indexes new values; every listed key decrypts, so a value written under an older
key stays readable until ``patron privacy rotate-keys`` has moved it to the newest one.

From each key two sub-keys are derived (HKDF-SHA256 with distinct labels): one for AES-GCM
encryption and one for the HMAC of blind indexes, so the same bytes never serve two purposes.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_ENCRYPTION_LABEL = b"patron pii encryption v1"
_INDEX_LABEL = b"patron pii blind index v1"


class PiiKeyError(ValueError):
    """``PATRON_PII_KEYS`` is missing, malformed, or lacks the key a value was written with."""


@dataclass(frozen=True)
class PiiKey:
    """One key of the ring with its derived sub-keys (never printed: no key material in
    ``repr``)."""

    key_id: str
    cipher: AESGCM
    index_key: bytes

    def __repr__(self) -> str:
        return f"PiiKey({self.key_id!r})"


@dataclass(frozen=True)
class KeyRing:
    """The configured keys, newest first."""

    keys: tuple[PiiKey, ...]

    @property
    def newest(self) -> PiiKey:
        """The key that encrypts and indexes new values."""
        return self.keys[0]

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of the keys, newest first."""
        return tuple(key.key_id for key in self.keys)

    def get(self, key_id: str) -> PiiKey:
        """The key named ``key_id``; :class:`PiiKeyError` naming the known ids if absent."""
        for key in self.keys:
            if key.key_id == key_id:
                return key
        raise PiiKeyError(
            f"the value was encrypted with key {key_id!r}, which is not in PATRON_PII_KEYS "
            f"(it holds {', '.join(self.key_ids)}): put that key back in the list, or restore "
            "the key backup"
        )


def _derive(secret: bytes, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=label).derive(secret)


def parse_key_ring(text: str) -> KeyRing:
    """Parse ``PATRON_PII_KEYS`` text (``id:base64,...``, newest first) into a key ring.

    Raises :class:`PiiKeyError` naming the entry (by position and id, never its key material)
    that is malformed: an empty list, a missing ``:``, a bad id, text that is not base64, a
    key that is not 32 bytes, or an id listed twice.
    """
    entries = [entry.strip() for entry in text.split(",") if entry.strip()]
    if not entries:
        raise PiiKeyError(
            "PATRON_PII_KEYS is empty: give at least one key as id:base64 "
            "(make one with `patron privacy new-key`)"
        )
    keys: list[PiiKey] = []
    for position, entry in enumerate(entries, start=1):
        key_id, separator, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not separator:
            raise PiiKeyError(
                f"PATRON_PII_KEYS entry {position}: write it as id:base64 (no ':' found)"
            )
        if not _KEY_ID.match(key_id):
            raise PiiKeyError(
                f"PATRON_PII_KEYS entry {position}: key id {key_id!r} must be 1 to 32 letters, "
                "digits, '-' or '_'"
            )
        try:
            secret = base64.b64decode(_padded(encoded.strip()), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError) as error:
            raise PiiKeyError(
                f"PATRON_PII_KEYS entry {position} (key {key_id!r}): the key is not base64"
            ) from error
        if len(secret) != KEY_BYTES:
            raise PiiKeyError(
                f"PATRON_PII_KEYS entry {position} (key {key_id!r}): the key is {len(secret)} "
                f"bytes, it must be {KEY_BYTES} random bytes in base64"
            )
        if any(key.key_id == key_id for key in keys):
            raise PiiKeyError(
                f"PATRON_PII_KEYS entry {position}: key id {key_id!r} is listed twice"
            )
        keys.append(
            PiiKey(
                key_id=key_id,
                cipher=AESGCM(_derive(secret, _ENCRYPTION_LABEL)),
                index_key=_derive(secret, _INDEX_LABEL),
            )
        )
    return KeyRing(tuple(keys))


def _padded(encoded: str) -> str:
    # Standard and URL-safe alphabets both accepted; padding optional.
    return encoded.replace("+", "-").replace("/", "_") + "=" * (-len(encoded) % 4)


def new_key_entry(key_id: str) -> str:
    """A fresh ``id:base64`` entry of 32 random bytes, to put first in ``PATRON_PII_KEYS``."""
    if not _KEY_ID.match(key_id):
        raise PiiKeyError(f"key id {key_id!r} must be 1 to 32 letters, digits, '-' or '_'")
    return f"{key_id}:{base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"


@lru_cache(maxsize=8)
def _cached_ring(text: str) -> KeyRing:
    return parse_key_ring(text)


def key_ring() -> KeyRing:
    """The key ring of the running settings (``settings.PATRON_PII_KEYS``), parsed once per
    distinct value (tests and rotation change the setting)."""
    return _cached_ring(str(getattr(settings, "PATRON_PII_KEYS", "")))
