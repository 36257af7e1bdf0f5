"""``POST /api/v1/ingest/{customers,products,orders,events}``."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret
from django.test import Client

from patron.catalog.models import Product
from patron.customers.models import Customer
from patron.orders.models import Event, Order

CUSTOMERS = [
    {"customer_id": "00042", "name": "张伟", "phone": "138 1234 5678", "gender": "male"},
    {"customer_id": "00043", "name": "李娜", "email": "li.na@example.cn", "tags": "vip|new"},
    {"customer_id": "A-1", "name": "Alice", "signed_up_at": "2024-01-05T10:00:00+08:00"},
]


def post(
    client: Client, kind: str, body: Any, headers: dict[str, str], query: str = ""
) -> tuple[int, Any]:
    payload = body if isinstance(body, str | bytes) else json.dumps(body)
    response = client.post(
        f"/api/v1/ingest/{kind}{query}", payload, content_type="application/json", headers=headers
    )
    return response.status_code, response.json()


def test_a_good_batch_is_counted_and_stored(client: Client, bearer: dict[str, str]) -> None:
    # when
    status, summary = post(client, "customers", CUSTOMERS, bearer)
    # then
    assert status == 200
    assert summary == {
        "inserted": 3,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "ignored_columns": [],
        "errors": [],
        "points": None,
    }
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == [
        "00042",
        "00043",
        "A-1",
    ]
    assert Customer.objects.get(external_id="00043").tags == ["new", "vip"]


def test_tags_may_be_a_json_list(client: Client, bearer: dict[str, str]) -> None:
    records = [{"customer_id": "00043", "tags": ["vip", "new"]}]
    status, _ = post(client, "customers", records, bearer)
    assert status == 200
    assert Customer.objects.get(external_id="00043").tags == ["new", "vip"]


def test_the_same_batch_again_changes_nothing(client: Client, bearer: dict[str, str]) -> None:
    # given
    post(client, "customers", CUSTOMERS, bearer)
    # when
    status, summary = post(client, "customers", CUSTOMERS, bearer)
    # then
    assert status == 200
    assert (summary["inserted"], summary["updated"], summary["unchanged"]) == (0, 0, 3)
    assert Customer.objects.count() == 3


def test_a_changed_record_is_updated(client: Client, bearer: dict[str, str]) -> None:
    post(client, "customers", CUSTOMERS, bearer)
    changed = [{**CUSTOMERS[0], "city": "杭州"}, *CUSTOMERS[1:]]
    status, summary = post(client, "customers", changed, bearer)
    assert (status, summary["inserted"], summary["updated"], summary["unchanged"]) == (200, 0, 1, 2)
    assert Customer.objects.get(external_id="00042").city == "杭州"


def test_a_bad_record_is_rejected_with_its_row_and_field(
    client: Client, bearer: dict[str, str]
) -> None:
    # given: the second record has a bad birthday, the third an unknown column
    records = [
        CUSTOMERS[0],
        {"customer_id": "00099", "birthday": "not-a-date"},
        {**CUSTOMERS[2], "shoe_size": 42},
    ]
    # when
    status, summary = post(client, "customers", records, bearer)
    # then: the good ones are in
    assert status == 200
    assert summary == {
        "inserted": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
        "ignored_columns": ["shoe_size"],
        "errors": [{"row": 2, "field": "birthday", "reason": "not a date"}],
        "points": None,
    }
    assert not Customer.objects.filter(external_id="00099").exists()


def test_strict_refuses_the_whole_batch_and_writes_nothing(
    client: Client, bearer: dict[str, str]
) -> None:
    # given
    records = [*CUSTOMERS, {"customer_id": "00099", "birthday": "not-a-date"}]
    # when
    status, body = post(client, "customers", records, bearer, query="?strict=true")
    # then
    assert status == 422
    assert body == {
        "code": "invalid_records",
        "message": "1 of 4 records are invalid; nothing was written (strict=true).",
        "errors": [{"row": 4, "field": "birthday", "reason": "not a date"}],
    }
    assert Customer.objects.count() == 0


def test_strict_with_good_records_writes_them(client: Client, bearer: dict[str, str]) -> None:
    status, summary = post(client, "customers", CUSTOMERS, bearer, query="?strict=true")
    assert (status, summary["inserted"]) == (200, 3)


def test_orders_products_and_events_import(client: Client, bearer: dict[str, str]) -> None:
    # when
    products = [{"product_id": "P1", "name": "连衣裙", "price": "199.00", "category": "Clothing"}]
    orders = [
        {
            "order_id": "O-1",
            "customer_id": "00042",
            "ordered_at": "2024-11-11T00:05:00+08:00",
            "product_id": "P1",
            "quantity": 2,
            "unit_price": "199.00",
        }
    ]
    events = [
        {
            "event_id": "E-1",
            "customer_id": "00042",
            "event_type": "view",
            "occurred_at": "2024-11-10T23:59:00+08:00",
            "product_id": "P1",
        }
    ]
    results = [
        post(client, "products", products, bearer),
        post(client, "orders", orders, bearer),
        post(client, "events", events, bearer),
    ]
    # then
    assert [(status, summary["inserted"]) for status, summary in results] == [
        (200, 1),
        (200, 1),
        (200, 1),
    ]
    assert Product.objects.get().name == "连衣裙"
    order = Order.objects.get()
    assert (order.customer.external_id, order.total_amount) == ("00042", Decimal("398.0000"))
    assert Event.objects.get().event_type == "view"


def test_a_full_batch_larger_than_djangos_body_cap_is_accepted(
    client: Client, bearer: dict[str, str]
) -> None:
    # given: 10,000 records in about 2.9 MB, over Django's 2.5 MB DATA_UPLOAD_MAX_MEMORY_SIZE
    records = [
        {"customer_id": f"C{number:05d}", "name": "x" * 200, "email": f"c{number}@example.cn"}
        for number in range(10_000)
    ]
    body = json.dumps(records)
    assert len(body) > 2_621_440
    # when
    status, summary = post(client, "customers", body, bearer)
    # then
    assert (status, summary["inserted"], summary["rejected"]) == (200, 10_000, 0)
    assert Customer.objects.count() == 10_000


def test_10001_records_are_refused_with_a_clear_error(
    client: Client, bearer: dict[str, str]
) -> None:
    records = [{"customer_id": str(number)} for number in range(10_001)]
    status, body = post(client, "customers", records, bearer)
    assert status == 413
    assert body == {
        "code": "payload_too_large",
        "message": "10,001 records in one call; send at most 10,000 per call.",
    }
    assert Customer.objects.count() == 0


NOT_A_LIST = "The body must be a JSON list of records (objects), not "
NOT_JSON = "The body is not valid JSON: "


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"customer_id": "1"}, "body", NOT_A_LIST + "object."),
        ("7", "body", NOT_A_LIST + "number."),
        (
            "not json",
            "body",
            "The body is not valid JSON: Expecting value: line 1 column 1 (char 0)",
        ),
        ([{"customer_id": "1"}, "two"], "[1]", "Record 2 is string, not an object."),
        ([[1, 2]], "[0]", "Record 1 is list, not an object."),
        ([None], "[0]", "Record 1 is null, not an object."),
    ],
)
def test_a_body_that_is_not_a_list_of_objects_is_a_422(
    client: Client, bearer: dict[str, str], body: Any, field: str, message: str
) -> None:
    status, error = post(client, "customers", body, bearer)
    assert status == 422
    assert (error["code"], error["message"]) == ("invalid_request", message)
    assert [(e["location"], e["field"]) for e in error["errors"]] == [("body", field)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "there are no records to import"),
        ([{"name": "nobody"}], "required column 'customer_id' is missing"),
    ],
)
def test_a_batch_the_importer_cannot_take_is_a_422_saying_why(
    client: Client, bearer: dict[str, str], body: Any, message: str
) -> None:
    status, error = post(client, "customers", body, bearer)
    assert status == 422
    # The documented 422 body, naming the body as the field at fault (the schemathesis run
    # found these without ``errors``).
    assert error == {
        "code": "invalid_request",
        "message": message,
        "errors": [{"location": "body", "field": "body", "message": message, "type": "invalid"}],
    }


def test_an_unknown_kind_is_a_json_404(client: Client, bearer: dict[str, str]) -> None:
    status, error = post(client, "coupons", [], bearer)
    assert (status, error["code"]) == (404, "not_found")


def test_a_session_post_needs_the_csrf_token(staff_client: Client) -> None:
    # given: the staff member's browser session and CSRF cookie, checked as for a browser
    staff_client.handler.enforce_csrf_checks = True
    staff_client.cookies["csrftoken"] = _get_new_csrf_string()
    # when: posting without the CSRF header
    status, error = post(staff_client, "customers", CUSTOMERS, {})
    # then
    assert status == 403
    assert error["code"] == "csrf_failed"
    assert Customer.objects.count() == 0


def test_a_session_post_with_the_csrf_token_is_accepted(
    staff_client_in_role: Callable[..., Client],
) -> None:
    # given: an administrator's session (staff in no role may not import)
    staff_client = staff_client_in_role("admin")
    secret = _get_new_csrf_string()
    staff_client.handler.enforce_csrf_checks = True
    staff_client.cookies["csrftoken"] = secret
    # when
    status, summary = post(
        staff_client, "customers", CUSTOMERS, {"X-CSRFToken": _mask_cipher_secret(secret)}
    )
    # then
    assert (status, summary["inserted"]) == (200, 3)
