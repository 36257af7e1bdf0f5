"""Authenticated encryption of personal values and their blind indexes.

An encrypted value is text: ``pii1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``, AES-256-GCM
with a random 96-bit nonce and the version and key id as associated data, so a value moved to
another key id or altered in any byte fails authentication instead of decrypting to garbage.

A blind index is ``<key id>:<base64url(HMAC-SHA256)>`` of a *normalised* value under the key's
index sub-key, with a purpose label (``email``, ``phone`` ...) so that equal text of two kinds
gives unrelated digests. Equal values give equal indexes under one key: exact lookups work
without the plaintext, partial ones cannot.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag

from patron.privacy.pii.keys import KeyRing, PiiKey, PiiKeyError, key_ring

VERSION = "pii1"
_NONCE_BYTES = 12
_PREFIX = VERSION + "."


class PiiDecryptionError(ValueError):
    """An encrypted value that cannot be read: not an encrypted value, or altered."""


def _associated_data(key_id: str) -> bytes:
    return f"{VERSION}.{key_id}".encode()


def encrypt_text(plaintext: str, ring: KeyRing | None = None) -> str:
    """Encrypt ``plaintext`` under the newest key of the ring."""
    key = (ring or key_ring()).newest
    nonce = os.urandom(_NONCE_BYTES)
    sealed = key.cipher.encrypt(nonce, plaintext.encode(), _associated_data(key.key_id))
    return f"{_PREFIX}{key.key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def encrypt_many(values: Iterable[str | None], ring: KeyRing | None = None) -> list[str | None]:
    """Encrypt each value (``None`` and ``""`` stay as they are: there is nothing to hide)."""
    ring = ring or key_ring()
    return [encrypt_text(value, ring) if value else value for value in values]


def is_encrypted(value: str) -> bool:
    """Whether ``value`` has the form of an encrypted value (it may still fail to decrypt)."""
    return value.startswith(_PREFIX) and value.count(".") == 2


def key_id_of(token: str) -> str:
    """The id of the key ``token`` was encrypted with."""
    if not is_encrypted(token):
        raise PiiDecryptionError(
            f"not an encrypted personal value (expected {_PREFIX}<key id>.<data>, "
            f"got {len(token)} characters of other text)"
        )
    return token.split(".", 2)[1]


def decrypt_text(token: str, ring: KeyRing | None = None) -> str:
    """Decrypt a value made by :func:`encrypt_text` with any key of the ring.

    Raises :class:`PiiDecryptionError` for text that is not an encrypted value or that was
    altered, and :class:`~patron.privacy.pii.keys.PiiKeyError` when its key is not configured.
    """
    key_id = key_id_of(token)
    key = (ring or key_ring()).get(key_id)
    try:
        data = base64.urlsafe_b64decode(token.split(".", 2)[2])
    except (binascii.Error, ValueError) as error:
        raise PiiDecryptionError(
            f"encrypted value under key {key_id!r} is damaged: its data is not base64"
        ) from error
    if len(data) <= _NONCE_BYTES:
        raise PiiDecryptionError(f"encrypted value under key {key_id!r} is truncated")
    try:
        plain = key.cipher.decrypt(
            data[:_NONCE_BYTES], data[_NONCE_BYTES:], _associated_data(key_id)
        )
    except InvalidTag as error:
        raise PiiDecryptionError(
            f"encrypted value under key {key_id!r} failed authentication: it was altered, or "
            f"key {key_id!r} in PATRON_PII_KEYS is not the key it was written with"
        ) from error
    return plain.decode()


def reencrypt(token: str, ring: KeyRing | None = None) -> str:
    """``token`` under the newest key (itself when it is already)."""
    ring = ring or key_ring()
    if key_id_of(token) == ring.newest.key_id:
        return token
    return encrypt_text(decrypt_text(token, ring), ring)


def _digest(key: PiiKey, purpose: str, normalised: str) -> str:
    mac = hmac.new(key.index_key, f"{purpose}\x00{normalised}".encode(), hashlib.sha256)
    return f"{key.key_id}:{base64.urlsafe_b64encode(mac.digest()).decode().rstrip('=')}"


def blind_index(purpose: str, normalised: str, ring: KeyRing | None = None) -> str:
    """The blind index of an already normalised value under the newest key."""
    return _digest((ring or key_ring()).newest, purpose, normalised)


def blind_index_candidates(purpose: str, normalised: str, ring: KeyRing | None = None) -> list[str]:
    """The value's blind index under every configured key, newest first: what a lookup matches,
    so rows not yet rotated to the newest key are still found."""
    return [_digest(key, purpose, normalised) for key in (ring or key_ring()).keys]


def index_key_id(index: str) -> str:
    """The id of the key a blind index was computed with."""
    key_id, separator, _ = index.partition(":")
    if not separator:
        raise PiiKeyError(f"not a blind index: {len(index)} characters without a key id")
    return key_id


def decrypt_many(tokens: Sequence[str | None], ring: KeyRing | None = None) -> list[str | None]:
    """Decrypt each value (``None`` and ``""`` stay as they are)."""
    ring = ring or key_ring()
    return [decrypt_text(token, ring) if token else token for token in tokens]
