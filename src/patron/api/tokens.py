"""Creating, checking and revoking API tokens.

A token is ``ptn_`` followed by 32 random bytes in URL-safe base64. Only its keyed hash is
stored: HMAC-SHA256 under the token key (``PATRON_TOKEN_KEY``, or a key derived from the
secret key), so that a copy of the database lets nobody use or even test a token without the
key. A request's token is hashed and looked up by that hash, so checking a token never compares
secret material byte by byte in Python.

Tokens made before keyed hashes hold a plain SHA-256 (``hash_scheme`` ``sha256``): they are
still accepted, and their hash is replaced by the keyed one the first time they are used.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from patron.api.choices import ScopeChoices, TokenHashChoices
from patron.api.models import ApiToken
from patron.core.sql import columns, fetch_all, link

TOKEN_PREFIX = "ptn_"
KEY_PREFIX_LENGTH = 8
#: ``last_used_at`` is written at most this often per token, so that a busy client does not
#: turn every API read into a database write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: Every scope, in the order they are listed.
ALL_SCOPES: tuple[ScopeChoices, ...] = tuple(ScopeChoices)
# A real token is 47 characters; anything much longer is not worth hashing.
_MAX_TOKEN_LENGTH = 200
# Separates the derived token key from every other use of the secret key.
_KEY_SALT = b"patron.api.tokens.ApiToken.key_hash"


class TokenNotFound(LookupError):
    """No token matches the given prefix."""


class AmbiguousTokenPrefix(LookupError):
    """More than one token matches the given prefix."""


def _token_key() -> bytes:
    """The HMAC key of token hashes: ``PATRON_TOKEN_KEY``, else derived from the secret key."""
    configured: str = settings.API_TOKEN_KEY
    if configured:
        return configured.encode()
    return hashlib.sha256(_KEY_SALT + settings.SECRET_KEY.encode()).digest()


def hash_token(plaintext: str) -> str:
    """The keyed hash (HMAC-SHA256 hex digest) stored for a token."""
    return hmac.new(_token_key(), plaintext.encode(), hashlib.sha256).hexdigest()


def legacy_hash_token(plaintext: str) -> str:
    """The plain SHA-256 that tokens created before keyed hashes were stored under."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def normalise_scopes(scopes: Iterable[str]) -> str:
    """``scopes`` as stored: known scope names, each once, in :data:`ALL_SCOPES` order.
    Raises ``ValueError`` naming an unknown scope or an empty set."""
    wanted = {str(scope).strip().lower() for scope in scopes}
    unknown = sorted(wanted - set(ScopeChoices.values))
    if unknown:
        raise ValueError(
            f"unknown token scope {', '.join(map(repr, unknown))}: "
            f"use {', '.join(ScopeChoices.values)}"
        )
    if not wanted:
        raise ValueError(f"a token needs at least one scope: {', '.join(ScopeChoices.values)}")
    return " ".join(scope.value for scope in ALL_SCOPES if scope.value in wanted)


def create_token(
    user: User,
    name: str = "",
    expires_at: datetime | None = None,
    *,
    scopes: Iterable[str] = ALL_SCOPES,
) -> tuple[ApiToken, str]:
    """Create a token for ``user`` and return it with its plaintext, which is never stored.

    ``expires_at`` (timezone-aware) ends the token's validity; ``None`` means it never expires.
    ``scopes`` are the kinds of endpoint it may call (every scope unless given: the
    ``patron token create`` command always asks for them).
    """
    if expires_at is not None and timezone.is_naive(expires_at):
        raise ValueError("expires_at must be timezone-aware")
    stored_scopes = normalise_scopes(scopes)
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        key_prefix=plaintext[:KEY_PREFIX_LENGTH],
        key_hash=hash_token(plaintext),
        hash_scheme=TokenHashChoices.HMAC_SHA256,
        scopes=stored_scopes,
        expires_at=expires_at,
    )
    return token, plaintext


def _find(plaintext: str, queryset: QuerySet[ApiToken]) -> ApiToken | None:
    """The token whose stored hash is the plaintext's under its own scheme (one query)."""
    keyed, legacy = hash_token(plaintext), legacy_hash_token(plaintext)
    for token in queryset.filter(key_hash__in=(keyed, legacy))[:2]:
        expected = keyed if token.hash_scheme == TokenHashChoices.HMAC_SHA256 else legacy
        if hmac.compare_digest(token.key_hash, expected):
            return token
    return None


def _find_with_user(plaintext: str) -> ApiToken | None:
    """:func:`_find` over every token, with the token's user loaded: one statement of SQL
    (``patron.core.sql``), since every API request by token starts here."""
    keyed, legacy = hash_token(plaintext), legacy_hash_token(plaintext)
    token_columns, user_columns = columns(ApiToken, "t"), columns(User, "u")
    rows = fetch_all(
        f"SELECT {token_columns.sql}, {user_columns.sql} FROM {token_columns.table} "
        f"JOIN {user_columns.table} ON {user_columns.column('id')} = "
        f"{token_columns.column('user_id')} "
        f"WHERE {token_columns.column('key_hash')} IN (%s, %s) LIMIT 2",
        [keyed, legacy],
    )
    for row in rows:
        token = token_columns.instance(row)
        assert token is not None
        expected = keyed if token.hash_scheme == TokenHashChoices.HMAC_SHA256 else legacy
        if hmac.compare_digest(token.key_hash, expected):
            link(token, "user", user_columns.instance(row, len(token_columns)))
            return token
    return None


def _upgrade_legacy_hash(token: ApiToken, plaintext: str) -> None:
    """Replace a legacy SHA-256 by the keyed hash (conditional: concurrent uses write once)."""
    keyed = hash_token(plaintext)
    ApiToken.objects.filter(pk=token.pk, hash_scheme=TokenHashChoices.SHA256).update(
        key_hash=keyed, hash_scheme=TokenHashChoices.HMAC_SHA256
    )
    token.key_hash, token.hash_scheme = keyed, TokenHashChoices.HMAC_SHA256


def authenticate_token(plaintext: str, *, now: datetime | None = None) -> ApiToken | None:
    """The active token (with its active user loaded) that ``plaintext`` is, or ``None`` for
    an unknown, revoked or expired token or an inactive user. Records the use (at most once a
    minute per token) and upgrades a legacy hash to the keyed one."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > _MAX_TOKEN_LENGTH:
        return None
    now = now or timezone.now()
    token = _find_with_user(plaintext)
    if token is None or token.status_at(now) != "active" or not token.user.is_active:
        return None
    if token.hash_scheme != TokenHashChoices.HMAC_SHA256:
        _upgrade_legacy_hash(token, plaintext)
    # A conditional UPDATE rather than read-modify-write: concurrent requests write once.
    if token.last_used_at is None or token.last_used_at <= now - LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
    return token


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
        whole = _find(key_prefix, candidates)
        matches = [whole] if whole is not None else []
    else:
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
