"""Consent per purpose and channel: defaults, decisions, history, idempotency, bulk reads."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.utils import timezone
from pytest_django.fixtures import Settings

from patron.customers.models import Customer
from patron.customers.resolution import merge_customers
from patron.privacy.audit import AuditActor
from patron.privacy.consent import (
    ConsentError,
    consent_defaults,
    consent_history,
    consent_set,
    consenting,
    current_consents,
    may,
    record_consent,
)
from patron.privacy.models import AuditEvent, ConsentEvent, ConsentState

T0 = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def customers(db: None) -> list[Customer]:
    """Four customers without any decision."""
    return [Customer.objects.create(external_id=f"C-{number}") for number in range(1, 5)]


def grant(customer: Customer, purpose: str, channel: str | None = None, **kwargs: object) -> None:
    record_consent(
        customer,
        purpose,
        channel,
        is_granted=True,
        source=str(kwargs.pop("source", "api")),
        wording_version="privacy-2025-06",
        **kwargs,  # type: ignore[arg-type]
    )


def withdraw(
    customer: Customer, purpose: str, channel: str | None = None, **kwargs: object
) -> None:
    record_consent(
        customer,
        purpose,
        channel,
        is_granted=False,
        source=str(kwargs.pop("source", "api")),
        **kwargs,  # type: ignore[arg-type]
    )


def test_marketing_defaults_to_no_consent_and_the_other_purposes_to_granted(
    customers: list[Customer],
) -> None:
    # given a customer who decided nothing
    customer = customers[0]
    # then
    assert [may(customer, "marketing", channel) for channel in ("email", "sms", "wechat")] == [
        False,
        False,
        False,
    ]
    assert may(customer, "personalisation") is True
    assert may(customer, "analytics") is True
    assert all(status.is_default for status in current_consents(customer))


def test_a_grant_then_a_withdrawal_change_the_answer_and_both_stay_in_the_history(
    customers: list[Customer],
) -> None:
    # given
    customer = customers[0]
    # when
    grant(customer, "marketing", "sms", occurred_at=T0)
    granted_then = may(customer, "marketing", "sms")
    withdraw(customer, "marketing", "sms", occurred_at=T0 + dt.timedelta(days=3))
    # then
    assert granted_then is True
    assert may(customer, "marketing", "sms") is False
    assert may(customer, "marketing", "email") is False  # never asked on e-mail
    history = list(consent_history(customer))
    assert [(e.purpose, e.channel, e.is_granted) for e in history] == [
        ("marketing", "sms", False),
        ("marketing", "sms", True),
    ]
    assert history[1].wording_version == "privacy-2025-06"
    state = ConsentState.objects.get(customer=customer)
    assert (state.is_granted, state.decided_at, state.event_id) == (
        False,
        T0 + dt.timedelta(days=3),
        history[0].pk,
    )


def test_may_at_a_past_moment_answers_with_the_decision_then(customers: list[Customer]) -> None:
    # given a grant on day 0 and a withdrawal on day 10
    customer = customers[0]
    grant(customer, "marketing", "wechat", occurred_at=T0)
    withdraw(customer, "marketing", "wechat", occurred_at=T0 + dt.timedelta(days=10))
    # then
    assert may(customer, "marketing", "wechat", at=T0 - dt.timedelta(seconds=1)) is False
    assert may(customer, "marketing", "wechat", at=T0 + dt.timedelta(days=5)) is True
    assert may(customer, "marketing", "wechat", at=T0 + dt.timedelta(days=10)) is False


@pytest.mark.parametrize(
    ("purpose", "channel", "field", "words"),
    [
        ("newsletter", None, "purpose", "unknown purpose 'newsletter'"),
        ("marketing", None, "channel", "given per channel"),
        ("marketing", "fax", "channel", "unknown channel 'fax'"),
        ("analytics", "email", "channel", "not given per channel"),
    ],
)
def test_an_unknown_or_mismatched_purpose_and_channel_is_refused_by_name(
    customers: list[Customer], purpose: str, channel: str | None, field: str, words: str
) -> None:
    # when
    with pytest.raises(ConsentError) as refused:
        grant(customers[0], purpose, channel)
    with pytest.raises(ConsentError):
        may(customers[0], purpose, channel)
    # then
    assert refused.value.field == field
    assert words in refused.value.message
    assert ConsentEvent.objects.count() == 0


def test_a_grant_without_the_wording_version_is_refused_and_leaves_nothing(
    customers: list[Customer],
) -> None:
    # when
    with pytest.raises(ConsentError) as refused:
        record_consent(customers[0], "personalisation", is_granted=True, source="checkout")
    # then
    assert refused.value.field == "wording_version"
    assert (ConsentEvent.objects.count(), ConsentState.objects.count()) == (0, 0)
    assert AuditEvent.objects.count() == 0


def test_a_redelivered_decision_is_recorded_once(customers: list[Customer]) -> None:
    # given
    customer = customers[0]
    first, created = record_consent(
        customer,
        "marketing",
        "email",
        is_granted=True,
        source="checkout",
        source_event_id="chk-77",
        wording_version="v3",
    )
    # when the same decision arrives again
    again, created_again = record_consent(
        customer,
        "marketing",
        "email",
        is_granted=True,
        source="checkout",
        source_event_id="chk-77",
        wording_version="v3",
    )
    # then
    assert (created, created_again, again.pk) == (True, False, first.pk)
    assert ConsentEvent.objects.count() == 1
    assert AuditEvent.objects.filter(action="consent_change").count() == 1


def test_the_same_source_id_with_another_decision_is_refused(customers: list[Customer]) -> None:
    # given
    grant(customers[0], "marketing", "email", source="checkout", source_event_id="chk-1")
    # when
    with pytest.raises(ConsentError) as refused:
        withdraw(customers[0], "marketing", "email", source="checkout", source_event_id="chk-1")
    # then
    assert refused.value.field == "source_event_id"
    assert ConsentEvent.objects.count() == 1
    assert may(customers[0], "marketing", "email") is True


def test_a_late_older_decision_joins_the_history_without_changing_the_state(
    customers: list[Customer],
) -> None:
    # given a withdrawal on day 5
    customer = customers[0]
    withdraw(customer, "personalisation", occurred_at=T0 + dt.timedelta(days=5))
    # when a grant decided on day 1 arrives late
    grant(customer, "personalisation", occurred_at=T0 + dt.timedelta(days=1))
    # then
    assert may(customer, "personalisation") is False
    assert consent_history(customer).count() == 2


def test_naive_and_future_times_are_refused(customers: list[Customer]) -> None:
    # when
    with pytest.raises(ConsentError) as naive:
        withdraw(customers[0], "analytics", occurred_at=dt.datetime(2025, 6, 1))
    with pytest.raises(ConsentError) as future:
        withdraw(customers[0], "analytics", occurred_at=timezone.now() + dt.timedelta(days=1))
    # then
    assert (naive.value.field, future.value.field) == ("occurred_at", "occurred_at")


def test_bulk_answers_agree_with_may_for_every_customer(customers: list[Customer]) -> None:
    # given: 1 grants marketing e-mail, 2 grants then withdraws, 3 withdraws personalisation
    one, two, three, four = customers
    grant(one, "marketing", "email", occurred_at=T0)
    grant(two, "marketing", "email", occurred_at=T0)
    withdraw(two, "marketing", "email", occurred_at=T0 + dt.timedelta(hours=1))
    withdraw(three, "personalisation", occurred_at=T0)
    everyone = Customer.objects.order_by("pk")
    # when
    marketing = consent_set("marketing", "email")
    profiling = consent_set("personalisation")
    # then
    assert [c.pk for c in consenting(everyone, "marketing", "email")] == [one.pk]
    assert marketing.allowed([c.pk for c in customers]) == {one.pk}
    assert [c.pk for c in consenting(everyone, "personalisation")] == [one.pk, two.pk, four.pk]
    assert (three.pk in profiling, four.pk in profiling) == (False, True)
    for customer in customers:
        assert (customer.pk in marketing) == may(customer, "marketing", "email")
        assert (customer.pk in profiling) == may(customer, "personalisation")
    # and at a past moment: two still consented half an hour after granting
    half_hour = T0 + dt.timedelta(minutes=30)
    assert [c.pk for c in consenting(everyone, "marketing", "email", at=half_hour)] == [
        one.pk,
        two.pk,
    ]


def test_personalisation_can_default_to_withdrawn(
    customers: list[Customer], settings: Settings
) -> None:
    # given explicit consent required for personalisation
    settings.CONSENT_DEFAULTS = "personalisation=withdrawn,analytics=granted"
    grant(customers[1], "personalisation")
    # then
    assert consent_defaults() == {
        "marketing": False,
        "personalisation": False,
        "analytics": True,
    }
    assert [may(customer, "personalisation") for customer in customers] == [
        False,
        True,
        False,
        False,
    ]
    assert set(consent_set("personalisation").allowed(c.pk for c in customers)) == {customers[1].pk}
    assert list(consenting(Customer.objects.all(), "personalisation")) == [customers[1]]


@pytest.mark.parametrize(
    "configured",
    ["marketing=granted", "profiling=granted", "personalisation=yes"],
)
def test_a_wrong_consent_default_is_a_configuration_error(
    settings: Settings, configured: str
) -> None:
    # given
    settings.CONSENT_DEFAULTS = configured
    # then
    with pytest.raises(ImproperlyConfigured, match="PATRON_CONSENT_DEFAULTS"):
        consent_defaults()


def test_each_decision_is_audited_with_who_recorded_it(customers: list[Customer]) -> None:
    # given
    mei = User.objects.create_user("mei", is_staff=True)
    # when
    record_consent(
        customers[0],
        "marketing",
        "app_push",
        is_granted=True,
        source="dashboard",
        wording_version="v1",
        actor=AuditActor(user_id=mei.pk, label="mei", address="10.0.0.8"),
    )
    # then
    event = AuditEvent.objects.get(action="consent_change")
    consent = ConsentEvent.objects.get()
    assert (event.action, event.actor_label, event.actor_address) == (
        "consent_change",
        "mei",
        "10.0.0.8",
    )
    assert (event.customer_pk, event.customer_external_id) == (customers[0].pk, "C-1")
    assert consent.actor_user == mei
    assert event.details == {
        "purpose": "marketing",
        "channel": "app_push",
        "granted": True,
        "source": "dashboard",
        "wording_version": "v1",
        "consent_event_id": consent.pk,
    }


def test_a_merge_keeps_both_histories_and_the_latest_decision_wins(
    customers: list[Customer],
) -> None:
    # given the same person twice: the survivor withdrew marketing SMS on day 1, the
    # duplicate granted it on day 2 and withdrew analytics on day 0
    survivor, duplicate = customers[0], customers[1]
    withdraw(survivor, "marketing", "sms", occurred_at=T0 + dt.timedelta(days=1))
    grant(duplicate, "marketing", "sms", occurred_at=T0 + dt.timedelta(days=2))
    withdraw(duplicate, "analytics", occurred_at=T0)
    # when
    merge_customers(survivor, duplicate, reason="same phone")
    # then
    assert consent_history(survivor).count() == 3
    assert may(survivor, "marketing", "sms") is True
    assert may(survivor, "analytics") is False
    assert ConsentState.objects.filter(customer_id=duplicate.pk).count() == 0


def test_the_database_refuses_a_marketing_decision_without_a_channel(
    customers: list[Customer],
) -> None:
    # when written around the checks of record_consent
    with pytest.raises(IntegrityError), transaction.atomic():
        ConsentEvent.objects.create(
            customer=customers[0],
            purpose="marketing",
            channel="",
            is_granted=True,
            occurred_at=T0,
            source="api",
        )
    # then
    assert ConsentEvent.objects.count() == 0


def test_a_recorded_decision_cannot_be_rewritten(customers: list[Customer]) -> None:
    # given
    grant(customers[0], "analytics")
    event = ConsentEvent.objects.get()
    # when
    event.is_granted = False
    with pytest.raises(RuntimeError, match="append-only"):
        event.save()
    # then
    event.refresh_from_db()
    assert event.is_granted is True
