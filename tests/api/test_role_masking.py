"""The customer endpoints × the caller's role: masked or plain personal data, the same
schema either way, and an audit event for each plain read."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from patron.api.tokens import create_token
from patron.core.roles import StaffRoleChoices
from patron.customers.models import Customer
from patron.privacy.choices import AuditActionChoices
from patron.privacy.models import AuditEvent

PLAIN = {
    "name": "张伟",
    "email": "zhang.wei@example.cn",
    "phone": "+8613812345678",
    "birthday": "1990-05-17",
}
MASKED = {
    "name": "张*",
    "email": "z***@example.cn",
    "phone": "+86 138****5678",
    "birthday": "****-05-17",
}
ROLES = [
    (StaffRoleChoices.ADMIN, True),
    (StaffRoleChoices.SERVICE_AGENT, True),
    (StaffRoleChoices.LOYALTY_MANAGER, False),
    (StaffRoleChoices.MARKETER, False),
    (StaffRoleChoices.ANALYST, False),
    (None, False),
]


def token_headers(role: str | None) -> dict[str, str]:
    user = User.objects.create_user(f"tool-{role}", password="not-used-here")
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    return {"Authorization": f"Bearer {create_token(user, 'tool')[1]}"}


def pii_reads() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditActionChoices.PII_READ).order_by("id"))


def get(client: Client, url: str, headers: dict[str, str]) -> Any:
    response = client.get(url, headers=headers)
    assert response.status_code == 200
    return response.json()


@pytest.mark.parametrize(("role", "unmasked"), ROLES)
def test_customer_detail_is_masked_or_plain_by_the_token_s_role(
    client: Client, shop: dict[str, Customer], role: str | None, unmasked: bool
) -> None:
    # when
    body = get(client, "/api/v1/customers/00042", token_headers(role))
    # then
    expected = PLAIN if unmasked else MASKED
    assert {field: body[field] for field in expected} == expected
    identities = {item["kind"]: item["value"] for item in body["identities"]}
    assert identities == {"external_id": "00042", "phone": expected["phone"]}
    events = pii_reads()
    if unmasked:
        [event] = events
        assert event.customer_external_id == "00042"
        assert event.details["purpose"] == "api customer detail"
        assert event.actor_label.startswith("token ")
        assert event.actor_label.endswith(f"(tool-{role})")
    else:
        assert events == []


@pytest.mark.parametrize(("role", "unmasked"), ROLES)
def test_customer_list_is_masked_or_plain_and_audited_once(
    client: Client, shop: dict[str, Customer], role: str | None, unmasked: bool
) -> None:
    # when
    page = get(client, "/api/v1/customers", token_headers(role))
    # then
    [item] = [item for item in page["items"] if item["external_id"] == "00042"]
    expected = PLAIN if unmasked else MASKED
    assert {field: item[field] for field in ("name", "email", "phone")} == {
        field: expected[field] for field in ("name", "email", "phone")
    }
    events = pii_reads()
    if unmasked:
        [event] = events
        assert sorted(event.details["customers"]) == sorted(i["external_id"] for i in page["items"])
        assert event.details["purpose"] == "api customer list"
    else:
        assert events == []


@pytest.mark.parametrize(("role", "unmasked"), ROLES[:-1])
def test_a_staff_session_is_masked_by_its_role_too(
    shop: dict[str, Customer], role: str, unmasked: bool
) -> None:
    # given
    staff = User.objects.create_user(f"staff-{role}", password="x", is_staff=True)
    staff.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(staff)
    # when
    body = get(client, "/api/v1/customers/00042", {})
    # then
    assert body["name"] == (PLAIN if unmasked else MASKED)["name"]
    assert len(pii_reads()) == (1 if unmasked else 0)


def test_masked_responses_keep_the_schema_s_types(
    client: Client, shop: dict[str, Customer]
) -> None:
    # given
    plain = get(client, "/api/v1/customers/00042", token_headers(StaffRoleChoices.ADMIN))
    # when
    masked = get(client, "/api/v1/customers/00042", token_headers(StaffRoleChoices.ANALYST))
    # then: same keys, and every personal field still text
    assert masked.keys() == plain.keys()
    for field in ("name", "email", "phone", "birthday", "address"):
        assert isinstance(masked[field], str) == isinstance(plain[field], str) or (
            plain[field] is None and masked[field] is None
        )
