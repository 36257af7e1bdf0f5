"""Data subject requests over the API: export, erasure, correction and the open requests,
for administrators only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from patron.api.tokens import create_token
from patron.customers.models import Customer
from patron.customers.resolution import sync_identities
from patron.privacy.export import read_export
from patron.privacy.models import AuditEvent, PrivacyRequest
from patron.privacy.requests import open_request


def _bearer(
    username: str, group: str | None, scopes: tuple[str, ...] | None = None
) -> dict[str, str]:
    user = User.objects.create_user(username, password="not-used-here")
    if group:
        user.groups.add(Group.objects.get(name=group))
    _, token = create_token(user, "t") if scopes is None else create_token(user, "t", scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(db: None) -> dict[str, str]:
    """Headers of an administrator's token (every scope)."""
    return _bearer("privacy-admin", "admin")


@pytest.fixture
def customer(db: None) -> Customer:
    return sync_identities(
        Customer.objects.create(
            external_id="00042", name="张伟", email="zhang.wei@example.cn", phone="13812345678"
        )
    )


def _erase(client: Client, external_id: str, headers: dict[str, str], key: str | None) -> Any:
    extra = {"Idempotency-Key": key} if key else {}
    return client.post(
        f"/api/v1/customers/{external_id}/erasure",
        data=json.dumps({"reason": "asked by e-mail"}),
        content_type="application/json",
        headers={**headers, **extra},
    )


def test_admin_exports_a_customer(
    client: Client, admin: dict[str, str], customer: Customer
) -> None:
    # when
    response = client.get("/api/v1/customers/00042/export", headers=admin)

    # then: a zip with the customer's decrypted profile; the request and the audit recorded
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    document = read_export(response.content)
    assert document["sections"]["profile"][0]["email"] == "zhang.wei@example.cn"
    assert PrivacyRequest.objects.get().kind == "export"
    assert AuditEvent.objects.filter(action="export", customer_external_id="00042").count() == 1


@pytest.mark.parametrize(
    ("group", "correction_status"),
    [(None, 403), ("loyalty_manager", 403), ("service_agent", 200), ("analyst", 403)],
)
def test_only_administrators_export_or_erase(
    client: Client, customer: Customer, group: str | None, correction_status: int
) -> None:
    # given: a token with every scope of a user who is not an administrator
    headers = _bearer("someone", group)

    # when / then: export, erasure and the request list are refused; a correction too,
    # except for a service agent (privacy.correct)
    assert client.get("/api/v1/customers/00042/export", headers=headers).status_code == 403
    assert _erase(client, "00042", headers, "k-1").status_code == 403
    patch = client.patch(
        "/api/v1/customers/00042/profile",
        data=json.dumps({"city": "苏州"}),
        content_type="application/json",
        headers=headers,
    )
    assert patch.status_code == correction_status
    assert client.get("/api/v1/privacy/requests", headers=headers).status_code == 403
    corrected = correction_status == 200
    assert list(PrivacyRequest.objects.values_list("kind", flat=True)) == (
        ["correction"] if corrected else []
    )
    assert Customer.objects.get(pk=customer.pk).name == "张伟"
    assert Customer.objects.get(pk=customer.pk).city == ("苏州" if corrected else "")


def test_anonymous_callers_are_refused(client: Client, customer: Customer) -> None:
    assert client.get("/api/v1/customers/00042/export").status_code == 401
    assert _erase(client, "00042", {}, "k-1").status_code == 401


def test_an_admin_token_without_the_admin_scope_cannot_erase(
    client: Client, customer: Customer
) -> None:
    headers = _bearer("reader-admin", "admin", scopes=("read",))
    response = _erase(client, "00042", headers, "k-1")
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"


def test_erasure_needs_an_idempotency_key(
    client: Client, admin: dict[str, str], customer: Customer
) -> None:
    response = _erase(client, "00042", admin, None)
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_required"
    assert Customer.objects.get(pk=customer.pk).external_id == "00042"


def test_erasure_is_applied_once(client: Client, admin: dict[str, str], customer: Customer) -> None:
    # when: erased, the same request retried, then asked again with a new key by the old id
    first = _erase(client, "00042", admin, "k-1")
    retried = _erase(client, "00042", admin, "k-1")
    again = _erase(client, "00042", admin, "k-2")

    # then: erased once; the retry replays the answer; the new request finds it done
    assert first.status_code == 201
    body = first.json()
    assert body["customer_id"].startswith("erased-")
    assert (body["kind"], body["status"], body["created"]) == ("erasure", "done", True)
    assert retried.status_code == 201
    assert retried["Idempotent-Replayed"] == "true"
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert again.json()["id"] == body["id"]
    erased = Customer.objects.get(pk=customer.pk)
    assert (erased.name, erased.email, erased.external_id) == ("", "", body["customer_id"])
    assert PrivacyRequest.objects.filter(kind="erasure").count() == 1


def test_unknown_customer_is_404(client: Client, admin: dict[str, str], db: None) -> None:
    for response in (
        client.get("/api/v1/customers/NOPE/export", headers=admin),
        _erase(client, "NOPE", admin, "k-9"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "customer_not_found"
        assert "'NOPE'" in response.json()["message"]


def test_correction_through_the_api(
    client: Client, admin: dict[str, str], customer: Customer
) -> None:
    # when: the e-mail and birthday are corrected, then a bad phone is sent
    response = client.patch(
        "/api/v1/customers/00042/profile",
        data=json.dumps({"email": " Zhang.W@Example.CN ", "birthday": "1990-05-17"}),
        content_type="application/json",
        headers=admin,
    )
    bad = client.patch(
        "/api/v1/customers/00042/profile",
        data=json.dumps({"phone": "12"}),
        content_type="application/json",
        headers=admin,
    )

    # then: stored normalised and recorded; the bad value named
    assert response.status_code == 200
    assert (response.json()["kind"], response.json()["fields"]) == (
        "correction",
        ["birthday", "email"],
    )
    customer.refresh_from_db()
    assert customer.email == "zhang.w@example.cn"
    assert bad.status_code == 422
    assert "body.phone" in json.dumps(bad.json())


def test_open_requests_are_listed(
    client: Client, admin: dict[str, str], customer: Customer
) -> None:
    # given: one open request
    privacy_request = open_request(customer, "access")

    # when
    response = client.get("/api/v1/privacy/requests", headers=admin)

    # then
    assert response.status_code == 200
    [listed] = response.json()
    assert (listed["id"], listed["kind"], listed["customer_id"], listed["overdue"]) == (
        privacy_request.pk,
        "access",
        "00042",
        False,
    )


def test_erasure_refuses_a_reason_naming_the_customer(
    client: Client, admin: dict[str, str], customer: Customer
) -> None:
    response = client.post(
        "/api/v1/customers/00042/erasure",
        data=json.dumps({"reason": "张伟 called"}),
        content_type="application/json",
        headers={**admin, "Idempotency-Key": "k-3"},
    )
    assert response.status_code == 422
    assert "body.reason" in json.dumps(response.json())
    assert Customer.objects.get(pk=customer.pk).name == "张伟"
