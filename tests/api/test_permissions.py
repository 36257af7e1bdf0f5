"""Every endpoint × every kind of caller gives the right status, always as JSON."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from patron.analytics.models import AnalysisRun
from patron.catalog.models import Category, Product
from patron.customers.models import Customer
from patron.loyalty.coupons import create_coupon_template
from patron.loyalty.ledger import adjust_points
from patron.loyalty.members import enrol_member
from patron.loyalty.models import (
    CategoryMultiplier,
    Coupon,
    CouponTemplate,
    Programme,
    Promotion,
    Reward,
    Tier,
)
from patron.recommend.models import RecommendationFeedback

# Who may call what is decided in Python; the PostgreSQL pass would prove nothing new.
pytestmark = pytest.mark.database_agnostic

ENDPOINTS: list[tuple[str, str, list[dict[str, object]] | dict[str, object] | None]] = [
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
    ("get", "/api/v1/loyalty/tiers", None),
    ("post", "/api/v1/loyalty/tiers", {"name": "Gold", "threshold": "1000"}),
    ("get", "/api/v1/loyalty/promotions", None),
    (
        "post",
        "/api/v1/loyalty/promotions",
        {
            "name": "11.11",
            "multiplier": "2",
            "starts_at": "2024-11-11T00:00:00+08:00",
            "ends_at": "2024-11-12T00:00:00+08:00",
        },
    ),
    ("get", "/api/v1/loyalty/category-multipliers", None),
    ("put", "/api/v1/loyalty/category-multipliers/Tea", {"multiplier": "2"}),
    ("put", "/api/v1/loyalty/programme", {"pending_days": 7}),
    ("get", "/api/v1/loyalty/rewards", None),
    ("post", "/api/v1/loyalty/rewards", {"name": "Mug", "kind": "gift", "points_cost": 100}),
    (
        "post",
        "/api/v1/coupons/templates",
        {"name": "10 off", "kind": "fixed_amount", "value": "10"},
    ),
    ("post", "/api/v1/coupons/templates/{template_id}/codes", {"count": 2}),
    ("get", "/api/v1/customers/00042/recommendations?n=5", None),
    ("get", "/api/v1/products/P-TEA/similar", None),
    ("get", "/api/v1/products/P-TEA/bought-together", None),
    (
        "post",
        "/api/v1/recommendations/feedback",
        {"event_id": "fb-matrix", "customer_id": "00042", "product_id": "P-TEA", "kind": "clicked"},
    ),
]
#: What an authorised call answers where it is not 200 (these writes create something).
SUCCESS_STATUS: dict[tuple[str, str], int] = {
    ("post", "/api/v1/loyalty/members"): 201,
    ("post", "/api/v1/loyalty/members/00042/adjustments"): 201,
    ("post", "/api/v1/loyalty/members/00042/redemptions"): 201,
    ("post", "/api/v1/loyalty/tiers"): 201,
    ("post", "/api/v1/loyalty/promotions"): 201,
    ("post", "/api/v1/loyalty/rewards"): 201,
    ("post", "/api/v1/coupons/templates"): 201,
    ("post", "/api/v1/coupons/templates/{template_id}/codes"): 201,
    ("post", "/api/v1/recommendations/feedback"): 201,
}

#: Writes that change the loyalty programme's set-up: loyalty managers and administrators only.
LOYALTY_SET_UP = {
    ("put", "/api/v1/loyalty/programme"),
    ("post", "/api/v1/loyalty/tiers"),
    ("post", "/api/v1/loyalty/promotions"),
    ("put", "/api/v1/loyalty/category-multipliers/Tea"),
    ("post", "/api/v1/loyalty/rewards"),
    ("post", "/api/v1/coupons/templates"),
    ("post", "/api/v1/coupons/templates/{template_id}/codes"),
}

CALLERS = [
    # (caller, expected status, expected error code or None for success,
    #  whether it may change the loyalty programme's set-up)
    ("anonymous", 401, "unauthenticated", False),
    ("bad_token", 401, "unauthenticated", False),
    ("revoked_token", 401, "unauthenticated", False),
    ("expired_token", 401, "unauthenticated", False),
    ("valid_token", 200, None, False),
    ("loyalty_manager_token", 200, None, True),
    ("staff_session", 200, None, False),
    ("admin_session", 200, None, True),
    ("loyalty_manager_session", 200, None, True),
    ("marketer_session", 200, None, False),
    ("service_agent_session", 200, None, False),
    ("analyst_session", 200, None, False),
    ("non_staff_session", 403, "forbidden", False),
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


@pytest.fixture(autouse=True)
def coupon_template(db: None) -> CouponTemplate:
    """A coupon template whose codes the matrix makes, category Tea for a multiplier and its
    product P-TEA for the recommendation endpoints."""
    tea = Category.objects.create(name="Tea", path="Tea")
    Product.objects.create(external_id="P-TEA", name="龙井", category=tea)
    return create_coupon_template(name="5 off", kind="fixed_amount", value=Decimal(5))


def read_programme_settings() -> dict[str, object]:
    """The programme's settings as stored (none before it exists)."""
    return dict(Programme.objects.values().first() or {})


def setup_rows() -> dict[str, int]:
    """How many rows the programme's set-up has: a refused caller must add none."""
    return {
        model.__name__: model.objects.count()
        for model in (Tier, Promotion, CategoryMultiplier, Reward, CouponTemplate, Coupon)
    }


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
    if caller == "loyalty_manager_token":
        return Client(), request.getfixturevalue("manager_bearer")
    if caller == "staff_session":
        return request.getfixturevalue("staff_client"), {}
    client = Client()
    if caller.endswith("_session") and caller != "non_staff_session":
        role = caller.removesuffix("_session")
        staff = User.objects.create_user(role, password="role-pass-1", is_staff=True)
        staff.groups.add(Group.objects.get(name=role))
        client.force_login(staff)
        return client, {}
    client.force_login(User.objects.create_user("clerk", password="clerk-pass-1"))
    return client, {}


@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS)
@pytest.mark.parametrize(
    ("caller_client", "status", "code", "may_set_up"),
    CALLERS,
    indirect=["caller_client"],
    ids=[caller for caller, _, _, _ in CALLERS],
)
def test_endpoint_answers_each_caller(
    caller_client: tuple[Client, dict[str, str]],
    coupon_template: CouponTemplate,
    method: str,
    url: str,
    body: list[dict[str, object]] | dict[str, object] | None,
    status: int,
    code: str | None,
    may_set_up: bool,
) -> None:
    # given
    client, headers = caller_client
    if status == 200 and (method, url) in LOYALTY_SET_UP and not may_set_up:
        status, code = 403, "forbidden"
    rows_before = setup_rows()
    programme_before = read_programme_settings()
    # when
    if body is None:
        response = client.get(url, headers=headers)
    else:
        headers = {**headers, "Idempotency-Key": "permission-matrix"}
        response = getattr(client, method)(
            url.format(template_id=coupon_template.pk),
            body,
            content_type="application/json",
            headers=headers,
        )
    # then
    assert response.status_code == (
        SUCCESS_STATUS.get((method, url), 200) if status == 200 else status
    )
    if status != 200:
        assert setup_rows() == rows_before
        assert read_programme_settings() == programme_before
    assert response["Content-Type"] == "application/json; charset=utf-8"
    if code is not None:
        assert response.json()["code"] == code
        assert response.json()["message"]
    if status == 401:
        assert response["WWW-Authenticate"] == "Bearer"
    if url == "/api/v1/recommendations/feedback":
        assert RecommendationFeedback.objects.count() == (1 if status == 200 else 0)
    if url.startswith("/api/v1/ingest/"):
        # only an authorised call writes anything
        assert response.json().get("inserted", 0) == (1 if status == 200 else 0)
