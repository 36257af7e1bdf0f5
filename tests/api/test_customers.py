"""``GET /api/v1/customers`` and ``GET /api/v1/customers/{external_id}``."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from patron.customers.models import Customer
from patron.customers.resolution import merge_customers


@pytest.fixture(autouse=True)
def token_user_is_a_service_agent(api_user: User) -> None:
    """The token here is a service desk tool's: it reads personal data unmasked
    (tests/api/test_role_masking.py covers the masked roles)."""
    api_user.groups.add(Group.objects.get(name="service_agent"))


def get(client: Client, url: str, headers: dict[str, str], **params: Any) -> Any:
    response = client.get(url, params, headers=headers)
    return response.status_code, response.json()


def test_list_pages_newest_first_with_exact_counts(
    client: Client, bearer: dict[str, str], shop: dict[str, Customer]
) -> None:
    # when
    status, first_page = get(client, "/api/v1/customers", bearer, page_size=2)
    _, second_page = get(client, "/api/v1/customers", bearer, page_size=2, page=2)
    _, past_the_end = get(client, "/api/v1/customers", bearer, page_size=2, page=3)
    # then
    assert status == 200
    assert [item["external_id"] for item in first_page["items"]] == ["A-1", "00043"]
    assert (first_page["count"], first_page["page"], first_page["page_size"]) == (3, 1, 2)
    assert [item["external_id"] for item in second_page["items"]] == ["00042"]
    assert (second_page["count"], second_page["page"]) == (3, 2)
    assert past_the_end == {"items": [], "count": 3, "page": 3, "page_size": 2}


def test_list_defaults_to_page_one_of_fifty(
    client: Client, bearer: dict[str, str], shop: dict[str, Customer]
) -> None:
    _, page = get(client, "/api/v1/customers", bearer)
    assert (page["count"], page["page"], page["page_size"], len(page["items"])) == (3, 1, 50, 3)


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("张伟", ["00042"]),
        ("Zhang.Wei@Example.cn", ["00042"]),
        # personal data is encrypted: only whole values match, through the blind indexes
        ("张", []),
        ("example.cn", []),
        ("138 1234 5678", ["00042"]),
        ("A-1", ["A-1"]),
        ("nobody", []),
    ],
)
def test_list_searches_name_email_phone_and_id(
    client: Client,
    bearer: dict[str, str],
    shop: dict[str, Customer],
    search: str,
    expected: list[str],
) -> None:
    _, page = get(client, "/api/v1/customers", bearer, search=search)
    assert [item["external_id"] for item in page["items"]] == expected
    assert page["count"] == len(expected)


def test_list_item_carries_net_totals_in_the_shop_time_zone(
    client: Client, bearer: dict[str, str], shop: dict[str, Customer]
) -> None:
    _, page = get(client, "/api/v1/customers", bearer, search="00042")
    assert page["items"] == [
        {
            "external_id": "00042",
            "name": "张伟",
            "email": "zhang.wei@example.cn",
            "phone": "+8613812345678",
            "province": "浙江",
            "city": "杭州",
            "signup_channel": "app",
            "signed_up_at": "2023-01-05T10:00:00+08:00",
            "tags": ["vip"],
            "orders_count": 3,
            "total_spent": "379.40",
            "currency": "CNY",
            "first_order_at": "2024-03-01T12:00:00+08:00",
            "last_order_at": "2024-07-01T16:00:00+08:00",
        }
    ]


def test_detail_returns_the_profile_with_exact_net_totals(
    client: Client, bearer: dict[str, str], shop: dict[str, Customer]
) -> None:
    # when
    status, body = get(client, "/api/v1/customers/00042", bearer)
    # then: the cancelled 500.00 is not counted; both refunds are taken off
    assert status == 200
    assert body == {
        "external_id": "00042",
        "name": "张伟",
        "email": "zhang.wei@example.cn",
        "phone": "+8613812345678",
        "birthday": "1990-05-17",
        "address": "",
        "gender": "male",
        "province": "浙江",
        "city": "杭州",
        "signup_channel": "app",
        "signed_up_at": "2023-01-05T10:00:00+08:00",
        "tags": ["vip"],
        "orders_count": 3,
        "total_spent": "379.40",
        "currency": "CNY",
        "first_order_at": "2024-03-01T12:00:00+08:00",
        "last_order_at": "2024-07-01T16:00:00+08:00",
        "identities": [
            {"kind": "external_id", "value": "00042"},
            {"kind": "phone", "value": "+8613812345678"},
        ],
        # not analysed: no `patron analyze` has run (tests/api/test_analytics.py covers them)
        "rfm": None,
        "lifecycle_stage": None,
        "value_score": None,
        "value_tier": None,
        "behaviour_segment": None,
        "analysed_as_of": None,
        "clv": None,
        "churn": None,
    }


def test_detail_of_a_customer_without_orders_has_zero_totals(
    client: Client, bearer: dict[str, str], shop: dict[str, Customer]
) -> None:
    _, body = get(client, "/api/v1/customers/00043", bearer)
    assert (body["orders_count"], body["total_spent"], body["currency"]) == (0, "0.00", "CNY")
    assert (body["first_order_at"], body["last_order_at"], body["signed_up_at"]) == (
        None,
        None,
        None,
    )
    assert body["birthday"] is None
    assert body["identities"] == []


def test_detail_of_a_merged_away_id_finds_the_survivor(
    client: Client, bearer: dict[str, str], shop: dict[str, Customer]
) -> None:
    # given: 00043 was merged into 00042 and its external id kept as an identity
    shop["li"].identities.create(kind="external_id", value="00043")
    merge_customers(shop["zhang"], shop["li"], reason="same phone")
    # when
    status, body = get(client, "/api/v1/customers/00043", bearer)
    # then
    assert status == 200
    assert body["external_id"] == "00042"
    assert {"kind": "external_id", "value": "00043"} in body["identities"]


def test_detail_of_an_unknown_id_is_a_json_404(
    client: Client, bearer: dict[str, str], shop: dict[str, Customer]
) -> None:
    status, body = get(client, "/api/v1/customers/99999", bearer)
    assert status == 404
    assert body == {"code": "not_found", "message": "No customer with external id '99999'."}


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"page": "0"}, "page", "Input should be greater than or equal to 1"),
        ({"page": "two"}, "page", "Input should be a valid integer, unable to parse string"),
        ({"page_size": "201"}, "page_size", "Input should be less than or equal to 200"),
        # A page whose offset overflowed the database's integers was a 500 (schemathesis).
        (
            {"page": "1376912670275655424"},
            "page",
            "Input should be less than or equal to 1000000",
        ),
    ],
)
def test_bad_paging_is_a_422_naming_the_field(
    client: Client, bearer: dict[str, str], params: dict[str, str], field: str, message: str
) -> None:
    status, body = get(client, "/api/v1/customers", bearer, **params)
    assert status == 422
    assert body["code"] == "invalid_request"
    assert body["message"].startswith(f"{field}: {message}")
    assert [(error["location"], error["field"]) for error in body["errors"]] == [("query", field)]
    assert body["errors"][0]["message"].startswith(message)
