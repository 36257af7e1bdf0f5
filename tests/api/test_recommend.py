"""The recommendation endpoints: lists with reasons in the caller's language, related
products, feedback, and their refusals."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from patron.api.routers.recommend import RecommendationsOut
from patron.recommend.models import RecommendationFeedback, TrainingRun
from patron.recommend.services import train_recommendations
from tests.recommend.conftest import tea_shop  # noqa: F401  (the shop these tests read)


@pytest.fixture
def trained(tea_shop: dict) -> dict:  # noqa: F811
    """The tea shop, trained."""
    train_recommendations(triggered_by="test")
    return tea_shop


def test_a_customers_recommendations_carry_reasons_in_english(
    trained: dict, bearer: dict[str, str]
) -> None:
    # when
    response = Client().get("/api/v1/customers/C-newcomer/recommendations?n=2", headers=bearer)
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["customer_id"] == "C-newcomer"
    assert body["source"] == "computed"
    assert [
        (item["rank"], item["product"]["product_id"], item["reason"], item["reason_text"])
        for item in body["recommendations"]
    ] == [
        (1, "P-tea", "popular", "Popular right now"),
        (2, "P-cups", "popular", "Popular right now"),
    ]
    assert body["recommendations"][0]["product"] == {
        "product_id": "P-tea",
        "name": "tea",
        "category": "Drinks > Tea",
    }


@pytest.mark.parametrize("customer", ["C-a", "C-newcomer"])
def test_a_list_is_written_exactly_as_its_schema_says(
    trained: dict, bearer: dict[str, str], customer: str
) -> None:
    # given a stored list (a) and one computed now (the newcomer); the handler writes the
    # body itself, without the pydantic models
    # when
    response = Client().get(f"/api/v1/customers/{customer}/recommendations", headers=bearer)
    # then the body is what the documented schema gives for it, field for field
    body = response.json()
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert RecommendationsOut.model_validate(body).model_dump(mode="json") == body
    assert (
        body["trained_at"] == timezone.localtime(TrainingRun.objects.get().finished_at).isoformat()
    )
    assert body["trained_at"].endswith("+08:00")
    assert all(item["reason_text"] for item in body["recommendations"])
    assert body["recommendations"]


def test_reasons_follow_accept_language(trained: dict, bearer: dict[str, str]) -> None:
    # when
    response = Client().get(
        "/api/v1/customers/C-a/recommendations",
        headers={**bearer, "Accept-Language": "zh-CN,zh;q=0.9"},
    )
    # then each reason is worded in Chinese, naming its product where it has one
    items = response.json()["recommendations"]
    assert sorted(item["product"]["product_id"] for item in items) == ["P-honey", "P-mug"]
    for item in items:
        named = item["reason_product"]
        expected = {
            "because_you_bought": f"因为您买过{named['name'] if named else ''}",
            "often_bought_with": f"常与{named['name'] if named else ''}一起购买",
            "popular_in_segment": "与您相似的顾客喜欢",
            "popular": "当前热销",
        }[item["reason"]]
        assert item["reason_text"] == expected


def test_similar_and_bought_together(trained: dict, bearer: dict[str, str]) -> None:
    # when
    together = Client().get("/api/v1/products/P-tea/bought-together", headers=bearer).json()
    similar = Client().get("/api/v1/products/P-tea/similar?n=1", headers=bearer).json()
    # then
    assert together == {
        "product_id": "P-tea",
        "products": [
            {
                "rank": 1,
                "product": {"product_id": "P-cups", "name": "cups", "category": "Drinks"},
                "score": together["products"][0]["score"],
                "reason": "often_bought_with",
                "reason_text": "Often bought with tea",
                "support": 0.5,
                "confidence": together["products"][0]["confidence"],
                "lift": together["products"][0]["lift"],
            }
        ],
    }
    assert round(together["products"][0]["confidence"], 4) == 0.8333
    assert [item["product"]["product_id"] for item in similar["products"]] == ["P-cups"]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/api/v1/customers/nobody/recommendations", "customer_not_found"),
        ("/api/v1/products/nothing/similar", "product_not_found"),
        ("/api/v1/products/nothing/bought-together", "product_not_found"),
    ],
)
def test_unknown_customer_or_product_is_a_json_404(
    trained: dict, bearer: dict[str, str], url: str, code: str
) -> None:
    # when
    response = Client().get(url, headers=bearer)
    # then
    assert response.status_code == 404
    assert response.json()["code"] == code


def test_a_list_length_out_of_range_is_refused(trained: dict, bearer: dict[str, str]) -> None:
    # when
    response = Client().get("/api/v1/customers/C-a/recommendations?n=0", headers=bearer)
    # then
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "location": "query",
            "field": "n",
            "message": "n must be between 1 and 100",
            "type": "value_error",
        }
    ]


def test_feedback_is_kept_once_per_event_and_dismissed_products_leave_the_list(
    trained: dict, bearer: dict[str, str]
) -> None:
    # given the viewer is recommended the pot
    client = Client()
    url = "/api/v1/customers/C-viewer/recommendations"
    listed = [
        i["product"]["product_id"]
        for i in client.get(url, headers=bearer).json()["recommendations"]
    ]
    assert "P-pot" in listed
    body = {
        "event_id": "fb-1",
        "customer_id": "C-viewer",
        "product_id": "P-pot",
        "kind": "dismissed",
        "occurred_at": "2025-06-26T09:00:00+08:00",
    }
    # when the shop reports the dismissal twice (a retry with another key)
    first = client.post(
        "/api/v1/recommendations/feedback",
        body,
        content_type="application/json",
        headers={**bearer, "Idempotency-Key": "k1"},
    )
    second = client.post(
        "/api/v1/recommendations/feedback",
        body,
        content_type="application/json",
        headers={**bearer, "Idempotency-Key": "k2"},
    )
    # then it is kept once, and the pot is no longer recommended
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == {
        "event_id": "fb-1",
        "customer_id": "C-viewer",
        "product_id": "P-pot",
        "kind": "dismissed",
        "occurred_at": "2025-06-26T09:00:00+08:00",
        "created": True,
    }
    assert second.json()["created"] is False
    assert RecommendationFeedback.objects.count() == 1
    listed = [
        i["product"]["product_id"]
        for i in client.get(url, headers=bearer).json()["recommendations"]
    ]
    assert "P-pot" not in listed


def test_feedback_of_an_unknown_kind_or_product_is_refused(
    trained: dict, bearer: dict[str, str]
) -> None:
    # when
    bad_kind = Client().post(
        "/api/v1/recommendations/feedback",
        {"event_id": "fb-2", "customer_id": "C-a", "product_id": "P-tea", "kind": "liked"},
        content_type="application/json",
        headers=bearer,
    )
    no_product = Client().post(
        "/api/v1/recommendations/feedback",
        {"event_id": "fb-3", "customer_id": "C-a", "product_id": "P-x", "kind": "shown"},
        content_type="application/json",
        headers=bearer,
    )
    # then nothing is kept
    assert bad_kind.status_code == 422
    assert bad_kind.json()["errors"][0]["field"] == "body.kind"
    assert (no_product.status_code, no_product.json()["code"]) == (404, "product_not_found")
    assert RecommendationFeedback.objects.count() == 0
