"""The consent panel of the customer page and the administrators' audit log page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from patron.customers.models import Customer
from patron.privacy.audit import AuditActor, record
from patron.privacy.consent import may
from patron.privacy.models import AuditEvent, ConsentEvent
from tests.web.conftest import STAFF_PASSWORD, SmallShop

T0 = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def admin_client(db: None) -> Client:
    """A client logged in as a staff member of the ``admin`` group (not a superuser)."""
    admin = User.objects.create_user("boss", password=STAFF_PASSWORD, is_staff=True)
    admin.groups.add(Group.objects.get(name="admin"))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(admin)
    return client


def test_the_customer_page_shows_the_consent_defaults_and_the_form(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    html = staff_client.get("/customers/C-0001/").content.decode()
    # then
    assert 'data-card="consent"' in html
    assert 'data-consent="marketing:sms" data-granted="false"' in html
    assert 'data-consent="personalisation" data-granted="true"' in html
    assert 'action="/customers/C-0001/consents/"' in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'data-empty="no-consent-history"' in html


def test_staff_grant_a_consent_from_the_customer_page(
    staff_client: Client, staff_user: User, small_shop: SmallShop
) -> None:
    # when
    response = staff_client.post(
        "/customers/C-0001/consents/",
        {"key": "marketing:wechat", "decision": "grant", "wording_version": "v2"},
        follow=True,
    )
    # then
    assert response.redirect_chain == [("/customers/C-0001/#consent", 302)]
    html = response.content.decode()
    assert "Consent granted: Marketing · WeChat" in html
    assert 'data-consent="marketing:wechat" data-granted="true"' in html
    event = ConsentEvent.objects.get()
    assert (event.source, event.actor_user, event.wording_version) == (
        "dashboard",
        staff_user,
        "v2",
    )
    assert may(small_shop.li_na, "marketing", "wechat") is True
    assert AuditEvent.objects.get(action="consent_change").actor_label == "mei"


def test_a_withdrawal_needs_no_wording_and_shows_in_the_history(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    response = staff_client.post(
        "/customers/C-0001/consents/",
        {"key": "personalisation", "decision": "withdraw"},
        follow=True,
    )
    # then
    html = response.content.decode()
    assert "Consent withdrawn: Personalisation and profiling" in html
    assert 'data-table="consent-history"' in html
    assert may(small_shop.li_na, "personalisation") is False


def test_a_grant_without_wording_is_refused_with_a_message(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    response = staff_client.post(
        "/customers/C-0001/consents/",
        {"key": "marketing:sms", "decision": "grant"},
        follow=True,
    )
    # then
    assert "Consent not recorded: a grant needs the version" in response.content.decode()
    assert ConsentEvent.objects.count() == 0


def test_an_unknown_key_is_refused_with_a_message(
    staff_client: Client, small_shop: SmallShop
) -> None:
    response = staff_client.post(
        "/customers/C-0001/consents/", {"key": "marketing:fax", "decision": "grant"}, follow=True
    )
    assert "Consent not recorded: Purpose and channel:" in response.content.decode()
    assert ConsentEvent.objects.count() == 0


def test_the_consent_form_needs_a_post_with_a_csrf_token(
    staff_user: User, small_shop: SmallShop
) -> None:
    # given
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    # when
    read = client.get("/customers/C-0001/consents/")
    forged = client.post(
        "/customers/C-0001/consents/", {"key": "personalisation", "decision": "withdraw"}
    )
    # then
    assert (read.status_code, forged.status_code) == (405, 403)
    assert ConsentEvent.objects.count() == 0


def test_an_unknown_customer_is_404(staff_client: Client, db: None) -> None:
    response = staff_client.post(
        "/customers/nobody/consents/", {"key": "personalisation", "decision": "withdraw"}
    )
    assert response.status_code == 404


def test_the_customer_page_in_chinese_translates_the_consent_panel(
    staff_client: Client, small_shop: SmallShop
) -> None:
    html = staff_client.get("/customers/C-0001/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "同意" in html
    assert "营销 · 短信" in html


def _analyst_client() -> Client:
    """A client signed in as a staff member in the analyst role (not an administrator)."""
    analyst = User.objects.create_user("ana", password="x", is_staff=True)
    analyst.groups.add(Group.objects.get(name="analyst"))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(analyst)
    return client


def test_only_administrators_read_the_audit_log(client: Client, admin_client: Client) -> None:
    # given
    staff_client = _analyst_client()
    # when
    anonymous = client.get("/privacy/audit/")
    staff = staff_client.get("/privacy/audit/")
    admin = admin_client.get("/privacy/audit/")
    # then
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")
    assert staff.status_code == 403
    assert admin.status_code == 200


def test_the_audit_link_is_in_the_navigation_of_administrators_only(
    db: None, admin_client: Client
) -> None:
    staff_client = _analyst_client()
    assert 'href="/privacy/audit/"' not in staff_client.get("/customers/").content.decode()
    assert 'href="/privacy/audit/"' in admin_client.get("/customers/").content.decode()


def test_the_audit_log_filters_by_action_actor_customer_and_day(
    admin_client: Client, db: None
) -> None:
    # given
    Customer.objects.create(external_id="C-9")
    customer = Customer.objects.get(external_id="C-9")
    record("pii_read", actor=AuditActor(label="agent-li"), customer=customer, occurred_at=T0)
    record(
        "export",
        actor=AuditActor(label="agent-wang"),
        customer=customer,
        occurred_at=T0 + dt.timedelta(days=2),
    )
    # when
    by_action = admin_client.get("/privacy/audit/", {"action": "export"}).content.decode()
    by_actor = admin_client.get("/privacy/audit/", {"actor": "li"}).content.decode()
    by_customer = admin_client.get("/privacy/audit/", {"customer": "C-9"}).content.decode()
    by_day = admin_client.get(
        "/privacy/audit/", {"date_from": "2025-06-01", "date_to": "2025-06-01"}
    ).content.decode()
    # then (the admin's own login is not in the log: force_login sends no signal)
    assert by_action.count('data-action="export"') == 1
    assert 'data-action="pii_read"' not in by_action
    assert by_actor.count("<tr data-action=") == 1
    assert "agent-li" in by_actor
    assert by_customer.count("<tr data-action=") == 2
    assert by_day.count("<tr data-action=") == 1
    assert 'data-action="pii_read"' in by_day


def test_the_audit_log_is_paged_keeping_the_filters(admin_client: Client, db: None) -> None:
    # given 51 failed logins
    for number in range(51):
        record("login_failed", actor=AuditActor(label=f"guess{number}"))
    # when
    first = admin_client.get("/privacy/audit/", {"action": "login_failed"}).content.decode()
    second = admin_client.get(
        "/privacy/audit/", {"action": "login_failed", "page": 2}
    ).content.decode()
    # then
    assert first.count("<tr data-action=") == 50
    assert "action=login_failed&amp;page=2" in first
    assert second.count("<tr data-action=") == 1
