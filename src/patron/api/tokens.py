"""Creating, checking and revoking API tokens.

A token is ``ptn_`` followed by 32 random bytes in URL-safe base64. Only its SHA-256 is
stored; a request's token is hashed and looked up by that hash, so checking a token never
compares secret material byte by byte in Python.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from patron.api.models import ApiToken

TOKEN_PREFIX = "ptn_"
KEY_PREFIX_LENGTH = 8
#: ``last_used_at`` is written at most this often per token, so that a busy client does not
#: turn every API read into a database write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
# A real token is 47 characters; anything much longer is not worth hashing.
_MAX_TOKEN_LENGTH = 200


class TokenNotFound(LookupError):
    """No token matches the given prefix."""


class AmbiguousTokenPrefix(LookupError):
    """More than one token matches the given prefix."""


def hash_token(plaintext: str) -> str:
    """The SHA-256 hex digest stored for a token."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_token(
    user: User, name: str = "", expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a token for ``user`` and return it with its plaintext, which is never stored.

    ``expires_at`` (timezone-aware) ends the token's validity; ``None`` means it never expires.
    """
    if expires_at is not None and timezone.is_naive(expires_at):
        raise ValueError("expires_at must be timezone-aware")
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        key_prefix=plaintext[:KEY_PREFIX_LENGTH],
        key_hash=hash_token(plaintext),
        expires_at=expires_at,
    )
    return token, plaintext


def authenticate_token(plaintext: str, *, now: datetime | None = None) -> User | None:
    """The active user a token belongs to, or ``None`` for an unknown, revoked or expired
    token or an inactive user. Records the use (at most once a minute per token)."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > _MAX_TOKEN_LENGTH:
        return None
    now = now or timezone.now()
    digest = hash_token(plaintext)
    token = ApiToken.objects.select_related("user").filter(key_hash=digest).first()
    if token is None or not hmac.compare_digest(token.key_hash, digest):
        return None
    if token.status_at(now) != "active" or not token.user.is_active:
        return None
    # A conditional UPDATE rather than read-modify-write: concurrent requests write once.
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
    return token.user


def list_tokens() -> QuerySet[ApiToken]:
    """Every token, oldest first, with its user."""
    return ApiToken.objects.select_related("user").order_by("created_at", "pk")


def get_token_by_prefix(key_prefix: str) -> ApiToken:
    """The one unrevoked token whose key starts with ``key_prefix`` (at least 8 characters;
    a whole token works too). Raises :class:`TokenNotFound` or :class:`AmbiguousTokenPrefix`."""
    key_prefix = key_prefix.strip()
    if len(key_prefix) < KEY_PREFIX_LENGTH:
        raise TokenNotFound(
            f"give at least the first {KEY_PREFIX_LENGTH} characters of the token, "
            f"as `patron token list` shows them; got {key_prefix!r}"
        )
    candidates = ApiToken.objects.filter(
        key_prefix=key_prefix[:KEY_PREFIX_LENGTH], revoked_at__isnull=True
    )
    if len(key_prefix) > KEY_PREFIX_LENGTH:
        candidates = candidates.filter(key_hash=hash_token(key_prefix))
    matches = list(candidates[:2])
    if not matches:
        raise TokenNotFound(f"no unrevoked token starts with {key_prefix!r}")
    if len(matches) > 1:
        raise AmbiguousTokenPrefix(
            f"several tokens start with {key_prefix!r}: give the whole token to revoke one"
        )
    return matches[0]


def revoke_token(key_prefix: str, *, now: datetime | None = None) -> ApiToken:
    """Revoke the token named by ``key_prefix`` (see :func:`get_token_by_prefix`) and return
    it. A revoked token is kept for the record but never authenticates again."""
    token = get_token_by_prefix(key_prefix)
    token.revoked_at = now or timezone.now()
    token.save(update_fields=["revoked_at"])
    return token
