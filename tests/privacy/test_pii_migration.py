"""The migration that encrypts the personal data earlier versions stored in plain text."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from patron.customers.models import Customer, CustomerIdentity, CustomerMerge
from patron.customers.selectors import find_customer_by_email, find_customer_by_phone

BEFORE = [("customers", "0002_merge_without_record")]


def migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def latest() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_migrating_encrypts_the_plain_personal_data_of_an_existing_store() -> None:
    # given a store at the schema before encryption, holding plain personal data
    migrate(BEFORE)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_customer (id, external_id, name, email, phone, birthday, "
            "gender, province, city, signup_channel, tags, created_at, updated_at) VALUES "
            "(1, 'C-1', '张伟', 'Zhang.Wei@QQ.com', '138 1234 5678', '1990-05-17', 'male', "
            "'', '', '', '[]', '2024-01-01 00:00:00', '2024-01-01 00:00:00'), "
            "(2, 'C-2', '', '', '', NULL, 'unknown', '', '', '', '[]', "
            "'2024-01-01 00:00:00', '2024-01-01 00:00:00')"
        )
        cursor.execute(
            "INSERT INTO customers_customeridentity (customer_id, kind, value, created_at) VALUES "
            "(1, 'external_id', 'C-1', '2024-01-01 00:00:00'), "
            "(1, 'email', 'zhang.wei@qq.com', '2024-01-01 00:00:00'), "
            "(1, 'phone', '+8613812345678', '2024-01-01 00:00:00')"
        )
        cursor.execute(
            "INSERT INTO customers_customermerge (survivor_id, merged_customer_pk, "
            "merged_external_id, reason, snapshot, moved_rows, merged_at) VALUES "
            "(1, 9, 'C-9', 'same phone: +8613812345678', "
            '\'{"name": "张伟", "phone": "13812345678"}\', \'{}\', \'2024-01-01 00:00:00\')'
        )

    # when the store is migrated to this version
    migrate(latest())

    # then no personal value is left in plain text
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, email, phone, birthday FROM customers_customer WHERE id = 1")
        stored = cursor.fetchone()
        cursor.execute("SELECT value FROM customers_customeridentity WHERE kind != 'external_id'")
        identity_values = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT snapshot, reason FROM customers_customermerge")
        snapshot, reason = cursor.fetchone()
    assert all(str(value).startswith("pii1.") for value in stored)
    assert not any("@" in value or "138" in value for value in identity_values)
    assert str(snapshot).startswith("pii1.")
    assert reason == "same phone: +86 138****5678"
    # and everything reads back, blank values stay blank, and lookups find the customer
    customer = Customer.objects.get(external_id="C-1")
    assert (customer.name, customer.email, customer.phone, customer.birthday) == (
        "张伟",
        "Zhang.Wei@QQ.com",
        "138 1234 5678",
        dt.date(1990, 5, 17),
    )
    blank = Customer.objects.get(external_id="C-2")
    assert (blank.name, blank.email, blank.birthday, blank.email_index) == ("", "", None, "")
    assert find_customer_by_phone("+86 138-1234-5678") == customer
    assert find_customer_by_email("zhang.wei@qq.com") == customer
    assert sorted(i.identifier for i in CustomerIdentity.objects.all()) == [
        "+8613812345678",
        "C-1",
        "zhang.wei@qq.com",
    ]
    assert CustomerMerge.objects.get().snapshot == {"name": "张伟", "phone": "13812345678"}
