"""The append-only audit log: record(), what it refuses, and what is recorded by itself
(logins, failed logins, role and permission changes, manual points adjustments)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import DatabaseError, connection, transaction
from django.test import Client, RequestFactory

from patron.customers.models import Customer
from patron.loyalty.care import PROGRAMME_ACTOR
from patron.loyalty.ledger import AUTOMATIC_ACTORS, adjust_points
from patron.loyalty.members import enrol_member
from patron.privacy.audit import (
    AuditActor,
    AuditDetailsError,
    audit_events,
    record,
    request_actor,
    serving,
)
from patron.privacy.models import AppendOnlyError, AuditEvent

T0 = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)
PASSWORD = "correct horse battery staple"


@pytest.fixture
def customer(db: None) -> Customer:
    return Customer.objects.create(external_id="C-42")


def test_record_keeps_the_actor_the_customer_by_id_and_copy_and_the_details(
    customer: Customer,
) -> None:
    # when
    event = record(
        "pii_read",
        actor=AuditActor(user_id=3, label="agent-li", address="192.0.2.7"),
        customer=customer,
        details={"fields": ["phone", "email"], "reason": "ticket 81"},
        occurred_at=T0,
    )
    # then
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.action, stored.actor_user_id, stored.actor_label, stored.actor_address) == (
        "pii_read",
        3,
        "agent-li",
        "192.0.2.7",
    )
    assert (stored.customer_pk, stored.customer_external_id, stored.occurred_at) == (
        customer.pk,
        "C-42",
        T0,
    )
    assert stored.details == {"fields": ["phone", "email"], "reason": "ticket 81"}


@pytest.mark.parametrize(
    "details",
    [
        {"phone": "+8613812345678"},
        {"before": {"Email": "li@example.cn"}},
        {"rows": [{"name": "张伟"}]},
        {"when": dt.date(2025, 1, 1)},
    ],
)
def test_details_with_personal_data_or_non_json_values_are_refused(
    customer: Customer, details: dict
) -> None:
    # when
    with pytest.raises(AuditDetailsError):
        record("export", customer=customer, details=details)
    # then
    assert AuditEvent.objects.count() == 0


def test_an_unknown_action_is_refused(db: None) -> None:
    with pytest.raises(ValueError, match="unknown audit action 'peek'"):
        record("peek")


def test_audit_events_cannot_be_changed_or_deleted_through_the_orm(customer: Customer) -> None:
    # given
    event = record("erasure", customer=customer, details={"request": 9})
    # when / then
    event.actor_label = "someone else"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(actor_label="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_update([event], ["actor_label"])
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.actor_label, stored.details) == ("", {"request": 9})


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE privacy_auditevent SET actor_label = 'forged'",
        "DELETE FROM privacy_auditevent",
    ],
)
def test_postgresql_refuses_update_and_delete_of_audit_events_in_sql(
    customer: Customer, statement: str
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger exists on PostgreSQL only")
    # given
    record("login", actor=AuditActor(label="mei"))
    # when
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    # then
    assert list(AuditEvent.objects.values_list("actor_label", flat=True)) == ["mei"]


def test_a_login_and_a_failed_login_are_recorded_without_the_password(db: None) -> None:
    # given
    User.objects.create_user("mei", password=PASSWORD, is_staff=True)
    client = Client(REMOTE_ADDR="198.51.100.4")
    # when
    client.post("/login/", {"username": "mei", "password": "wrong password"})
    client.post("/login/", {"username": "mei", "password": PASSWORD})
    # then
    failed, login = AuditEvent.objects.filter(action__startswith="login").order_by("pk")
    assert (failed.action, failed.actor_label, failed.actor_address) == (
        "login_failed",
        "mei",
        "198.51.100.4",
    )
    assert failed.details == {"username_tried": "mei"}
    assert (login.action, login.actor_label, login.actor_address) == (
        "login",
        "mei",
        "198.51.100.4",
    )
    assert login.actor_user_id == User.objects.get(username="mei").pk
    assert "wrong password" not in str(failed.details)


def test_role_changes_are_recorded_with_who_made_them(db: None) -> None:
    # given an administrator's request being served
    admin = User.objects.create_user("boss", is_staff=True, is_superuser=True)
    agent = User.objects.create_user("li", is_staff=True)
    request = RequestFactory().post("/admin/", REMOTE_ADDR="203.0.113.9")
    request.user = admin
    # when
    with serving(request):
        agent.groups.add(Group.objects.get(name="service_agent"))
        agent.groups.remove(Group.objects.get(name="service_agent"))
    Group.objects.get(name="analyst").user_set.add(agent)
    # then
    events = list(AuditEvent.objects.filter(action="role_change").order_by("pk"))
    assert [event.details for event in events] == [
        {"user_id": agent.pk, "username": "li", "change": "added", "groups": ["service_agent"]},
        {"user_id": agent.pk, "username": "li", "change": "removed", "groups": ["service_agent"]},
        {"user_id": agent.pk, "username": "li", "change": "added", "groups": ["analyst"]},
    ]
    assert [(e.actor_label, e.actor_address) for e in events] == [
        ("boss", "203.0.113.9"),
        ("boss", "203.0.113.9"),
        ("", None),
    ]


def test_permission_changes_are_recorded(db: None) -> None:
    # given
    user = User.objects.create_user("li", is_staff=True)
    permission = Permission.objects.get(codename="view_customer")
    # when
    user.user_permissions.add(permission)
    Group.objects.get(name="marketer").permissions.remove(permission)
    user.user_permissions.clear()
    # then
    events = list(
        AuditEvent.objects.filter(action="permission_change")
        .exclude(details__change="created")
        .order_by("pk")
    )
    assert events[0].details == {
        "user_id": user.pk,
        "username": "li",
        "change": "added",
        "permission_ids": [permission.pk],
    }
    assert events[1].details == {
        "group": "marketer",
        "change": "removed",
        "permission_ids": [permission.pk],
    }
    assert events[2].details == {
        "user_id": user.pk,
        "username": "li",
        "change": "cleared",
        "permission_ids": [permission.pk],
    }
    assert len(events) == 3


def test_a_manual_points_adjustment_is_audited_and_a_programme_grant_is_not(
    customer: Customer,
) -> None:
    # given
    member = enrol_member(customer, as_of=T0)
    # when
    entry = adjust_points(member, 120, reason="goodwill", actor="staff mei", as_of=T0)
    adjust_points(member, 30, reason="birthday", actor=PROGRAMME_ACTOR, as_of=T0)
    # a replay of the same adjustment is not audited twice
    adjust_points(member, 5, reason="typo", actor="staff mei", idempotency_key="adj-1", as_of=T0)
    adjust_points(member, 5, reason="typo", actor="staff mei", idempotency_key="adj-1", as_of=T0)
    # then
    events = list(AuditEvent.objects.filter(action="points_adjustment").order_by("pk"))
    assert len(events) == 2
    assert (events[0].customer_external_id, events[0].details) == (
        "C-42",
        {"points": 120, "transaction_id": entry.pk, "actor": "staff mei"},
    )
    assert PROGRAMME_ACTOR in AUTOMATIC_ACTORS


def test_request_actor_names_the_token_prefix_and_its_user(db: None) -> None:
    # given
    user = User.objects.create_user("shop-sync")
    request = RequestFactory().get(
        "/api/v1/x", HTTP_AUTHORIZATION="Bearer ptn_AbCdEfGhIjKl", REMOTE_ADDR="192.0.2.1"
    )
    request.auth = user  # type: ignore[attr-defined]
    # when
    actor = request_actor(request)
    # then
    assert actor == AuditActor(
        user_id=user.pk,
        label="token ptn_AbCd (shop-sync)",
        address="192.0.2.1",
        token_prefix="ptn_AbCd",
    )


def test_audit_events_filter_by_action_actor_customer_and_time(customer: Customer) -> None:
    # given
    other = Customer.objects.create(external_id="C-7")
    first = record(
        "pii_read", actor=AuditActor(label="agent-li"), customer=customer, occurred_at=T0
    )
    second = record(
        "export",
        actor=AuditActor(label="boss"),
        customer=other,
        occurred_at=T0 + dt.timedelta(days=1),
    )
    third = record(
        "pii_read",
        actor=AuditActor(label="agent-wang"),
        customer=other,
        occurred_at=T0 + dt.timedelta(days=2),
    )
    # then
    assert list(audit_events()) == [third, second, first]
    assert list(audit_events(action="pii_read")) == [third, first]
    assert list(audit_events(actor="AGENT")) == [third, first]
    assert list(audit_events(customer="C-7")) == [third, second]
    assert list(
        audit_events(since=T0 + dt.timedelta(hours=1), until=T0 + dt.timedelta(days=2))
    ) == [second]


def test_creating_staff_and_changing_a_user_s_superuser_staff_or_active_flags_is_recorded(
    db: None,
) -> None:
    # given
    plain = User.objects.create_user("shop-sync")
    staff = User.objects.create_user("li", is_staff=True)
    # when
    staff.is_superuser = True
    staff.save()
    plain.is_active = False
    plain.save(update_fields=["is_active"])
    plain.last_login = T0
    plain.save(update_fields=["last_login"])  # as every login does: no flag, no event
    plain.first_name = "Sync"
    plain.save()
    # then
    events = [
        event.details
        for event in AuditEvent.objects.filter(action="permission_change").order_by("pk")
    ]
    assert events == [
        {
            "user_id": staff.pk,
            "username": "li",
            "change": "created",
            "is_superuser": False,
            "is_staff": True,
        },
        {
            "user_id": staff.pk,
            "username": "li",
            "change": "flags",
            "flags": {"is_superuser": [False, True]},
        },
        {
            "user_id": plain.pk,
            "username": "shop-sync",
            "change": "flags",
            "flags": {"is_active": [True, False]},
        },
    ]
