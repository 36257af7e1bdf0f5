"""Every endpoint × every kind of caller gives the right status, always as JSON."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from patron.customers.models import Customer

ENDPOINTS = [
    ("get", "/api/v1/customers"),
    ("get", "/api/v1/customers/00042"),
]

CALLERS = [
    # (caller, expected status, expected error code or None for success)
    ("anonymous", 401, "unauthenticated"),
    ("bad_token", 401, "unauthenticated"),
    ("revoked_token", 401, "unauthenticated"),
    ("expired_token", 401, "unauthenticated"),
    ("valid_token", 200, None),
    ("staff_session", 200, None),
    ("non_staff_session", 403, "forbidden"),
]


@pytest.fixture
def caller_client(
    request: pytest.FixtureRequest, db: None, shop: dict[str, Customer]
) -> tuple[Client, dict[str, str]]:
    """A client and headers for the caller named by the test's parameter."""
    caller: str = request.param
    if caller == "anonymous":
        return Client(), {}
    if caller == "bad_token":
        return Client(), {"Authorization": "Bearer ptn_this-is-not-a-token"}
    if caller in ("revoked_token", "expired_token", "valid_token"):
        plaintext: str = request.getfixturevalue(caller.replace("valid_", ""))
        return Client(), {"Authorization": f"Bearer {plaintext}"}
    if caller == "staff_session":
        return request.getfixturevalue("staff_client"), {}
    client = Client()
    client.force_login(User.objects.create_user("clerk", password="clerk-pass-1"))
    return client, {}


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
@pytest.mark.parametrize(
    ("caller_client", "status", "code"),
    CALLERS,
    indirect=["caller_client"],
    ids=[caller for caller, _, _ in CALLERS],
)
def test_endpoint_answers_each_caller(
    caller_client: tuple[Client, dict[str, str]],
    method: str,
    url: str,
    status: int,
    code: str | None,
) -> None:
    # given
    client, headers = caller_client
    # when
    response = getattr(client, method)(url, headers=headers)
    # then
    assert response.status_code == status
    assert response["Content-Type"] == "application/json; charset=utf-8"
    if code is not None:
        assert response.json()["code"] == code
        assert response.json()["message"]
    if status == 401:
        assert response["WWW-Authenticate"] == "Bearer"
