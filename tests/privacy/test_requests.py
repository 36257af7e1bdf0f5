"""Data subject requests: due dates, statuses, the open list, corrections, unknown customers."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone
from pytest_django.fixtures import Settings

from patron.customers.models import Customer, CustomerIdentity
from patron.customers.resolution import sync_identities
from patron.privacy.choices import AuditActionChoices
from patron.privacy.models import AuditEvent, PrivacyRequest
from patron.privacy.requests import (
    CorrectionConflictError,
    PrivacyRequestError,
    UnknownCustomerError,
    correct_customer,
    due_at_for,
    find_subject,
    open_request,
    open_requests,
    set_request_status,
)

UTC = dt.UTC


@pytest.fixture
def wang(db: None) -> Customer:
    """A customer with an e-mail and a phone identity."""
    customer = Customer.objects.create(
        external_id="W-1", name="王芳", email="wang.fang@example.cn", phone="13900001111"
    )
    return sync_identities(customer)


def test_due_date_is_15_days_by_default(wang: Customer) -> None:
    # given: a request received on 1 March
    received = dt.datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

    # when: recorded
    privacy_request = open_request(wang, "access", received_at=received)

    # then: due 15 days later (PIPL practice), received and open
    assert privacy_request.due_at == dt.datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
    assert (privacy_request.status, privacy_request.completed_at) == ("received", None)


def test_due_date_follows_the_setting(wang: Customer, settings: Settings) -> None:
    # given: GDPR's month configured
    settings.DSR_DEADLINE_DAYS = 30

    # then: due 30 days after receipt
    received = dt.datetime(2026, 3, 1, tzinfo=UTC)
    assert due_at_for(received) == dt.datetime(2026, 3, 31, tzinfo=UTC)


def test_statuses_move_forward_and_a_closed_request_stays_closed(wang: Customer) -> None:
    # given: a received request
    privacy_request = open_request(wang, "correction")

    # when: worked on, then done
    set_request_status(privacy_request, "in_progress")
    assert privacy_request.completed_at is None
    set_request_status(privacy_request, "done")

    # then: it is closed with a completion time, and cannot be reopened
    privacy_request.refresh_from_db()
    assert privacy_request.status == "done"
    assert privacy_request.completed_at is not None
    with pytest.raises(PrivacyRequestError, match="is done already"):
        set_request_status(privacy_request, "in_progress")
    with pytest.raises(PrivacyRequestError, match="'lost' is not one of"):
        set_request_status(open_request(wang, "access"), "lost")


def test_the_database_refuses_a_closed_request_without_completion(wang: Customer) -> None:
    # when / then: the constraint holds even for code bypassing the functions
    with pytest.raises(IntegrityError), transaction.atomic():
        PrivacyRequest.objects.create(
            kind="access", customer=wang, status="done", due_at=timezone.now()
        )


def test_bad_kind_and_personal_notes_are_refused(wang: Customer) -> None:
    with pytest.raises(PrivacyRequestError, match="kind: 'forget' is not one of"):
        open_request(wang, "forget")
    with pytest.raises(PrivacyRequestError, match="notes: must not hold"):
        open_request(wang, "access", notes="call 王芳 back")
    assert not PrivacyRequest.objects.exists()


def test_open_requests_list_the_most_overdue_first(wang: Customer) -> None:
    # given: three requests received at different times, one of them answered
    now = timezone.now()
    recent = open_request(wang, "access", received_at=now - dt.timedelta(days=1))
    overdue = open_request(wang, "erasure", received_at=now - dt.timedelta(days=40))
    answered = open_request(wang, "export", received_at=now - dt.timedelta(days=60))
    set_request_status(answered, "done")

    # when: the open ones are listed, and printed by the command
    listed = list(open_requests())
    out = io.StringIO()
    call_command("privacy", "requests", stdout=out)

    # then: the overdue one first, the answered one absent
    assert [r.pk for r in listed] == [overdue.pk, recent.pk]
    lines = out.getvalue().splitlines()
    assert lines[0].startswith(f"#{overdue.pk} erasure received customer W-1")
    assert lines[0].endswith("OVERDUE")
    assert not lines[1].endswith("OVERDUE")
    assert lines[-1] == "2 open, 1 overdue"


def test_unknown_customer_is_named(db: None) -> None:
    with pytest.raises(UnknownCustomerError, match="no customer with external id 'X-404'"):
        find_subject("X-404")
    with pytest.raises(CommandError, match="no customer with external id 'X-404'"):
        call_command("privacy", "erase", "X-404", "--reason", "asked")


def test_retention_command_is_off_without_a_period(db: None) -> None:
    with pytest.raises(CommandError, match="retention is off"):
        call_command("privacy", "retention")


def test_correction_changes_the_profile_and_identities(wang: Customer) -> None:
    # when: the phone and the city are corrected
    customer, privacy_request, fields = correct_customer(
        wang, {"phone": "139 0000 2222", "city": "苏州"}
    )

    # then: stored normalised, the phone identity replaced, recorded without values
    customer.refresh_from_db()
    assert (customer.phone, customer.city) == ("+8613900002222", "苏州")
    phones = [i.identifier for i in CustomerIdentity.objects.filter(customer=wang, kind="phone")]
    assert phones == ["+8613900002222"]
    assert fields == ["city", "phone"]
    assert (privacy_request.kind, privacy_request.status) == ("correction", "done")
    event = AuditEvent.objects.get(action=AuditActionChoices.CORRECTION)
    assert event.details == {"request_id": privacy_request.pk, "fields": ["city", "phone"]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"email": "not-an-address"}, "email: is not a valid email"),
        ({"birthday": dt.date(2999, 1, 1)}, "birthday: cannot be in the future"),
        ({"gender": "robot"}, "gender: must be one of"),
        ({"external_id": "W-2"}, "external_id: cannot be corrected"),
        ({}, "changes: name at least one field"),
    ],
)
def test_correction_refuses_bad_input(
    wang: Customer, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(PrivacyRequestError, match=message):
        correct_customer(wang, changes)
    assert not PrivacyRequest.objects.exists()


def test_correction_refuses_another_customers_phone(wang: Customer) -> None:
    # given: another customer with a phone
    sync_identities(Customer.objects.create(external_id="L-1", phone="13700003333"))

    # when / then: taking it over is refused, nothing changes
    with pytest.raises(CorrectionConflictError, match="phone: already names another customer"):
        correct_customer(wang, {"phone": "13700003333", "city": "上海"})
    wang.refresh_from_db()
    assert (wang.phone, wang.city) == ("13900001111", "")


def test_retention_command_dry_run_then_run(wang: Customer, settings: Settings) -> None:
    # given: a customer last active (created) three years ago, retention set to two years
    Customer.objects.filter(pk=wang.pk).update(
        created_at=timezone.now() - dt.timedelta(days=3 * 365)
    )
    settings.RETENTION_DAYS = 730
    out = io.StringIO()

    # when: a dry run, then the run
    call_command("privacy", "retention", "--dry-run", stdout=out)
    after_dry_run = Customer.objects.get(pk=wang.pk).external_id
    call_command("privacy", "retention", stdout=out)

    # then: the dry run only counted; the run anonymised the customer
    first, second = out.getvalue().splitlines()
    assert first.startswith("dry run: 1 customers inactive since before ")
    assert after_dry_run == "W-1"
    assert second.startswith("1 of 1 customers inactive since before ")
    assert Customer.objects.get(pk=wang.pk).external_id.startswith("erased-")
