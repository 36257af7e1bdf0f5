"""Access and portability: the export holds every registered personal field of the customer,
and the registry knows every field that looks personal."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from patron.customers.models import Customer
from patron.customers.resolution import merge_customers, sync_identities
from patron.loyalty.ledger import adjust_points
from patron.loyalty.members import enrol_member
from patron.orders.models import Event, Order
from patron.privacy.choices import AuditActionChoices
from patron.privacy.consent import record_consent
from patron.privacy.export import SECTIONS, _plain, export_customer, read_export
from patron.privacy.models import AuditEvent, PrivacyRequest
from patron.privacy.registry import (
    PERSONAL_FIELDS,
    PERSONAL_NAME_PATTERN,
    unregistered_personal_looking_fields,
)
from patron.privacy.requests import export_for_subject

UTC = dt.UTC


@pytest.fixture
def customer(db: None) -> Customer:
    """A customer with a value in every registered personal field."""
    zhang = Customer.objects.create(
        external_id="C-1",
        name="张伟",
        email="zhang.wei@example.cn",
        phone="13812345678",
        address="杭州市西湖区文三路1号",
        birthday=dt.date(1990, 5, 17),
        gender="male",
        province="浙江",
        city="杭州",
        tags=["vip"],
    )
    zhang = sync_identities(zhang)
    zhang.identities.create(kind="device", value="iphone-42")
    duplicate = Customer.objects.create(external_id="C-1-old", name="张伟", phone="13812345678")
    merge_customers(zhang, duplicate, reason="same phone: 138****5678")
    order = Order.objects.create(
        external_id="O-1",
        customer=zhang,
        ordered_at=dt.datetime(2024, 3, 1, tzinfo=UTC),
        status="paid",
        subtotal_amount=Decimal("88.00"),
        total_amount=Decimal("88.00"),
    )
    Event.objects.create(
        external_id="E-1",
        customer=zhang,
        device_id="iphone-42",
        event_type="search",
        occurred_at=dt.datetime(2024, 3, 1, tzinfo=UTC),
        properties={"query": "绿茶"},
    )
    record_consent(
        zhang,
        "marketing",
        "sms",
        is_granted=True,
        source="checkout",
        source_event_id="consent-1",
        wording_version="v1",
    )
    adjust_points(enrol_member(zhang), 50, reason="welcome", actor="user:test")
    assert order.pk
    return Customer.objects.get(pk=zhang.pk)


def test_every_personal_looking_field_is_registered(db: None) -> None:
    # given: every model of Patron
    # when: the fields that are encrypted, blind indexes or named like personal data are listed
    # then: each is in the registry or explained as not personal
    assert unregistered_personal_looking_fields() == []


def test_export_holds_every_registered_field_of_the_customer(customer: Customer) -> None:
    # when: the customer's data is exported
    document = read_export(export_customer(customer))

    # then: every registered field is there, decrypted, with the value stored
    sections = {section.name: section for section in SECTIONS}
    for entry in PERSONAL_FIELDS:
        section = sections[entry.section]
        assert section.rows(customer).model is entry.model_class, entry
        attname = entry.model_class._meta.get_field(entry.field).attname
        stored = [
            _plain(value)
            for value in section.rows(customer).order_by("pk").values_list(attname, flat=True)
        ]
        exported = [row[attname] for row in document["sections"][entry.section]]
        assert exported == stored, entry
        assert any(value not in ("", None, {}, []) for value in exported), entry
    profile = document["sections"]["profile"][0]
    assert (profile["name"], profile["email"], profile["birthday"]) == (
        "张伟",
        "zhang.wei@example.cn",
        "1990-05-17",
    )
    assert {row["secret"] for row in document["sections"]["identities"]} >= {
        "zhang.wei@example.cn",
        "+8613812345678",
    }
    assert document["sections"]["merges"][0]["snapshot"]["external_id"] == "C-1-old"
    assert document["not_held"]["tickets"]
    assert len(document["sections"]["points_postings"]) == 2
    assert Decimal(document["sections"]["orders"][0]["total_amount"]) == Decimal("88.00")


def test_export_has_a_csv_per_section(customer: Customer) -> None:
    # when: exported
    archive = export_customer(customer)

    # then: one CSV per section, with a header, the profile readable back
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        names = set(opened.namelist())
        profile = list(csv.DictReader(io.StringIO(opened.read("profile.csv").decode("utf-8-sig"))))
        tickets_free = opened.read("consents.csv").decode("utf-8-sig").splitlines()
    assert names == {"customer.json"} | {f"{section.name}.csv" for section in SECTIONS}
    assert profile[0]["phone"] == "13812345678"
    assert profile[0]["tags"] == '["vip"]'
    assert tickets_free[0].startswith("id,customer_id,purpose")


def test_export_is_recorded_and_audited(customer: Customer) -> None:
    # when: an export request is answered
    privacy_request, archive = export_for_subject(customer, notes="asked at the counter")

    # then: a done request and an export audit event, holding no personal data
    assert (privacy_request.kind, privacy_request.status) == ("export", "done")
    assert privacy_request.completed_at is not None
    event = AuditEvent.objects.get(action=AuditActionChoices.EXPORT)
    assert event.customer_external_id == "C-1"
    assert event.details == {
        "request_id": privacy_request.pk,
        "kind": "export",
        "bytes": len(archive),
    }


def test_export_command_writes_the_zip(customer: Customer, tmp_path: Path) -> None:
    # when: exported from the command line
    target = tmp_path / "c1.zip"
    out = io.StringIO()
    call_command("privacy", "export", "C-1", "--output", str(target), stdout=out)

    # then: the file is the export, and the request is recorded
    assert read_export(target.read_bytes())["customer_id"] == "C-1"
    assert "done" in out.getvalue()
    assert PrivacyRequest.objects.filter(kind="export", status="done").count() == 1


def test_export_command_names_an_unknown_customer(db: None, tmp_path: Path) -> None:
    # when / then: the error names the id; nothing is written
    with pytest.raises(CommandError, match="no customer with external id 'NOPE'"):
        call_command("privacy", "export", "NOPE", "--output", str(tmp_path / "x.zip"))
    assert not (tmp_path / "x.zip").exists()
    assert not PrivacyRequest.objects.exists()


@pytest.mark.parametrize(
    "name",
    ["shipping_address", "mobile", "wechat_openid", "birthday", "contact_email", "device_id"],
)
def test_a_new_personal_looking_field_would_be_caught(name: str) -> None:
    # given: a field name a new model might use for personal data
    # then: the registry's check treats it as personal until registered or explained
    assert PERSONAL_NAME_PATTERN.search(name)


@pytest.mark.parametrize("name", ["created_at", "total_amount", "status", "kind", "points"])
def test_ordinary_fields_are_not_flagged(name: str) -> None:
    assert not PERSONAL_NAME_PATTERN.search(name)
