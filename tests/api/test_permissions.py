"""Every endpoint × every kind of caller gives the right status, always as JSON; a refused
caller leaves nothing behind. Who may call what is ``patron.core.roles.API_PERMISSIONS``
(tests/api/test_api_role_matrix.py checks it cell by cell)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from patron.analytics.models import AnalysisRun
from patron.api.tokens import create_token
from patron.api.v1 import api
from patron.catalog.models import Category, Product
from patron.core.roles import INTEGRATION, STAFF_WITHOUT_ROLE, roles_with
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

CALLERS = [
    # (caller, expected status once authenticated, expected error code or None for success,
    #  the role it calls with: its permissions (API_PERMISSIONS) may still refuse it)
    ("anonymous", 401, "unauthenticated", None),
    ("bad_token", 401, "unauthenticated", None),
    ("revoked_token", 401, "unauthenticated", None),
    ("expired_token", 401, "unauthenticated", None),
    ("valid_token", 200, None, INTEGRATION),
    ("loyalty_manager_token", 200, None, "loyalty_manager"),
    ("staff_session", 200, None, STAFF_WITHOUT_ROLE),
    ("admin_session", 200, None, "admin"),
    ("loyalty_manager_session", 200, None, "loyalty_manager"),
    ("marketer_session", 200, None, "marketer"),
    ("service_agent_session", 200, None, "service_agent"),
    ("analyst_session", 200, None, "analyst"),
    ("non_staff_session", 403, "forbidden", None),
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


#: The permission each operation needs, by method and path template, as the schema names it.
ENDPOINT_PERMISSIONS: dict[tuple[str, str], str] = {
    (method, path): operation["x-permission"]
    for path, operations in api.get_openapi_schema()["paths"].items()
    for method, operation in operations.items()
}


def required_permission(method: str, url: str) -> str:
    """The permission the matrix's call of ``url`` needs."""
    path = url.split("?")[0]
    return ENDPOINT_PERMISSIONS[(method, MATRIX_TEMPLATES.get(path, path))]


@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS)
@pytest.mark.parametrize(
    ("caller_client", "status", "code", "role"),
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
    role: str | None,
) -> None:
    # given
    client, headers = caller_client
    if role is not None and role not in roles_with(required_permission(method, url)):
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


#: The token scope every endpoint needs (``x-token-scope`` in the OpenAPI schema), by method
#: and path template: read for every GET, ingest for what the shop sends in, loyalty for
#: point and coupon moves, admin for the programme's set-up. A new endpoint must be added here.
ENDPOINT_SCOPES: dict[tuple[str, str], str] = {
    ("get", "/api/v1/customers"): "read",
    ("get", "/api/v1/customers/{external_id}"): "read",
    ("get", "/api/v1/customers/{external_id}/consents"): "read",
    ("post", "/api/v1/customers/{external_id}/consents"): "ingest",
    ("post", "/api/v1/ingest/customers"): "ingest",
    ("post", "/api/v1/ingest/products"): "ingest",
    ("post", "/api/v1/ingest/orders"): "ingest",
    ("post", "/api/v1/ingest/events"): "ingest",
    ("get", "/api/v1/analytics/segments"): "read",
    ("get", "/api/v1/analytics/cohorts"): "read",
    ("get", "/api/v1/analytics/kpis"): "read",
    ("get", "/api/v1/analytics/models"): "read",
    ("get", "/api/v1/loyalty/programme"): "read",
    ("put", "/api/v1/loyalty/programme"): "admin",
    ("get", "/api/v1/loyalty/tiers"): "read",
    ("post", "/api/v1/loyalty/tiers"): "admin",
    ("get", "/api/v1/loyalty/promotions"): "read",
    ("post", "/api/v1/loyalty/promotions"): "admin",
    ("get", "/api/v1/loyalty/category-multipliers"): "read",
    ("put", "/api/v1/loyalty/category-multipliers/{category_path}"): "admin",
    ("get", "/api/v1/loyalty/rewards"): "read",
    ("post", "/api/v1/loyalty/rewards"): "admin",
    ("post", "/api/v1/loyalty/members"): "loyalty",
    ("get", "/api/v1/loyalty/members/{customer_external_id}"): "read",
    ("get", "/api/v1/loyalty/members/{customer_external_id}/ledger"): "read",
    ("post", "/api/v1/loyalty/members/{customer_external_id}/adjustments"): "loyalty",
    ("get", "/api/v1/loyalty/members/{customer_external_id}/rewards"): "read",
    ("post", "/api/v1/loyalty/members/{customer_external_id}/redemptions"): "loyalty",
    ("post", "/api/v1/loyalty/referrals"): "loyalty",
    ("post", "/api/v1/coupons/templates"): "admin",
    ("post", "/api/v1/coupons/templates/{template_id}/codes"): "admin",
    ("get", "/api/v1/coupons/{code}/validate"): "read",
    ("post", "/api/v1/coupons/{code}/redeem"): "loyalty",
    ("post", "/api/v1/coupons/{code}/release"): "loyalty",
    ("get", "/api/v1/customers/{external_id}/recommendations"): "read",
    ("get", "/api/v1/products/{product_id}/similar"): "read",
    ("get", "/api/v1/products/{product_id}/bought-together"): "read",
    ("post", "/api/v1/recommendations/feedback"): "ingest",
    ("get", "/api/v1/customers/{external_id}/export"): "read",
    ("post", "/api/v1/customers/{external_id}/erasure"): "admin",
    ("patch", "/api/v1/customers/{external_id}/profile"): "admin",
    ("get", "/api/v1/privacy/requests"): "read",
}
#: The path template of each URL the matrix calls.
MATRIX_TEMPLATES: dict[str, str] = {
    "/api/v1/customers/00042": "/api/v1/customers/{external_id}",
    "/api/v1/loyalty/members/00042": "/api/v1/loyalty/members/{customer_external_id}",
    "/api/v1/loyalty/members/00042/ledger": (
        "/api/v1/loyalty/members/{customer_external_id}/ledger"
    ),
    "/api/v1/loyalty/members/00042/adjustments": (
        "/api/v1/loyalty/members/{customer_external_id}/adjustments"
    ),
    "/api/v1/loyalty/members/00042/redemptions": (
        "/api/v1/loyalty/members/{customer_external_id}/redemptions"
    ),
    "/api/v1/coupons/ANYCODE/validate": "/api/v1/coupons/{code}/validate",
    "/api/v1/loyalty/category-multipliers/Tea": (
        "/api/v1/loyalty/category-multipliers/{category_path}"
    ),
    "/api/v1/customers/00042/recommendations": "/api/v1/customers/{external_id}/recommendations",
    "/api/v1/products/P-TEA/similar": "/api/v1/products/{product_id}/similar",
    "/api/v1/products/P-TEA/bought-together": "/api/v1/products/{product_id}/bought-together",
}


def required_scope(method: str, url: str) -> str:
    """The scope the matrix's call of ``url`` needs."""
    path = url.split("?")[0]
    return ENDPOINT_SCOPES[(method, MATRIX_TEMPLATES.get(path, path))]


def test_every_endpoint_declares_the_scope_listed_here() -> None:
    # given: every operation of the API, as its schema lists it
    schema = api.get_openapi_schema()
    declared = {
        (method, path): operation.get("x-token-scope")
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    # then: each has its scope, the one expected, and GETs need read
    assert declared == ENDPOINT_SCOPES
    assert all(scope == "read" for (method, _), scope in declared.items() if method == "get")


@pytest.mark.parametrize("scope", ["ingest", "loyalty", "read", "admin"])
@pytest.mark.parametrize(("method", "url", "body"), ENDPOINTS)
def test_endpoint_needs_its_token_scope(
    coupon_template: CouponTemplate,
    method: str,
    url: str,
    body: list[dict[str, object]] | dict[str, object] | None,
    scope: str,
) -> None:
    # given: an administrator's token (the role may do everything) with this one scope
    administrator = User.objects.create_user("scoped-tool", password="not-used-here")
    administrator.groups.add(Group.objects.get(name="admin"))
    headers = {"Authorization": f"Bearer {create_token(administrator, scopes=[scope])[1]}"}
    needed = required_scope(method, url)
    rows_before = setup_rows()
    # when
    if body is None:
        response = Client().get(url, headers=headers)
    else:
        response = getattr(Client(), method)(
            url.format(template_id=coupon_template.pk),
            body,
            content_type="application/json",
            headers={**headers, "Idempotency-Key": "scope-matrix"},
        )
    # then: the endpoint's own scope lets it through; any other is refused by name
    if scope == needed:
        assert response.status_code == SUCCESS_STATUS.get((method, url), 200)
        return
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response.json()["code"] == "insufficient_scope"
    assert response.json()["required_scope"] == needed
    assert f"lacks the {needed!r} scope" in response.json()["message"]
    assert f"(it has: {scope})" in response.json()["message"]
    assert response["WWW-Authenticate"] == f'Bearer error="insufficient_scope", scope="{needed}"'
    assert setup_rows() == rows_before
    if url == "/api/v1/recommendations/feedback":
        assert not RecommendationFeedback.objects.exists()


@pytest.mark.parametrize(
    ("caller_client", "write_status", "code"),
    [("admin_session", 200, None), ("staff_session", 403, "forbidden")],
    indirect=["caller_client"],
)
def test_staff_sessions_are_not_scoped(
    caller_client: tuple[Client, dict[str, str]], write_status: int, code: str | None
) -> None:
    # a session may call a read and an ingest endpoint alike: its role decides, not a scope
    # (staff in no role read but do not write: 403 forbidden, never insufficient_scope)
    client, _ = caller_client
    assert client.get("/api/v1/loyalty/tiers").status_code == 200
    response = client.post(
        "/api/v1/ingest/products",
        [{"product_id": "P-S", "name": "茶", "price": "38"}],
        content_type="application/json",
    )
    assert response.status_code == write_status
    if code is not None:
        assert response.json()["code"] == code
