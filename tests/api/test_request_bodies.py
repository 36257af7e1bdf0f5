"""Request bodies: malformed JSON, wrong types, unknown fields and oversize bodies are refused
with a JSON error that names the problem, and nothing is written."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import Group, User
from django.test import Client, override_settings

from patron.api.tokens import create_token
from patron.customers.models import Customer
from patron.loyalty.models import Tier


def manager_headers(key: str) -> dict[str, str]:
    manager = User.objects.create_user(f"manager-{key}", password="not-used-here")
    manager.groups.add(Group.objects.get(name="loyalty_manager"))
    return {"Authorization": f"Bearer {create_token(manager)[1]}", "Idempotency-Key": key}


def post(
    url: str, body: bytes | str, headers: dict[str, str], **extra: str
) -> tuple[int, dict[str, Any]]:
    response = Client().post(url, body, content_type="application/json", headers=headers, **extra)
    assert response["Content-Type"] == "application/json; charset=utf-8"
    return response.status_code, response.json()


def test_malformed_json_is_refused_naming_where(db: None) -> None:
    status, body = post("/api/v1/loyalty/tiers", '{"name": "Gold",', manager_headers("k1"))
    assert status == 400
    assert body["code"] == "invalid_json"
    assert body["message"].startswith("The body is not valid JSON: Expecting property name")
    assert "line 1 column 17" in body["message"]
    assert not Tier.objects.exists()


def test_a_body_that_is_not_utf8_is_refused(db: None) -> None:
    status, body = post("/api/v1/loyalty/tiers", b'{"name": "\xff"}', manager_headers("k2"))
    assert status == 400
    assert body == {
        "code": "invalid_json",
        "message": "The body is not UTF-8 text: send JSON encoded as UTF-8.",
    }


def test_wrong_types_are_named_field_by_field(db: None) -> None:
    status, body = post(
        "/api/v1/loyalty/tiers", json.dumps({"name": 5, "threshold": "lots"}), manager_headers("k3")
    )
    assert status == 422
    assert body["code"] == "invalid_request"
    assert [(error["field"], error["type"]) for error in body["errors"]] == [
        ("body.name", "string_type"),
        ("body.threshold", "decimal_parsing"),
    ]
    assert not Tier.objects.exists()


def test_an_unknown_field_is_refused_by_name(db: None) -> None:
    # a misspelt optional field would otherwise be dropped without a word
    status, body = post(
        "/api/v1/loyalty/tiers",
        json.dumps({"name": "Gold", "threshold": "1000", "earn_mutliplier": "2"}),
        manager_headers("k4"),
    )
    assert status == 422
    assert body["errors"] == [
        {
            "location": "body",
            "field": "body.earn_mutliplier",
            "message": "Extra inputs are not permitted",
            "type": "extra_forbidden",
        }
    ]
    assert not Tier.objects.exists()


def test_the_schema_tells_clients_that_unknown_fields_are_refused(db: None) -> None:
    schema = Client().get("/api/v1/openapi.json").json()
    assert schema["components"]["schemas"]["TierIn"]["additionalProperties"] is False


def test_a_missing_body_is_named(db: None) -> None:
    status, body = post("/api/v1/loyalty/tiers", "", manager_headers("k5"))
    assert status == 422
    assert body["errors"][0]["field"] == "body"
    assert body["errors"][0]["type"] == "missing"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_an_oversize_body_is_413_naming_both_sizes(db: None) -> None:
    # given: an ingest batch of about 5 kB where 1,000 bytes are allowed
    records = [{"customer_id": f"C-{number}", "name": "王芳"} for number in range(100)]
    payload = json.dumps(records)
    # when
    status, body = post("/api/v1/ingest/customers", payload, manager_headers("k6"))
    # then
    assert status == 413
    assert body["code"] == "payload_too_large"
    assert f"{len(payload.encode()):,} bytes" in body["message"]
    assert "at most 1,000 (PATRON_MAX_BODY_BYTES)" in body["message"]
    assert not Customer.objects.exists()


def test_every_operation_with_a_json_body_documents_the_400_of_a_body_that_is_not_json(
    db: None,
) -> None:
    # given: the schema (the schemathesis run found these 400s undocumented)
    schema = Client().get("/api/v1/openapi.json").json()
    # when
    with_body = {
        f"{method.upper()} {path}": operation["responses"].get("400")
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
        # The imports read their body themselves: a 422 names what is wrong with it.
        and not path.startswith("/api/v1/ingest/")
    }
    # then
    assert len(with_body) == 17
    error_out = {"$ref": "#/components/schemas/ErrorOut"}
    assert {
        name: response["content"]["application/json"]["schema"]
        for name, response in with_body.items()
        if response is not None
    } == dict.fromkeys(with_body, error_out)
