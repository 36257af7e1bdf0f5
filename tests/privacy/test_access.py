"""Who reads personal data unmasked (``patron.privacy.access``), and the audit of it."""

from __future__ import annotations

import json
from datetime import date

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User

from patron.core.roles import StaffRoleChoices
from patron.customers.choices import IdentityKindChoices
from patron.customers.models import Customer
from patron.privacy.access import (
    csv_for,
    customer_view,
    customers_view,
    identities_view,
    sees_personal_data,
)
from patron.privacy.choices import AuditActionChoices
from patron.privacy.models import AuditEvent

PLAIN = {
    "name": "张伟",
    "email": "zhang.wei@qq.com",
    "phone": "+8613812345678",
    "birthday": "1990-05-17",
    "address": "上海市浦东新区世纪大道100号",
}
MASKED = {
    "name": "张*",
    "email": "z***@qq.com",
    "phone": "+86 138****5678",
    "birthday": "****-05-17",
    "address": "上海市浦东新区****",
}


@pytest.fixture
def customer(db: None) -> Customer:
    return Customer.objects.create(
        external_id="00042",
        name=PLAIN["name"],
        email=PLAIN["email"],
        phone=PLAIN["phone"],
        birthday=date(1990, 5, 17),
        address=PLAIN["address"],
    )


def user_in(role: str | None, *, superuser: bool = False) -> User:
    user = User.objects.create_user(f"u-{role}-{superuser}", is_staff=True, is_superuser=superuser)
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
    return user


def pii_reads() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditActionChoices.PII_READ).order_by("id"))


def assert_no_plaintext(events: list[AuditEvent]) -> None:
    text = json.dumps([event.details for event in events], ensure_ascii=False)
    text += "".join(event.actor_label for event in events)
    for value in (*PLAIN.values(), "13812345678", "zhang.wei"):
        assert value not in text


@pytest.mark.parametrize(
    ("role", "superuser", "unmasked"),
    [
        (StaffRoleChoices.ADMIN, False, True),
        (StaffRoleChoices.SERVICE_AGENT, False, True),
        (None, True, True),
        (StaffRoleChoices.LOYALTY_MANAGER, False, False),
        (StaffRoleChoices.MARKETER, False, False),
        (StaffRoleChoices.ANALYST, False, False),
        (None, False, False),
    ],
)
def test_each_role_sees_plain_or_masked_values(
    customer: Customer, role: str | None, superuser: bool, unmasked: bool
) -> None:
    # given
    user = user_in(role, superuser=superuser)
    # when
    shown = customer_view(customer, user, purpose="customer page")
    # then
    values = {field: getattr(shown, field) for field in PLAIN}
    assert values == (PLAIN if unmasked else MASKED)
    assert shown.masked is not unmasked
    assert sees_personal_data(user) is unmasked


def test_anonymous_and_missing_users_see_masked_values(customer: Customer) -> None:
    assert customer_view(customer, AnonymousUser(), purpose="api").name == "张*"
    assert customer_view(customer, None, purpose="api").phone == "+86 138****5678"
    assert pii_reads() == []


def test_an_unmasked_read_is_audited_with_the_purpose_and_no_value(customer: Customer) -> None:
    # given
    agent = user_in(StaffRoleChoices.SERVICE_AGENT)
    # when
    customer_view(customer, agent, purpose="customer page")
    # then
    [event] = pii_reads()
    assert event.customer_pk == customer.pk
    assert event.customer_external_id == "00042"
    assert event.details["purpose"] == "customer page"
    assert event.details["fields"] == ["name", "email", "phone", "birthday", "address"]
    assert_no_plaintext([event])


@pytest.mark.parametrize(
    "role", [StaffRoleChoices.ANALYST, StaffRoleChoices.MARKETER, StaffRoleChoices.LOYALTY_MANAGER]
)
def test_a_masked_read_is_not_audited(customer: Customer, role: str) -> None:
    customer_view(customer, user_in(role), purpose="customer page")
    customers_view([customer], user_in(None), purpose="customer list page")
    assert pii_reads() == []


def test_a_list_read_unmasked_writes_one_event_with_the_ids_shown(customer: Customer) -> None:
    # given
    other = Customer.objects.create(external_id="00043", name="李娜", phone="13900001111")
    admin = user_in(StaffRoleChoices.ADMIN)
    # when
    shown = customers_view([customer, other], admin, purpose="customer list page")
    # then
    assert [shown[customer.pk].name, shown[other.pk].name] == ["张伟", "李娜"]
    [event] = pii_reads()
    assert event.customer_pk is None
    assert event.details["customers"] == ["00042", "00043"]
    assert_no_plaintext([event])


def test_an_empty_page_is_not_audited(db: None) -> None:
    customers_view([], user_in(StaffRoleChoices.ADMIN), purpose="customer list page")
    assert pii_reads() == []


def test_a_read_without_a_purpose_is_refused(customer: Customer) -> None:
    with pytest.raises(ValueError, match="purpose"):
        customer_view(customer, user_in(StaffRoleChoices.ADMIN), purpose=" ")


def test_identities_are_masked_by_kind(db: None) -> None:
    identities = [
        (IdentityKindChoices.EXTERNAL_ID, "00042"),
        (IdentityKindChoices.EMAIL, "zhang.wei@qq.com"),
        (IdentityKindChoices.PHONE, "+8613812345678"),
        (IdentityKindChoices.DEVICE, "device-abcdef"),
    ]
    assert identities_view(identities, user_in(StaffRoleChoices.ANALYST)) == [
        ("external_id", "00042"),
        ("email", "z***@qq.com"),
        ("phone", "+86 138****5678"),
        ("device", "devi****"),
    ]
    assert identities_view(identities, user_in(StaffRoleChoices.SERVICE_AGENT)) == identities


def test_a_csv_export_is_masked_or_audited(db: None) -> None:
    # given
    content = (
        "external_id,name,email,phone,score\n00042,张伟,zhang.wei@qq.com,13812345678,0.5\n"
    ).encode("utf-8-sig")
    # when
    masked = csv_for(content, user_in(StaffRoleChoices.MARKETER), purpose="segment export")
    plain = csv_for(content, user_in(StaffRoleChoices.ADMIN), purpose="segment export")
    # then
    assert masked.decode("utf-8-sig").splitlines() == [
        "external_id,name,email,phone,score",
        "00042,张*,z***@qq.com,138****5678,0.5",
    ]
    assert masked.startswith(b"\xef\xbb\xbf")
    assert plain == content
    [event] = pii_reads()
    assert event.details == {"purpose": "segment export", "rows": 1}
