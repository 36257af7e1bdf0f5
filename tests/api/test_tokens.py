"""Tokens: created once, stored as a keyed hash, scoped, refused when revoked or expired."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone

from patron.api.choices import ScopeChoices, TokenHashChoices
from patron.api.models import ApiToken
from patron.api.tokens import (
    AmbiguousTokenPrefix,
    TokenNotFound,
    authenticate_token,
    create_token,
    revoke_token,
)


@override_settings(API_TOKEN_KEY="a-dedicated-token-key-of-enough-length")
def test_create_token_stores_only_the_keyed_hash_and_prefix(api_user: User) -> None:
    # when
    token, plaintext = create_token(api_user, "erp sync")
    # then: HMAC-SHA256 under the token key, not a plain hash anyone could recompute
    assert plaintext.startswith("ptn_")
    assert len(plaintext) == 47
    stored = ApiToken.objects.values().get(pk=token.pk)
    expected = hmac.new(
        b"a-dedicated-token-key-of-enough-length", plaintext.encode(), hashlib.sha256
    ).hexdigest()
    assert stored["key_hash"] == expected
    assert stored["key_hash"] != hashlib.sha256(plaintext.encode()).hexdigest()
    assert stored["hash_scheme"] == "hmac-sha256"
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
    found = authenticate_token(plaintext, now=now)
    # then
    assert found is not None
    assert found.user == api_user
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
    assert authenticate_token(plaintext, now=expires_at - timedelta(seconds=1)) is not None
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


def test_a_token_made_under_another_key_authenticates_nobody(api_user: User) -> None:
    # given: a token hashed under one key
    with override_settings(API_TOKEN_KEY="the-first-token-key-0123456789abcdef"):
        _, plaintext = create_token(api_user)
        assert authenticate_token(plaintext) is not None
    # when / then: the server's key is another one
    with override_settings(API_TOKEN_KEY="the-second-token-key-0123456789abcdef"):
        assert authenticate_token(plaintext) is None


def test_without_a_token_key_the_key_derives_from_the_secret_key(api_user: User) -> None:
    # given
    with override_settings(API_TOKEN_KEY="", SECRET_KEY="s" * 60):
        _, plaintext = create_token(api_user)
    # when / then: the same secret key accepts it, another refuses it
    with override_settings(API_TOKEN_KEY="", SECRET_KEY="s" * 60):
        assert authenticate_token(plaintext) is not None
    with override_settings(API_TOKEN_KEY="", SECRET_KEY="t" * 60):
        assert authenticate_token(plaintext) is None


def test_a_legacy_sha256_token_still_works_and_is_upgraded_on_first_use(api_user: User) -> None:
    # given: a token stored as before keyed hashes (what migration 0003 marks sha256)
    plaintext = "ptn_" + "L" * 43
    legacy = ApiToken.objects.create(
        user=api_user,
        key_prefix=plaintext[:8],
        key_hash=hashlib.sha256(plaintext.encode()).hexdigest(),
        hash_scheme=TokenHashChoices.SHA256,
        scopes="ingest loyalty read admin",
    )
    # when
    found = authenticate_token(plaintext)
    # then: accepted, and now stored under the keyed hash only
    assert found is not None
    assert found.pk == legacy.pk
    legacy.refresh_from_db()
    assert legacy.hash_scheme == TokenHashChoices.HMAC_SHA256
    assert legacy.key_hash != hashlib.sha256(plaintext.encode()).hexdigest()
    assert authenticate_token(plaintext) is not None


def test_a_keyed_row_never_matches_a_plain_sha256_guess(api_user: User) -> None:
    # given: a keyed row whose stored value happens to be some plaintext's plain SHA-256
    plaintext = "ptn_" + "K" * 43
    ApiToken.objects.create(
        user=api_user,
        key_prefix=plaintext[:8],
        key_hash=hashlib.sha256(plaintext.encode()).hexdigest(),
        hash_scheme=TokenHashChoices.HMAC_SHA256,
        scopes="read",
    )
    # then: a row is checked under its own scheme
    assert authenticate_token(plaintext) is None


def test_scopes_are_stored_in_a_fixed_order_each_once(api_user: User) -> None:
    # when
    token, _ = create_token(api_user, scopes=["loyalty", "READ", "loyalty"])
    # then
    assert token.scopes == "loyalty read"
    assert token.has_scope(ScopeChoices.READ)
    assert token.has_scope(ScopeChoices.LOYALTY)
    assert not token.has_scope(ScopeChoices.INGEST)
    assert not token.has_scope(ScopeChoices.ADMIN)


def test_without_scopes_the_python_helper_grants_every_scope(api_user: User) -> None:
    token, _ = create_token(api_user)
    assert token.scope_set == {"ingest", "loyalty", "read", "admin"}


def test_an_unknown_scope_is_refused_by_name(api_user: User) -> None:
    with pytest.raises(ValueError, match="unknown token scope 'write'"):
        create_token(api_user, scopes=["read", "write"])
    assert not ApiToken.objects.exists()


def test_an_empty_scope_set_is_refused(api_user: User) -> None:
    with pytest.raises(ValueError, match="at least one scope"):
        create_token(api_user, scopes=[])


def test_a_recently_used_token_costs_one_query_scopes_included(
    api_user: User, django_assert_num_queries: Any
) -> None:
    # given: a token used a moment ago (its last use is recorded)
    _, plaintext = create_token(api_user, scopes=["read"])
    authenticate_token(plaintext)
    # when / then: the token, its user and its scopes come in one SELECT; no UPDATE is due
    with django_assert_num_queries(1):
        found = authenticate_token(plaintext)
        assert found is not None
        assert found.user.is_active
        assert found.has_scope(ScopeChoices.READ)
