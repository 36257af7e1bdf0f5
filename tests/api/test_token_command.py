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
from patron.privacy.models import AuditEvent


def run(*args: str) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command("token", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def test_create_prints_a_token_that_works(api_user: User, shop: object) -> None:
    # when
    stdout, stderr = run("create", "--user", "shop-sync", "--name", "erp", "--scope", "read")
    # then: stdout is the token alone; it authenticates API calls
    plaintext = stdout.strip()
    assert plaintext.startswith("ptn_")
    assert "not shown again" in stderr
    assert "scopes read" in stderr
    found = authenticate_token(plaintext)
    assert found is not None
    assert found.user == api_user
    response = Client().get("/api/v1/customers", headers={"Authorization": f"Bearer {plaintext}"})
    assert response.status_code == 200
    assert ApiToken.objects.get().name == "erp"


def test_create_with_scopes_and_expires_in(api_user: User) -> None:
    # when
    run(
        *("create", "--user", "shop-sync", "--scope", "read", "--scope", "loyalty"),
        *("--expires-in", "90d"),
    )
    # then
    token = ApiToken.objects.get()
    assert token.scopes == "loyalty read"
    assert token.expires_at is not None
    lifetime = token.expires_at - token.created_at
    assert timedelta(days=90) - timedelta(seconds=5) < lifetime <= timedelta(days=90)


def test_create_without_a_scope_says_which_exist(api_user: User) -> None:
    with pytest.raises(CommandError, match=r"--scope .*ingest, loyalty, read, admin"):
        run("create", "--user", "shop-sync")
    assert not ApiToken.objects.exists()


def test_create_with_an_unknown_scope_names_it(api_user: User) -> None:
    with pytest.raises(CommandError, match="unknown token scope 'everything'"):
        run("create", "--user", "shop-sync", "--scope", "everything")


def test_create_refuses_a_bad_expires_in(api_user: User) -> None:
    with pytest.raises(CommandError, match="--expires-in must be a positive duration"):
        run("create", "--user", "shop-sync", "--scope", "read", "--expires-in", "soon")


def test_create_with_expiry_sets_it(api_user: User) -> None:
    run("create", "--user", "shop-sync", "--scope", "read", "--expires-days", "30")
    token = ApiToken.objects.get()
    assert token.expires_at is not None
    lifetime = token.expires_at - token.created_at
    assert timedelta(days=30) - timedelta(seconds=5) < lifetime <= timedelta(days=30)


def test_create_for_an_unknown_user_fails_clearly(db: None) -> None:
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        run("create", "--user", "nobody", "--scope", "read")


def test_create_refuses_a_non_positive_expiry(api_user: User) -> None:
    with pytest.raises(CommandError, match="--expires-days must be 1 or more, got 0"):
        run("create", "--user", "shop-sync", "--scope", "read", "--expires-days", "0")


def test_list_shows_prefix_user_name_and_status_never_the_token(api_user: User) -> None:
    # given
    first, _ = run("create", "--user", "shop-sync", "--name", "erp", "--scope", "ingest")
    second, _ = run(
        "create", "--user", "shop-sync", "--name", "bi", "--scope", "read", "--scope", "admin"
    )
    run("revoke", second.strip()[:8])
    # when
    listing, _ = run("list")
    # then
    lines = listing.splitlines()
    assert lines[0].split() == [
        *("PREFIX", "USER", "NAME", "SCOPES", "STATUS", "CREATED", "LAST", "USED", "EXPIRES")
    ]
    assert lines[1].split()[:5] == [first.strip()[:8], "shop-sync", "erp", "ingest", "active"]
    assert lines[2].split()[:5] == [
        *(second.strip()[:8], "shop-sync", "bi", "read,admin", "revoked")
    ]
    assert first.strip() not in listing
    assert len(lines) == 3


def test_revoke_stops_the_token(api_user: User) -> None:
    # given
    plaintext = run("create", "--user", "shop-sync", "--scope", "read")[0].strip()
    # when
    stdout, _ = run("revoke", plaintext[:8])
    # then
    assert stdout.strip() == f"Revoked token {plaintext[:8]} of shop-sync."
    assert authenticate_token(plaintext) is None
    # and both changes are in the audit log, named by the token's prefix only
    events = list(AuditEvent.objects.filter(action="token_change").order_by("pk"))
    assert [event.details for event in events] == [
        {
            "change": "created",
            "token": plaintext[:8],
            "user": "shop-sync",
            "scopes": ["read"],
            "expires_at": None,
        },
        {"change": "revoked", "token": plaintext[:8], "user": "shop-sync"},
    ]
    assert {event.actor_label for event in events} == {"command: patron token"}
    assert all(plaintext not in str(event.details) for event in events)


def test_revoke_of_an_unknown_prefix_fails_clearly(db: None) -> None:
    with pytest.raises(CommandError, match="no unrevoked token starts with 'ptn_abcd'"):
        run("revoke", "ptn_abcd")
