"""``/api/v1/coupons/{code}``: validate, redeem and release over HTTP."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from patron.customers.models import Customer
from patron.loyalty.coupons import create_coupon_template, generate_coupon_codes
from patron.loyalty.models import CouponRedemption

pytestmark = pytest.mark.django_db


@pytest.fixture
def codes() -> dict[str, str]:
    """Customers 00042 and 00043; a single-use 20-off code (minimum spend 100) and a
    non-stackable 10 % code."""
    Customer.objects.create(external_id="00042", name="张伟")
    Customer.objects.create(external_id="00043", name="李娜")
    twenty = create_coupon_template(
        name="20 off", kind="fixed_amount", value=Decimal(20), minimum_spend_amount=Decimal(100)
    )
    tenth = create_coupon_template(name="10%", kind="percentage", value=Decimal(10))
    return {
        "twenty": generate_coupon_codes(twenty, 1)[0],
        "tenth": generate_coupon_codes(tenth, 1, use_limit=None)[0],
    }


def post(client: Client, url: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
    response = client.post(url, json.dumps(body), content_type="application/json", headers=headers)
    return response.status_code, response.json()


def test_validate_quotes_the_discount_or_names_the_refusal(
    client: Client, bearer: dict[str, str], codes: dict[str, str]
) -> None:
    url = f"/api/v1/coupons/{codes['twenty']}/validate"
    response = client.get(url, {"customer": "00042", "order_total": "150.00"}, headers=bearer)
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    assert (body["discount_amount"], body["currency"]) == ("20.00", "CNY")
    assert body["refusal_code"] == ""

    response = client.get(url, {"customer": "00042", "order_total": "99.99"}, headers=bearer)
    body = response.json()
    assert (body["valid"], body["refusal_code"]) == (False, "minimum_spend")
    assert body["discount_amount"] is None
    assert body["message"]
    assert not CouponRedemption.objects.exists()


def test_a_single_use_code_is_redeemed_once_and_released_on_cancellation(
    client: Client, bearer: dict[str, str], codes: dict[str, str]
) -> None:
    url = f"/api/v1/coupons/{codes['twenty']}"
    order = {"customer_external_id": "00042", "order_id": "SO-1", "order_total": "150.00"}
    status, used = post(client, f"{url}/redeem", {**bearer, "Idempotency-Key": "r1"}, order)
    assert status == 201
    assert (used["discount_amount"], used["order_id"], used["released_at"]) == (
        "20.00",
        "SO-1",
        None,
    )
    # another order cannot use the single-use code: a conflict
    other = {**order, "customer_external_id": "00043", "order_id": "SO-2"}
    status, refused = post(client, f"{url}/redeem", {**bearer, "Idempotency-Key": "r2"}, other)
    assert status == 409
    assert refused["code"] == "total_limit_reached"
    # the first order is cancelled: its use is given back, and the code works again
    status, released = post(
        client, f"{url}/release", {**bearer, "Idempotency-Key": "x1"}, {"order_id": "SO-1"}
    )
    assert status == 200
    assert released["released_at"] is not None
    status, _ = post(client, f"{url}/redeem", {**bearer, "Idempotency-Key": "r3"}, other)
    assert status == 201


def test_stacking_a_non_stackable_code_is_refused(
    client: Client, bearer: dict[str, str], codes: dict[str, str]
) -> None:
    order = {
        "customer_external_id": "00042",
        "order_id": "SO-7",
        "order_total": "150.00",
        "other_codes": [codes["twenty"]],
    }
    status, body = post(
        client,
        f"/api/v1/coupons/{codes['tenth']}/redeem",
        {**bearer, "Idempotency-Key": "s1"},
        order,
    )
    assert status == 409
    assert body["code"] == "not_stackable"
    assert not CouponRedemption.objects.exists()


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (
            {"order_id": "SO-1", "order_total": "0"},
            {"Idempotency-Key": "k"},
            422,
            "invalid_request",
        ),
        (
            {"order_id": "SO-1", "order_total": "-5"},
            {"Idempotency-Key": "k"},
            422,
            "invalid_request",
        ),
        ({"order_id": "SO-1", "order_total": "50"}, {}, 422, "idempotency_key_required"),
    ],
)
def test_bad_redemptions_are_refused_and_write_nothing(
    client: Client,
    bearer: dict[str, str],
    codes: dict[str, str],
    body: dict[str, str],
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    answer = post(
        client,
        f"/api/v1/coupons/{codes['twenty']}/redeem",
        {**bearer, **headers},
        {"customer_external_id": "00042", **body},
    )
    assert answer[0] == status
    assert answer[1]["code"] == code
    assert not CouponRedemption.objects.exists()


def test_unknown_codes_and_customers(
    client: Client, bearer: dict[str, str], codes: dict[str, str]
) -> None:
    response = client.get(
        "/api/v1/coupons/NOSUCHCODE/validate",
        {"customer": "00042", "order_total": "10"},
        headers=bearer,
    )
    assert response.status_code == 200
    assert response.json()["refusal_code"] == "unknown_code"
    response = client.get(
        f"/api/v1/coupons/{codes['twenty']}/validate",
        {"customer": "nobody", "order_total": "10"},
        headers=bearer,
    )
    assert (response.status_code, response.json()["code"]) == (404, "customer_not_found")


def test_a_refusal_naming_no_field_is_a_422_of_the_documented_shape(
    client: Client, bearer: dict[str, str], codes: dict[str, str]
) -> None:
    # given: a code that does not exist (found by the schemathesis run: its 422 had no
    # ``errors``, which every documented 422 body has)
    headers = {**bearer, "Idempotency-Key": "r1"}
    # when
    status, body = post(client, "/api/v1/coupons/NOSUCHCODE/release", headers, {"order_id": "1"})
    # then
    assert status == 422
    assert body == {
        "code": "unknown_code",
        "message": "no coupon has the code 'NOSUCHCODE'",
        "errors": [],
    }


def test_an_order_total_past_the_money_digits_is_a_422_when_validating(
    client: Client, bearer: dict[str, str], codes: dict[str, str]
) -> None:
    # given: a total of 308 digits (the schemathesis run found its quote's rounding a 500)
    url = f"/api/v1/coupons/{codes['tenth']}/validate"
    # when
    response = client.get(url, {"customer": "00042", "order_total": "7.4e307"}, headers=bearer)
    # then
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["order_total"]
