"""Data subject requests on the dashboard: correcting a profile, exporting and erasing from
the customer page, and the administrators' request register. Who may do what: correction by
administrators and service agents, export, erasure and the register by administrators only,
consent decisions by administrators and service agents."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from patron.core.roles import StaffRoleChoices
from patron.customers.models import Customer, CustomerIdentity
from patron.customers.resolution import attach_identity
from patron.privacy.models import AuditEvent, ConsentEvent, PrivacyRequest
from patron.privacy.requests import open_request
from tests.web.conftest import SmallShop

CORRECTION = {
    "name": "李娜",
    "email": "li.na@example.cn",
    "phone": "+8613812345678",
    "address": "",
    "birthday": "",
    "gender": "unknown",
    "province": "浙江",
    "city": "杭州",
}


def role_client(role: str) -> Client:
    """A client signed in as a staff member of ``role``."""
    user = User.objects.create_user(f"user-{role}", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.mark.parametrize("role", [StaffRoleChoices.ADMIN, StaffRoleChoices.SERVICE_AGENT])
def test_admins_and_service_agents_correct_a_profile(small_shop: SmallShop, role: str) -> None:
    # given
    client = role_client(role)
    page = client.get("/customers/C-0001/").content.decode()
    assert 'data-form="correction"' in page
    # when
    response = client.post(
        "/customers/C-0001/correction/",
        {**CORRECTION, "email": " Li.Na.New@Example.CN ", "city": "宁波", "birthday": "1991-02-03"},
        follow=True,
    )
    # then
    assert response.redirect_chain == [("/customers/C-0001/#requests", 302)]
    assert "Profile corrected" in response.content.decode()
    customer = Customer.objects.get(external_id="C-0001")
    assert (customer.email, customer.city, customer.birthday) == (
        "li.na.new@example.cn",
        "宁波",
        dt.date(1991, 2, 3),
    )
    assert customer.phone == "+8613812345678"
    assert CustomerIdentity.objects.get(customer=customer, kind="email").identifier == (
        "li.na.new@example.cn"
    )
    request = PrivacyRequest.objects.get(customer=customer)
    assert (request.kind, request.status) == ("correction", "done")
    event = AuditEvent.objects.get(action="correction")
    assert event.details["fields"] == ["birthday", "city", "email"]
    assert "li.na.new" not in json.dumps(event.details)


def test_an_unchanged_form_corrects_nothing(small_shop: SmallShop) -> None:
    # when
    response = role_client(StaffRoleChoices.ADMIN).post(
        "/customers/C-0001/correction/", CORRECTION, follow=True
    )
    # then
    assert "Nothing to correct" in response.content.decode()
    assert not PrivacyRequest.objects.exists()


def test_a_correction_naming_another_customers_phone_is_refused(small_shop: SmallShop) -> None:
    # given
    attach_identity(small_shop.zhang_wei, "phone", "+8613900001111")
    # when: Zhang Wei's phone
    response = role_client(StaffRoleChoices.ADMIN).post(
        "/customers/C-0001/correction/", {**CORRECTION, "phone": "13900001111"}, follow=True
    )
    # then
    html = response.content.decode()
    assert "Profile not corrected: Phone already names another customer" in html
    assert Customer.objects.get(external_id="C-0001").phone == "+8613812345678"
    assert not PrivacyRequest.objects.exists()


def test_an_invalid_email_is_named_and_changes_nothing(small_shop: SmallShop) -> None:
    # when
    response = role_client(StaffRoleChoices.SERVICE_AGENT).post(
        "/customers/C-0001/correction/", {**CORRECTION, "email": "not-an-email"}, follow=True
    )
    # then
    assert "Profile not corrected: E-mail is not a valid email" in response.content.decode()
    assert Customer.objects.get(external_id="C-0001").email == "li.na@example.cn"


@pytest.mark.parametrize(
    "role",
    [StaffRoleChoices.MARKETER, StaffRoleChoices.ANALYST, StaffRoleChoices.LOYALTY_MANAGER],
)
def test_masked_roles_neither_see_nor_use_the_correction_and_consent_forms(
    small_shop: SmallShop, role: str
) -> None:
    # given
    client = role_client(role)
    # when
    page = client.get("/customers/C-0001/").content.decode()
    correction = client.post("/customers/C-0001/correction/", {**CORRECTION, "city": "宁波"})
    consent = client.post(
        "/customers/C-0001/consents/",
        {"key": "marketing:sms", "decision": "grant", "wording_version": "v1"},
    )
    # then
    assert 'data-card="privacy-requests"' not in page
    assert 'data-form="consent"' not in page
    assert 'data-note="consent-read-only"' in page
    assert (correction.status_code, consent.status_code) == (403, 403)
    assert Customer.objects.get(external_id="C-0001").city == "杭州"
    assert not ConsentEvent.objects.exists()


def test_a_service_agent_records_consent_but_may_not_export_or_erase(
    small_shop: SmallShop,
) -> None:
    # given
    client = role_client(StaffRoleChoices.SERVICE_AGENT)
    # when
    page = client.get("/customers/C-0001/").content.decode()
    consent = client.post(
        "/customers/C-0001/consents/",
        {"key": "marketing:sms", "decision": "grant", "wording_version": "v1"},
    )
    export = client.post("/customers/C-0001/export/")
    erasure = client.post("/customers/C-0001/erasure/", {"reason": "ticket 7", "confirm": "C-0001"})
    # then
    assert 'data-form="consent"' in page
    assert 'data-form="export"' not in page
    assert 'data-form="erasure"' not in page
    assert consent.status_code == 302
    assert ConsentEvent.objects.count() == 1
    assert (export.status_code, erasure.status_code) == (403, 403)
    assert Customer.objects.get(pk=small_shop.li_na.pk).name == "李娜"


def test_an_admin_downloads_the_customers_data(small_shop: SmallShop) -> None:
    # when
    response = role_client(StaffRoleChoices.ADMIN).post("/customers/C-0001/export/")
    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        data = json.loads(archive.read("customer.json"))
    assert data["sections"]["profile"][0]["email"] == "li.na@example.cn"
    request = PrivacyRequest.objects.get()
    assert (request.kind, request.status) == ("access", "done")
    assert AuditEvent.objects.filter(action="export").count() == 1


def test_a_get_does_not_export(small_shop: SmallShop) -> None:
    # when
    response = role_client(StaffRoleChoices.ADMIN).get("/customers/C-0001/export/")
    # then
    assert response.status_code == 405
    assert not PrivacyRequest.objects.exists()


def test_erasure_needs_the_customer_id_typed_again(small_shop: SmallShop) -> None:
    # when
    response = role_client(StaffRoleChoices.ADMIN).post(
        "/customers/C-0001/erasure/", {"reason": "ticket 7", "confirm": "C-0002"}, follow=True
    )
    # then
    assert "Nothing erased" in response.content.decode()
    assert Customer.objects.get(pk=small_shop.li_na.pk).name == "李娜"
    assert not PrivacyRequest.objects.exists()


def test_an_admin_erases_a_customer_and_lands_on_the_pseudonymous_record(
    small_shop: SmallShop,
) -> None:
    # when
    response = role_client(StaffRoleChoices.ADMIN).post(
        "/customers/C-0001/erasure/", {"reason": "ticket 7", "confirm": "C-0001"}, follow=True
    )
    # then
    customer = Customer.objects.get(pk=small_shop.li_na.pk)
    assert customer.external_id.startswith("erased-")
    assert (customer.name, customer.email, customer.phone) == ("", "", "")
    assert response.redirect_chain == [(f"/customers/{customer.external_id}/#requests", 302)]
    html = response.content.decode()
    assert "Personal data erased" in html
    assert 'data-note="erased"' in html
    assert 'data-form="correction"' not in html
    assert 'data-form="erasure"' not in html
    assert "李娜" not in html
    assert "li.na@example.cn" not in html
    assert 'data-kind="erasure" data-status="done"' in html


def test_the_register_lists_open_requests_overdue_first_and_closes_them(
    small_shop: SmallShop,
) -> None:
    # given
    client = role_client(StaffRoleChoices.ADMIN)
    late = open_request(
        small_shop.zhang_wei, "access", received_at=timezone.now() - dt.timedelta(days=40)
    )
    # when: a request received by post yesterday is logged
    logged = client.post(
        "/privacy/requests/",
        {
            "customer": "C-0001",
            "kind": "erasure",
            "received_on": (timezone.localdate() - dt.timedelta(days=1)).isoformat(),
            "notes": "letter ref 2026-118",
        },
        follow=True,
    )
    # then
    html = logged.content.decode()
    assert "logged; due" in html
    new = PrivacyRequest.objects.get(customer=small_shop.li_na)
    assert (new.kind, new.status, new.notes) == ("erasure", "received", "letter ref 2026-118")
    assert html.index(f'data-request="{late.pk}" data-overdue="true"') < html.index(
        f'data-request="{new.pk}" data-overdue="false"'
    )
    # when: the late one is answered
    closed = client.post(
        f"/privacy/requests/{late.pk}/status/", {"status": "done"}, follow=True
    ).content.decode()
    # then
    late.refresh_from_db()
    assert late.status == "done"
    assert late.completed_at is not None
    assert f'data-request="{late.pk}" data-status="done"' in closed
    # and a closed request stays closed
    again = client.post(
        f"/privacy/requests/{late.pk}/status/", {"status": "in_progress"}, follow=True
    )
    assert "Status not changed" in again.content.decode()
    late.refresh_from_db()
    assert late.status == "done"


def test_logging_a_request_for_an_unknown_customer_names_the_id(small_shop: SmallShop) -> None:
    # when
    response = role_client(StaffRoleChoices.ADMIN).post(
        "/privacy/requests/", {"customer": "C-9999", "kind": "access"}
    )
    # then
    assert response.status_code == 200
    assert "no customer with external id &#x27;C-9999&#x27;" in response.content.decode()
    assert not PrivacyRequest.objects.exists()


def test_notes_holding_the_customers_own_values_are_refused(small_shop: SmallShop) -> None:
    # when
    response = role_client(StaffRoleChoices.ADMIN).post(
        "/privacy/requests/", {"customer": "C-0001", "kind": "access", "notes": "from 李娜"}
    )
    # then
    assert response.status_code == 200
    assert 'data-error-for="notes"' in response.content.decode()
    assert not PrivacyRequest.objects.exists()


@pytest.mark.parametrize(
    "role", [StaffRoleChoices.SERVICE_AGENT, StaffRoleChoices.MARKETER, StaffRoleChoices.ANALYST]
)
def test_only_admins_open_the_register(small_shop: SmallShop, role: str) -> None:
    # when
    client = role_client(role)
    # then
    assert client.get("/privacy/requests/").status_code == 403
    assert (
        client.post("/privacy/requests/", {"customer": "C-0001", "kind": "access"}).status_code
        == 403
    )
    assert not PrivacyRequest.objects.exists()
