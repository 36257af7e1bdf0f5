"""Every endpoint × every kind of caller gives the right status, always as JSON."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client

from patron.analytics.models import AnalysisRun
from patron.customers.models import Customer
from patron.loyalty.ledger import adjust_points
from patron.loyalty.members import enrol_member

ENDPOINTS: list[tuple[str, str, list[dict[str, object]] | None]] = [
    ("get", "/api/v1/customers", None),
    ("get", "/api/v1/customers/00042", None),
    ("get", "/api/v1/analytics/segments", None),
    ("get", "/api/v1/analytics/cohorts", None),
    ("get", "/api/v1/analytics/kpis", None),
    ("get", "/api/v1/analytics/models", None),
    ("post", "/api/v1/ingest/customers", [{"customer_id": "C-9", "name": "王芳"}]),
    ("post", "/api/v1/ingest/products", [{"product_id": "P-9", "name": "茶", "price": "38"}]),
    (
        "post",
        "/api/v1/ingest/orders",
        [{"order_id": "O-9", "customer_id": "00042", "ordered_at": "20241111", "line_total": "9"}],
    ),
    (
        "post",
        "/api/v1/ingest/events",
        [{"device_id": "d-9", "event_type": "view", "occurred_at": "2024-11-11T08:00:00Z"}],
    ),
    ("post", "/api/v1/loyalty/members", {"customer_external_id": "00043"}),
    ("get", "/api/v1/loyalty/members/00042", None),
    ("get", "/api/v1/loyalty/members/00042/ledger", None),
    ("post", "/api/v1/loyalty/members/00042/adjustments", {"points": 5, "reason": "test"}),
    ("post", "/api/v1/loyalty/members/00042/redemptions", {"points": 1}),
    ("get", "/api/v1/coupons/ANYCODE/validate?customer=00042&order_total=10", None),
]
#: What an authorised call answers where it is not 200 (the loyalty writes create something).
SUCCESS_STATUS = {
    "/api/v1/loyalty/members": 201,
    "/api/v1/loyalty/members/00042/adjustments": 201,
    "/api/v1/loyalty/members/00042/redemptions": 201,
}

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


@pytest.fixture(autouse=True)
def analysis_run(db: None) -> AnalysisRun:
    """A finished analysis run (of no customers), so the analytics endpoints have results."""
    started = datetime(2024, 7, 2, tzinfo=UTC)
    return AnalysisRun.objects.create(
        as_of=date(2024, 7, 1), status="succeeded", started_at=started, finished_at=started
    )


@pytest.fixture(autouse=True)
def member_with_points(shop: dict[str, Customer]) -> None:
    """Customer 00042 is a loyalty member with points to redeem."""
    member = enrol_member(Customer.objects.get(external_id="00042"))
    adjust_points(member, 100, reason="welcome", actor="test", idempotency_key="welcome-00042")


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


@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS)
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
    body: list[dict[str, object]] | None,
    status: int,
    code: str | None,
) -> None:
    # given
    client, headers = caller_client
    # when
    if body is None:
        response = client.get(url, headers=headers)
    else:
        headers = {**headers, "Idempotency-Key": "permission-matrix"}
        response = client.post(url, body, content_type="application/json", headers=headers)
    # then
    assert response.status_code == (SUCCESS_STATUS.get(url, 200) if status == 200 else status)
    assert response["Content-Type"] == "application/json; charset=utf-8"
    if code is not None:
        assert response.json()["code"] == code
        assert response.json()["message"]
    if status == 401:
        assert response["WWW-Authenticate"] == "Bearer"
    if url.startswith("/api/v1/ingest/"):
        # only an authorised call writes anything
        assert response.json().get("inserted", 0) == (1 if status == 200 else 0)
