"""The OpenAPI schema and the docs page, served with no CDN asset."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from pytest_django.fixtures import Settings


def test_openapi_schema_is_served_and_lists_the_endpoints(db: None) -> None:
    # when
    response = Client().get("/api/v1/openapi.json")
    # then
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "Patron API"
    assert set(schema["paths"]) == {
        "/api/v1/customers",
        "/api/v1/customers/{external_id}",
        "/api/v1/ingest/customers",
        "/api/v1/ingest/products",
        "/api/v1/ingest/orders",
        "/api/v1/ingest/events",
        "/api/v1/analytics/segments",
        "/api/v1/analytics/cohorts",
        "/api/v1/analytics/kpis",
        "/api/v1/analytics/models",
        "/api/v1/loyalty/programme",
        "/api/v1/loyalty/tiers",
        "/api/v1/loyalty/promotions",
        "/api/v1/loyalty/category-multipliers",
        "/api/v1/loyalty/category-multipliers/{category_path}",
        "/api/v1/loyalty/rewards",
        "/api/v1/loyalty/members",
        "/api/v1/loyalty/members/{customer_external_id}",
        "/api/v1/loyalty/members/{customer_external_id}/ledger",
        "/api/v1/loyalty/members/{customer_external_id}/adjustments",
        "/api/v1/loyalty/members/{customer_external_id}/redemptions",
        "/api/v1/loyalty/members/{customer_external_id}/rewards",
        "/api/v1/loyalty/referrals",
        "/api/v1/coupons/{code}/validate",
        "/api/v1/coupons/{code}/redeem",
        "/api/v1/coupons/{code}/release",
        "/api/v1/coupons/templates",
        "/api/v1/coupons/templates/{template_id}/codes",
        "/api/v1/customers/{external_id}/recommendations",
        "/api/v1/products/{product_id}/similar",
        "/api/v1/products/{product_id}/bought-together",
        "/api/v1/recommendations/feedback",
        "/api/v1/customers/{external_id}/consents",
        "/api/v1/customers/{external_id}/export",
        "/api/v1/customers/{external_id}/erasure",
        "/api/v1/customers/{external_id}/profile",
        "/api/v1/privacy/requests",
    }
    assert set(schema["paths"]["/api/v1/customers"]) == {"get"}
    assert set(schema["paths"]["/api/v1/loyalty/tiers"]) == {"get", "post"}
    assert set(schema["paths"]["/api/v1/loyalty/category-multipliers/{category_path}"]) == {"put"}
    ingest_orders = schema["paths"]["/api/v1/ingest/orders"]["post"]
    assert ingest_orders["requestBody"]["content"]["application/json"]["schema"]["maxItems"] == (
        10_000
    )
    assert [parameter["name"] for parameter in ingest_orders["parameters"]] == ["strict"]
    assert set(schema["components"]["securitySchemes"]) == {"BearerTokenAuth", "StaffSessionAuth"}
    assert schema["components"]["securitySchemes"]["BearerTokenAuth"]["scheme"] == "bearer"


@pytest.fixture
def plain_static_storage(settings: Settings) -> None:
    """Resolve static URLs without a collectstatic manifest (tests do not run collectstatic)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def test_docs_page_uses_only_assets_patron_serves(db: None, plain_static_storage: None) -> None:
    # when
    response = Client().get("/api/docs")
    html = response.content.decode()
    # then: the page renders Swagger UI pointed at our schema ...
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert "/api/v1/openapi.json" in html
    # ... and no script, stylesheet or icon comes from another host
    asset_urls = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', html)
    assert len(asset_urls) == 5
    assert not [url for url in asset_urls if re.match(r"(https?:)?//", url)]
    assert not re.search(r"https?://", html)
    # ... each of which is a static file Patron has
    for url in asset_urls:
        assert url.startswith("/static/")
        assert finders.find(url.removeprefix("/static/")) is not None, url
