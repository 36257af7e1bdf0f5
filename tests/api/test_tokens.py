"""Tokens: created once, stored as a hash, refused when revoked or expired."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from patron.api.models import ApiToken
from patron.api.tokens import (
    AmbiguousTokenPrefix,
    TokenNotFound,
    authenticate_token,
    create_token,
    revoke_token,
)


def test_create_token_stores_only_the_hash_and_prefix(api_user: User) -> None:
    # when
    token, plaintext = create_token(api_user, "erp sync")
    # then
    assert plaintext.startswith("ptn_")
    assert len(plaintext) == 47
    stored = ApiToken.objects.values().get(pk=token.pk)
    assert stored["key_hash"] == hashlib.sha256(plaintext.encode()).hexdigest()
    assert stored["key_prefix"] == plaintext[:8]
    assert stored["name"] == "erp sync"
    assert not any(plaintext in str(value) for value in stored.values())


def test_two_tokens_differ(api_user: User) -> None:
    assert create_token(api_user)[1] != create_token(api_user)[1]


def test_authenticate_token_returns_the_user_and_records_the_use(api_user: User) -> None:
    # given
    token, plaintext = create_token(api_user)
    now = timezone.now()
    # when
    user = authenticate_token(plaintext, now=now)
    # then
    assert user == api_user
    token.refresh_from_db()
    assert token.last_used_at == now


def test_last_used_at_is_written_at_most_once_a_minute(api_user: User) -> None:
    # given
    token, plaintext = create_token(api_user)
    first = timezone.now()
    authenticate_token(plaintext, now=first)
    # when: used again 59 s later, then 60 s later
    authenticate_token(plaintext, now=first + timedelta(seconds=59))
    token.refresh_from_db()
    after_59_seconds = token.last_used_at
    authenticate_token(plaintext, now=first + timedelta(seconds=60))
    token.refresh_from_db()
    # then
    assert after_59_seconds == first
    assert token.last_used_at == first + timedelta(seconds=60)


@pytest.mark.parametrize(
    "plaintext",
    ["", "ptn_", "ptn_not-a-real-token-at-all-0000000000000000000", "Bearer x", "ptn_" + "a" * 500],
)
def test_unknown_tokens_authenticate_nobody(api_user: User, plaintext: str) -> None:
    create_token(api_user)
    assert authenticate_token(plaintext) is None


def test_a_revoked_token_authenticates_nobody(api_user: User) -> None:
    # given
    token, plaintext = create_token(api_user)
    # when
    revoked = revoke_token(token.key_prefix)
    # then
    assert revoked.pk == token.pk
    assert revoked.revoked_at is not None
    assert authenticate_token(plaintext) is None
    assert ApiToken.objects.get(pk=token.pk).status_at(timezone.now()) == "revoked"


def test_a_token_expires_at_its_expiry_time(api_user: User) -> None:
    # given
    expires_at = timezone.now() + timedelta(days=1)
    _, plaintext = create_token(api_user, expires_at=expires_at)
    # then
    assert authenticate_token(plaintext, now=expires_at - timedelta(seconds=1)) == api_user
    assert authenticate_token(plaintext, now=expires_at) is None


def test_a_token_of_an_inactive_user_authenticates_nobody(api_user: User) -> None:
    # given
    _, plaintext = create_token(api_user)
    api_user.is_active = False
    api_user.save()
    # then
    assert authenticate_token(plaintext) is None


def test_naive_expiry_is_refused(api_user: User) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        create_token(api_user, expires_at=timezone.now().replace(tzinfo=None))


def test_revoke_needs_eight_characters(api_user: User) -> None:
    create_token(api_user)
    with pytest.raises(TokenNotFound, match="at least the first 8 characters"):
        revoke_token("ptn_")


def test_revoke_by_unknown_prefix_says_so(api_user: User) -> None:
    with pytest.raises(TokenNotFound, match="no unrevoked token starts with 'ptn_zzzz'"):
        revoke_token("ptn_zzzz")


def test_revoke_of_an_ambiguous_prefix_asks_for_the_whole_token(api_user: User) -> None:
    # given: two tokens that share a prefix (4 random characters, so it happens)
    first, first_plaintext = create_token(api_user)
    second, _ = create_token(api_user)
    ApiToken.objects.filter(pk=second.pk).update(key_prefix=first.key_prefix)
    # when / then
    with pytest.raises(AmbiguousTokenPrefix, match="give the whole token"):
        revoke_token(first.key_prefix)
    assert revoke_token(first_plaintext).pk == first.pk
    assert ApiToken.objects.get(pk=second.pk).revoked_at is None
