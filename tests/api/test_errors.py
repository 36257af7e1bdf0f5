"""Errors under /api/ are JSON with a code and a message, never HTML or a traceback."""

from __future__ import annotations

import pytest
from django.test import Client

from patron.api.routers import customers as customers_router
from patron.customers.models import Customer


@pytest.mark.parametrize(
    "url", ["/api/", "/api/v1/", "/api/v1/nothing-here", "/api/v2/customers", "/api/v1/customers/"]
)
def test_unknown_urls_under_api_are_json_404s(db: None, url: str) -> None:
    response = Client().get(url)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "not_found"


def test_a_wrong_method_is_a_json_405(bearer: dict[str, str]) -> None:
    response = Client().delete("/api/v1/customers", headers=bearer)
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert response.json() == {
        "code": "method_not_allowed",
        "message": "Method DELETE is not allowed here; use GET.",
    }


def test_an_unexpected_error_is_a_json_500_without_a_traceback(
    bearer: dict[str, str],
    shop: dict[str, Customer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given: the selector fails the way a lost database connection would
    def broken(query: str = "") -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(customers_router, "search_customers", broken)
    # when
    response = Client().get("/api/v1/customers", headers=bearer)
    # then: the client learns nothing internal; the log has the traceback
    assert response.status_code == 500
    assert response.json() == {
        "code": "server_error",
        "message": "Internal server error. It has been logged.",
    }
    assert "secret internals" not in response.content.decode()
    assert "secret internals" in caplog.text


def test_a_post_to_an_unknown_url_is_a_404_not_a_csrf_refusal(db: None) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/api/v1/ingest/coupons", [], "application/json")
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "message": "No API endpoint at /api/v1/ingest/coupons.",
    }
