"""A shop's next full export still holds an erased customer: importing it again must not
bring the person back. Customer rows of erased ids are rejected (their personal data stays
erased); orders and events naming the old id stay with the pseudonymous record, so nothing
is counted twice and the old id names no customer again."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db.models import Sum

from patron.customers.identity import identity_lookup_values
from patron.customers.models import Customer, CustomerIdentity
from patron.customers.selectors import get_customer
from patron.ingest.loaders import ERASED_REASON
from patron.ingest.services import import_records
from patron.orders.models import Event, Order
from patron.privacy.erasure import erased_customer_keys, is_pseudonym
from patron.privacy.requests import erase_customer

CUSTOMERS = [
    {
        "customer_id": "00042",
        "name": "王芳",
        "email": "wang.fang@example.cn",
        "phone": "13811112222",
        "city": "苏州",
    },
    {"customer_id": "00043", "name": "Lucy Chen", "email": "lucy@example.com"},
]
ORDERS = [
    {
        "order_id": "SO-1",
        "customer_id": "00042",
        "ordered_at": "2026-03-01T10:00:00+08:00",
        "product_id": "P-1",
        "quantity": 2,
        "unit_price": "50.00",
    },
    {
        "order_id": "SO-2",
        "customer_id": "00043",
        "ordered_at": "2026-03-02T10:00:00+08:00",
        "product_id": "P-1",
        "quantity": 1,
        "unit_price": "50.00",
    },
]


@pytest.fixture
def erased_shop(db: None) -> Customer:
    """The two customers and their orders imported, then 00042 erased at their request."""
    assert import_records("customers", CUSTOMERS).rejected == 0
    assert import_records("orders", ORDERS).rejected == 0
    return erase_customer(get_customer("00042"), reason="ticket 77").customer


def test_the_erased_id_maps_to_its_pseudonym_and_only_that_one(erased_shop: Customer) -> None:
    # when
    found = erased_customer_keys(["00042", "00043", "99999"])
    # then
    assert found == {"00042": erased_shop.pk}


def test_reimporting_the_customers_rejects_the_erased_one_and_keeps_the_rest(
    erased_shop: Customer,
) -> None:
    # when
    summary = import_records("customers", CUSTOMERS)
    # then
    assert (summary.rejected, summary.unchanged) == (1, 1)
    assert [(error.field, error.reason) for error in summary.errors] == [
        ("customer_id", ERASED_REASON)
    ]
    assert not CustomerIdentity.objects.filter(kind="external_id", value="00042").exists()
    assert sorted((c.name, c.email) for c in Customer.objects.all()) == [
        ("", ""),
        ("Lucy Chen", "lucy@example.com"),
    ]
    assert not CustomerIdentity.objects.filter(
        kind="email", value__in=identity_lookup_values("email", "wang.fang@example.cn")
    ).exists()
    erased_shop.refresh_from_db()
    assert (erased_shop.name, erased_shop.email, erased_shop.phone, erased_shop.city) == (
        "",
        "",
        "",
        "",
    )


def test_reimporting_the_orders_keeps_them_with_the_pseudonym(erased_shop: Customer) -> None:
    # given
    revenue = Order.objects.aggregate(total=Sum("total_amount"))["total"]
    # when
    summary = import_records("orders", ORDERS)
    # then
    assert (summary.inserted, summary.updated, summary.rejected) == (0, 0, 0)
    assert summary.created.get("customers", 0) == 0
    assert Order.objects.get(external_id="SO-1").customer_id == erased_shop.pk
    assert Order.objects.aggregate(total=Sum("total_amount"))["total"] == revenue
    assert Customer.objects.count() == 2
    with pytest.raises(Customer.DoesNotExist):
        get_customer("00042")


def test_a_new_order_or_event_of_the_old_id_goes_to_the_pseudonym(erased_shop: Customer) -> None:
    # when
    orders = import_records(
        "orders",
        [
            {
                "order_id": "SO-3",
                "customer_id": "00042",
                "ordered_at": "2026-04-01T10:00:00+08:00",
                "product_id": "P-1",
                "quantity": 1,
                "unit_price": "30.00",
            }
        ],
    )
    events = import_records(
        "events",
        [
            {
                "event_id": "EV-1",
                "customer_id": "00042",
                "event_type": "view",
                "occurred_at": "2026-04-01T09:00:00+08:00",
                "product_id": "P-1",
            }
        ],
    )
    # then
    assert (orders.inserted, events.inserted) == (1, 1)
    order = Order.objects.get(external_id="SO-3")
    assert order.customer_id == erased_shop.pk
    assert order.total_amount == Decimal("30.00")
    assert Event.objects.get(external_id="EV-1").customer_id == erased_shop.pk
    assert is_pseudonym(Customer.objects.get(pk=erased_shop.pk).external_id)
    assert Customer.objects.count() == 2


def test_nothing_is_hashed_while_nobody_was_erased(db: None) -> None:
    # given
    assert import_records("customers", CUSTOMERS).inserted == 2
    # when
    found = erased_customer_keys(["00042", "00043"])
    # then
    assert found == {}
