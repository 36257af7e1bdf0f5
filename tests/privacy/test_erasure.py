"""Erasure: after erasing 100 customers of a shop, none of their personal data is left in any
table, the logs or an export, and the shop's figures have not moved."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import threading
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Sum

from patron.api.models import IdempotentRequest
from patron.customers.identity import normalize_phone
from patron.customers.models import Customer, CustomerIdentity, CustomerMerge
from patron.customers.resolution import merge_customers, sync_identities
from patron.loyalty.ledger import adjust_points
from patron.loyalty.members import enrol_member
from patron.loyalty.models import PointBalance, Posting
from patron.orders.models import Event, Order
from patron.privacy.choices import AuditActionChoices, PrivacyRequestStatusChoices
from patron.privacy.consent import record_consent
from patron.privacy.erasure import is_pseudonym
from patron.privacy.export import export_customer
from patron.privacy.models import AuditEvent, ErasedIdentifier, PrivacyRequest
from patron.privacy.requests import (
    PrivacyRequestError,
    erase_customer,
    find_subject,
    run_retention,
)
from tests.loyalty.test_concurrency_points import (
    run_in_thread,
    sqlite_file_copy_of_the_test_database,
)

SHOP_SIZE = 120
ERASED = 100
UTC = dt.UTC


def _build_customer(number: int) -> Customer:
    customer = Customer.objects.create(
        external_id=f"SHOP-{number:05d}",
        name=f"测试顾客{number:03d}号",
        email=f"erase.me.{number}@example.cn",
        phone=f"139{number:08d}",
        address=f"杭州市西湖区文三路{number}号",
        birthday=dt.date(1950 + number % 40, 1 + number % 12, 1 + number % 28),
        province="浙江",
        city="杭州",
        tags=["vip"],
    )
    customer = sync_identities(customer)
    customer.identities.create(kind="device", value=f"device-{number:05d}-abc")
    for index in range(2):
        Order.objects.create(
            external_id=f"O-{number}-{index}",
            customer=customer,
            ordered_at=dt.datetime(2024, 3, 1 + index, tzinfo=UTC),
            status="paid",
            subtotal_amount=Decimal("100.00") + number,
            total_amount=Decimal("100.00") + number,
        )
    Event.objects.create(
        external_id=f"E-{number}",
        customer=customer,
        device_id=f"device-{number:05d}-abc",
        event_type="search",
        occurred_at=dt.datetime(2024, 3, 1, tzinfo=UTC),
        properties={"query": customer.name, "contact": customer.email},
    )
    record_consent(
        customer,
        "marketing",
        "sms",
        is_granted=True,
        source="checkout",
        source_event_id=f"consent-SHOP-{number:05d}",
        wording_version="v1",
    )
    member = enrol_member(customer)
    adjust_points(member, 100 + number, reason="welcome", actor="user:test")
    return customer


def _personal_values(customer: Customer) -> list[str]:
    """Every form the customer's personal data takes: plaintext, normalised, blind index."""
    values = [
        customer.external_id,
        customer.name,
        customer.email,
        customer.phone,
        normalize_phone(customer.phone),
        customer.address,
        customer.birthday.isoformat() if customer.birthday else "",
        customer.name_index,
        customer.email_index,
        customer.phone_index,
        f"device-{customer.external_id[5:]}-abc",
    ]
    values += list(
        CustomerIdentity.objects.filter(customer=customer).values_list("value", flat=True)
    )
    forms: set[str] = set()
    for value in values:
        if value:
            forms.add(value)
            forms.add(json.dumps(value)[1:-1])  # as JSON stores it, Chinese \u-escaped
    return sorted(forms)


def _every_stored_text() -> list[tuple[str, str]]:
    """(table, text) of every value of every column of every table, found by introspection."""
    found: list[tuple[str, str]] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if value is None:
                        continue
                    if isinstance(value, bytes | memoryview):
                        text = bytes(value).decode("utf-8", errors="replace")
                    elif isinstance(value, dict | list):
                        text = json.dumps(value, ensure_ascii=False)
                    else:
                        text = str(value)
                    found.append((table, text))
    return found


def _shop_figures() -> dict[str, Any]:
    orders = Order.objects.aggregate(revenue=Sum("total_amount"), orders=Count("pk"))
    postings = dict(
        Posting.objects.values_list("account").annotate(total=Sum("points")).order_by("account")
    )
    balances = sorted(
        PointBalance.objects.values_list(
            "member_id", "available", "pending", "redeemed", "expired", "lifetime_earned"
        )
    )
    return {"orders": orders, "postings": postings, "balances": balances}


@pytest.fixture
def shop(db: None) -> list[Customer]:
    """120 customers with identities, orders, events, consents, points; ten of the first 100
    absorbed a duplicate record (a merge snapshot), and the API kept an answer naming one."""
    customers = [_build_customer(number) for number in range(SHOP_SIZE)]
    for number in range(10):
        duplicate = Customer.objects.create(
            external_id=f"DUP-{number:05d}",
            name=customers[number].name,
            email=customers[number].email,
        )
        merge_customers(customers[number], duplicate, reason="same e-mail")
    IdempotentRequest.objects.create(
        scope="token:x",
        key="k-1",
        method="POST",
        path="/api/v1/ingest/customers",
        body_sha256="0" * 64,
        status=200,
        response_body=json.dumps({"customer": customers[3].email}).encode(),
        content_type="application/json",
    )
    return [Customer.objects.get(pk=customer.pk) for customer in customers]


def test_erasing_100_customers_leaves_no_trace_and_keeps_the_figures(
    shop: list[Customer], caplog: pytest.LogCaptureFixture
) -> None:
    # given: the shop's figures and every form of the first 100 customers' personal data
    before = _shop_figures()
    doomed, kept = shop[:ERASED], shop[ERASED:]
    needles = {value for customer in doomed for value in _personal_values(customer)}
    needles |= {f"DUP-{number:05d}" for number in range(10)}
    kept_values = _personal_values(kept[0])
    shop_ids = {customer.external_id for customer in doomed}
    assert CustomerMerge.objects.count() == 10

    # when: each is erased, with every log message captured
    caplog.set_level(logging.DEBUG)
    outcomes = [erase_customer(customer, reason="asked by e-mail") for customer in doomed]

    # then: no table holds any of their values, in any column; the append-only audit log keeps
    # the shop's ids of earlier events (consents, points) by design, and nothing else
    leaks = [
        (table, needle)
        for table, text in _every_stored_text()
        for needle in needles
        if needle in text
    ]
    assert [leak for leak in leaks if leak[0] != "privacy_auditevent"] == []
    assert {needle for table, needle in leaks if table == "privacy_auditevent"} <= shop_ids
    # nor does the log, nor an export of them
    assert not [needle for needle in needles if needle in caplog.text]
    for outcome in outcomes[:10]:
        archive = export_customer(outcome.customer)
        with zipfile.ZipFile(io.BytesIO(archive)) as opened:
            content = "".join(opened.read(name).decode("utf-8") for name in opened.namelist())
        assert not [needle for needle in needles if needle in content]
    # the figures are unchanged, the customers kept as pseudonyms with their orders
    assert _shop_figures() == before
    assert all(is_pseudonym(outcome.customer.external_id) for outcome in outcomes)
    assert Order.objects.filter(customer__in=[o.customer for o in outcomes]).count() == 200
    # the others are untouched
    untouched = Customer.objects.get(pk=kept[0].pk)
    assert (untouched.name, untouched.email) == (kept[0].name, kept[0].email)
    assert any(value in text for _, text in _every_stored_text() for value in kept_values)
    # each erasure is a done request and an audit event naming only the pseudonym
    assert (
        PrivacyRequest.objects.filter(
            kind="erasure", status=PrivacyRequestStatusChoices.DONE
        ).count()
        == ERASED
    )
    events = AuditEvent.objects.filter(action=AuditActionChoices.ERASURE)
    assert events.count() == ERASED
    assert all(is_pseudonym(event.customer_external_id) for event in events)


def test_erasure_is_idempotent_and_recognises_the_old_id(shop: list[Customer]) -> None:
    # given: an erased customer
    first = erase_customer(shop[0], reason="asked in the app")
    pseudonym = first.customer.external_id

    # when: the erasure is asked again, by the pseudonym and by the shop's old id
    again = erase_customer(find_subject(pseudonym), reason="asked again")
    by_old_id = erase_customer(find_subject("SHOP-00000"), reason="asked again")

    # then: nothing changes, the first request is answered
    assert (again.created, by_old_id.created) == (False, False)
    assert again.request.pk == by_old_id.request.pk == first.request.pk
    assert Customer.objects.get(pk=shop[0].pk).external_id == pseudonym
    assert PrivacyRequest.objects.filter(kind="erasure").count() == 1
    # its own id and the id of the duplicate merged into it are both known as erased
    assert ErasedIdentifier.objects.filter(customer=first.customer).count() == 2
    assert find_subject("DUP-00000").pk == first.customer.pk


def test_erasure_refuses_a_reason_naming_the_customer(shop: list[Customer]) -> None:
    # when / then: the reason would put personal data into the request record
    with pytest.raises(PrivacyRequestError, match="notes: must not hold"):
        erase_customer(shop[1], reason=f"phone {shop[1].phone} called")
    with pytest.raises(PrivacyRequestError, match="reason"):
        erase_customer(shop[1], reason="  ")
    # nothing was changed
    assert Customer.objects.get(pk=shop[1].pk).name == shop[1].name
    assert not PrivacyRequest.objects.exists()


def test_retention_anonymises_only_inactive_customers(shop: list[Customer]) -> None:
    # given: the shop's activity ended in March 2024; one customer came back in 2026
    Order.objects.create(
        external_id="O-late",
        customer=shop[5],
        ordered_at=dt.datetime(2026, 1, 1, tzinfo=UTC),
        status="paid",
        subtotal_amount=Decimal("1.00"),
        total_amount=Decimal("1.00"),
    )
    Customer.objects.filter(pk__in=[c.pk for c in shop]).update(
        created_at=dt.datetime(2024, 1, 1, tzinfo=UTC)
    )
    as_of = dt.datetime(2026, 6, 1, tzinfo=UTC)
    # when: a dry run, then the run, with one year of inactivity allowed
    dry = run_retention(365, dry_run=True, as_of=as_of)
    real = run_retention(365, batch_size=50, as_of=as_of)

    # then: every customer but the returning one is anonymised; the dry run changed nothing
    assert (dry.found, dry.erased) == (SHOP_SIZE - 1, 0)
    assert (real.found, real.erased) == (SHOP_SIZE - 1, SHOP_SIZE - 1)
    assert Customer.objects.get(pk=shop[5].pk).external_id == "SHOP-00005"
    assert Customer.objects.filter(external_id__startswith="erased-").count() == SHOP_SIZE - 1


def test_erase_command(shop: list[Customer]) -> None:
    # when: erased from the command line, twice
    out = io.StringIO()
    call_command("privacy", "erase", "SHOP-00007", "--reason", "ticket 88", stdout=out)
    call_command("privacy", "erase", "SHOP-00007", "--reason", "ticket 88", stdout=out)

    # then: erased once, the second run says so
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("erased: the customer is now erased-")
    assert lines[1].startswith("already erased")
    assert is_pseudonym(Customer.objects.get(pk=shop[7].pk).external_id)


@pytest.mark.django_db(transaction=True)
def test_erasures_at_the_same_moment_apply_once(tmp_path: Path) -> None:
    # given: one customer, and eight workers (own connections) asking to erase them at once
    workers = 8
    pk = _build_customer(1).pk

    def race() -> None:
        barrier = threading.Barrier(workers, timeout=60)
        created: list[bool] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                barrier.wait()
                customer = Customer.objects.get(pk=pk)
                created.append(erase_customer(customer, reason="asked twice").created)
            except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=work) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # then: one erasure, every other worker answered with it
        assert errors == []
        assert sorted(created) == [False] * (workers - 1) + [True]
        assert PrivacyRequest.objects.filter(kind="erasure").count() == 1
        assert ErasedIdentifier.objects.count() == 1

    # when: on PostgreSQL as it is; on SQLite on a file copy where writers queue for the lock
    if connection.vendor == "postgresql":
        race()
    else:
        with sqlite_file_copy_of_the_test_database(tmp_path):
            run_in_thread(race)
