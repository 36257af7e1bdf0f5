"""``/api/v1/customers/{external_id}/consents``: reading and recording consent."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from patron.customers.models import Customer
from patron.privacy.consent import may
from patron.privacy.models import AuditEvent, ConsentEvent

URL = "/api/v1/customers/{}/consents"


def post(client: Client, external_id: str, body: Any, headers: dict[str, str]) -> Any:
    return client.post(
        URL.format(external_id),
        data=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


@pytest.fixture
def customer(db: None) -> Customer:
    return Customer.objects.create(external_id="00042", name="张伟")


def test_a_customer_without_decisions_reads_the_defaults(
    client: Client, bearer: dict[str, str], customer: Customer
) -> None:
    # when
    response = client.get(URL.format("00042"), headers=bearer)
    # then
    assert response.status_code == 200
    body = response.json()
    assert body["customer_id"] == "00042"
    assert body["history"] == []
    assert [
        (c["purpose"], c["channel"], c["granted"], c["is_default"]) for c in body["consents"]
    ] == [
        ("marketing", "email", False, True),
        ("marketing", "sms", False, True),
        ("marketing", "wechat", False, True),
        ("marketing", "app_push", False, True),
        ("personalisation", None, True, True),
        ("analytics", None, True, True),
    ]


def test_recording_decisions_answers_201_with_the_new_state_and_history(
    client: Client, bearer: dict[str, str], token: str, customer: Customer
) -> None:
    # when
    response = post(
        client,
        "00042",
        {
            "changes": [
                {
                    "purpose": "marketing",
                    "channel": "sms",
                    "granted": True,
                    "wording_version": "privacy-2025-06",
                    "source": "checkout",
                    "source_event_id": "chk-1",
                    "occurred_at": "2025-06-01T08:00:00Z",
                },
                {"purpose": "personalisation", "granted": False},
            ]
        },
        bearer,
    )
    # then
    assert response.status_code == 201
    body = response.json()
    assert [(r["purpose"], r["channel"], r["granted"], r["created"]) for r in body["recorded"]] == [
        ("marketing", "sms", True, True),
        ("personalisation", None, False, True),
    ]
    assert body["recorded"][0]["decided_at"] == "2025-06-01T16:00:00+08:00"
    assert body["recorded"][0]["recorded_by"] == f"token {token[:8]}"
    sms = next(c for c in body["consents"] if c["channel"] == "sms")
    assert (sms["granted"], sms["is_default"], sms["source"], sms["wording_version"]) == (
        True,
        False,
        "checkout",
        "privacy-2025-06",
    )
    assert len(body["history"]) == 2
    assert may(customer, "marketing", "sms") is True
    assert may(customer, "personalisation") is False
    audit = AuditEvent.objects.filter(action="consent_change").order_by("pk")
    assert [event.actor_label for event in audit] == [f"token {token[:8]} (shop-sync)"] * 2


def test_a_redelivered_decision_answers_200_and_records_nothing(
    client: Client, bearer: dict[str, str], customer: Customer
) -> None:
    # given
    change = {
        "purpose": "marketing",
        "channel": "email",
        "granted": True,
        "wording_version": "v1",
        "source_event_id": "evt-9",
    }
    first = post(client, "00042", {"changes": [change]}, bearer)
    # when
    again = post(client, "00042", {"changes": [change]}, bearer)
    # then
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["recorded"][0]["created"] is False
    assert again.json()["recorded"][0]["id"] == first.json()["recorded"][0]["id"]
    assert ConsentEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"purpose": "newsletter", "granted": True}, "body.changes[0].purpose", "marketing"),
        (
            {"purpose": "marketing", "channel": "fax", "granted": True},
            "body.changes[0].channel",
            "sms",
        ),
        ({"purpose": "marketing", "granted": False}, "body.changes[0].channel", "per channel"),
        (
            {"purpose": "analytics", "channel": "sms", "granted": False},
            "body.changes[0].channel",
            "not given per channel",
        ),
        (
            {"purpose": "marketing", "channel": "sms", "granted": True},
            "body.changes[0].wording_version",
            "version of the consent text",
        ),
        (
            {"purpose": "analytics", "granted": False, "occurred_at": "2025-06-01T08:00:00"},
            "body.changes[0].occurred_at",
            "timezone",
        ),
        # No place is 19:41 ahead of UTC (PostgreSQL refused it: a 500, found by schemathesis)
        (
            {
                "purpose": "analytics",
                "granted": False,
                "occurred_at": "1214-06-17T02:01:44.2+19:41",
            },
            "body.changes[0].occurred_at",
            "between -12:00 and +14:00",
        ),
    ],
)
def test_a_bad_change_is_refused_with_422_naming_the_field(
    client: Client,
    bearer: dict[str, str],
    customer: Customer,
    change: dict[str, Any],
    field: str,
    words: str,
) -> None:
    # when
    response = post(client, "00042", {"changes": [change]}, bearer)
    # then
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid_request"
    assert body["errors"][0]["field"] == field
    assert words in body["errors"][0]["message"]
    assert ConsentEvent.objects.count() == 0


def test_one_bad_change_records_none_of_the_request(
    client: Client, bearer: dict[str, str], customer: Customer
) -> None:
    # when the second change lacks the channel marketing needs
    response = post(
        client,
        "00042",
        {
            "changes": [
                {"purpose": "analytics", "granted": False},
                {"purpose": "marketing", "granted": False},
            ]
        },
        bearer,
    )
    # then
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.changes[1].channel"
    assert (ConsentEvent.objects.count(), AuditEvent.objects.count()) == (0, 0)


def test_an_empty_list_of_changes_is_refused(
    client: Client, bearer: dict[str, str], customer: Customer
) -> None:
    response = post(client, "00042", {"changes": []}, bearer)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.changes"


def test_an_unknown_customer_is_404(client: Client, bearer: dict[str, str], db: None) -> None:
    # when
    read = client.get(URL.format("nobody"), headers=bearer)
    written = post(
        client, "nobody", {"changes": [{"purpose": "analytics", "granted": False}]}, bearer
    )
    # then
    assert (read.status_code, written.status_code) == (404, 404)
    assert read.json() == {
        "code": "customer_not_found",
        "message": "No customer with external id 'nobody'.",
    }


def test_anonymous_callers_get_401(client: Client, customer: Customer) -> None:
    read = client.get(URL.format("00042"))
    written = post(client, "00042", {"changes": [{"purpose": "analytics", "granted": False}]}, {})
    assert (read.status_code, written.status_code) == (401, 401)


def test_a_staff_session_records_decisions_as_its_user(
    staff_client_in_role: Callable[..., Client], customer: Customer
) -> None:
    # given: a service agent's session (staff in no role may not record consents)
    staff_client = staff_client_in_role("service_agent")
    # when (the test client does not enforce CSRF)
    response = post(
        staff_client, "00042", {"changes": [{"purpose": "analytics", "granted": False}]}, {}
    )
    # then
    assert response.status_code == 201
    assert response.json()["recorded"][0]["recorded_by"] == "staff"
    assert ConsentEvent.objects.get().actor_user.username == "staff"  # type: ignore[union-attr]


def test_the_endpoints_are_in_the_openapi_schema(client: Client, db: None) -> None:
    # when
    schema = client.get("/api/v1/openapi.json").json()
    # then
    operations = schema["paths"]["/api/v1/customers/{external_id}/consents"]
    assert set(operations) == {"get", "post"}


def test_a_decision_time_is_kept_as_the_same_instant(
    client: Client, bearer: dict[str, str], customer: Customer
) -> None:
    # when: a time in Kiribati (+14:00), the widest offset in use
    response = post(
        client,
        "00042",
        {
            "changes": [
                {
                    "purpose": "analytics",
                    "granted": False,
                    "occurred_at": "2025-06-02T06:00:00+14:00",
                }
            ]
        },
        bearer,
    )
    # then
    assert response.status_code == 201
    assert ConsentEvent.objects.get().occurred_at == dt.datetime(2025, 6, 1, 16, 0, tzinfo=dt.UTC)
