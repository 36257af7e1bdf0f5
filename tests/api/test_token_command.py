"""``patron token create|list|revoke``."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client

from patron.api.models import ApiToken
from patron.api.tokens import authenticate_token


def run(*args: str) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command("token", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def test_create_prints_a_token_that_works(api_user: User, shop: object) -> None:
    # when
    stdout, stderr = run("create", "--user", "shop-sync", "--name", "erp")
    # then: stdout is the token alone; it authenticates API calls
    plaintext = stdout.strip()
    assert plaintext.startswith("ptn_")
    assert "not shown again" in stderr
    assert authenticate_token(plaintext) == api_user
    response = Client().get("/api/v1/customers", headers={"Authorization": f"Bearer {plaintext}"})
    assert response.status_code == 200
    assert ApiToken.objects.get().name == "erp"


def test_create_with_expiry_sets_it(api_user: User) -> None:
    run("create", "--user", "shop-sync", "--expires-days", "30")
    token = ApiToken.objects.get()
    assert token.expires_at is not None
    lifetime = token.expires_at - token.created_at
    assert timedelta(days=30) - timedelta(seconds=5) < lifetime <= timedelta(days=30)


def test_create_for_an_unknown_user_fails_clearly(db: None) -> None:
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        run("create", "--user", "nobody")


def test_create_refuses_a_non_positive_expiry(api_user: User) -> None:
    with pytest.raises(CommandError, match="--expires-days must be 1 or more, got 0"):
        run("create", "--user", "shop-sync", "--expires-days", "0")


def test_list_shows_prefix_user_name_and_status_never_the_token(api_user: User) -> None:
    # given
    first, _ = run("create", "--user", "shop-sync", "--name", "erp")
    second, _ = run("create", "--user", "shop-sync", "--name", "bi")
    run("revoke", second.strip()[:8])
    # when
    listing, _ = run("list")
    # then
    lines = listing.splitlines()
    assert lines[0].split() == [
        *("PREFIX", "USER", "NAME", "STATUS", "CREATED", "LAST", "USED", "EXPIRES")
    ]
    assert lines[1].split()[:4] == [first.strip()[:8], "shop-sync", "erp", "active"]
    assert lines[2].split()[:4] == [second.strip()[:8], "shop-sync", "bi", "revoked"]
    assert first.strip() not in listing
    assert len(lines) == 3


def test_revoke_stops_the_token(api_user: User) -> None:
    # given
    plaintext = run("create", "--user", "shop-sync")[0].strip()
    # when
    stdout, _ = run("revoke", plaintext[:8])
    # then
    assert stdout.strip() == f"Revoked token {plaintext[:8]} of shop-sync."
    assert authenticate_token(plaintext) is None


def test_revoke_of_an_unknown_prefix_fails_clearly(db: None) -> None:
    with pytest.raises(CommandError, match="no unrevoked token starts with 'ptn_abcd'"):
        run("revoke", "ptn_abcd")
