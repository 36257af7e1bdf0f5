"""Identity resolution: duplicates merged on import and later, orders and events kept."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from patron.customers.choices import IdentityKindChoices
from patron.customers.models import Customer, CustomerIdentity, CustomerMerge
from patron.customers.resolution import merge_customers, resolve_duplicates
from patron.customers.selectors import get_customer
from patron.orders.models import Event, Order
from tests.ingest.helpers import run_import, table_counts, write_csv

pytestmark = pytest.mark.django_db

ORDER_HEADER = ["order_id", "customer_id", "ordered_at", "product_id", "quantity", "unit_price"]
ORDER_ROWS = [
    ["O-1", "C-1", "2024-03-01 10:00:00", "SKU-1", "1", "10.00"],
    ["O-2", "C-2", "2024-03-02 10:00:00", "SKU-1", "2", "10.00"],
    ["O-3", "C-3", "2024-03-03 10:00:00", "SKU-2", "1", "99.00"],
]
CUSTOMER_HEADER = ["customer_id", "name", "phone", "email"]
SAME_PHONE = [
    ["C-1", "张伟", "138 1234 5678", ""],
    ["C-2", "", "+86 138-1234-5678", ""],
    ["C-3", "Zhang Wei", "13812345678", ""],
]
SAME_EMAIL = [
    ["C-1", "张伟", "", "Zhang.Wei@example.com"],
    ["C-2", "", "", "zhang.wei@EXAMPLE.COM"],
    ["C-3", "Zhang Wei", "", "ｚｈａｎｇ．ｗｅｉ＠ｅｘａｍｐｌｅ．ｃｏｍ"],
]
SHARED_IDENTITY = {
    "phone": (IdentityKindChoices.PHONE.value, "+8613812345678"),
    "email": (IdentityKindChoices.EMAIL.value, "zhang.wei@example.com"),
}


def identifiers(customer: Customer) -> list[tuple[str, str]]:
    """The customer's identities as (kind, normalised identifier), e-mail and phone decrypted."""
    return sorted((identity.kind, identity.identifier) for identity in customer.identities.all())


def rejects(tmp_path: Path) -> tuple[str, str]:
    """``--rejects`` into the test's folder."""
    return ("--rejects", str(tmp_path / "r.csv"))


@pytest.mark.parametrize(("shared", "rows"), [("phone", SAME_PHONE), ("email", SAME_EMAIL)])
def test_customers_sharing_a_phone_or_email_merge_on_import_keeping_their_orders(
    tmp_path: Path, shared: str, rows: list[list[str]]
) -> None:
    # given orders imported for three external ids, which creates three customers
    orders_file = write_csv(tmp_path / "orders.csv", ORDER_HEADER, ORDER_ROWS)
    run_import("orders", orders_file, *rejects(tmp_path))
    assert Customer.objects.count() == 3
    pks = dict(Customer.objects.values_list("external_id", "pk"))

    # when a customer file says the three share one phone (or e-mail) written differently
    customers_file = write_csv(tmp_path / "customers.csv", CUSTOMER_HEADER, rows)
    run_import("customers", customers_file, *rejects(tmp_path))

    # then they are one customer, the oldest record, holding every order (a later row's
    # name wins, as a later row for one customer updates it)
    survivor = Customer.objects.get()
    assert survivor.external_id == "C-1"
    assert survivor.name == "Zhang Wei"
    assert sorted(survivor.orders.values_list("external_id", flat=True)) == ["O-1", "O-2", "O-3"]
    # with a record of what was merged into what
    merges = CustomerMerge.objects.order_by("merged_customer_pk")
    assert [
        (merge.survivor_id, merge.merged_customer_pk, merge.merged_external_id, merge.moved_rows)
        for merge in merges
    ] == [
        (pks["C-1"], pks["C-2"], "C-2", {"orders.order": 1, "customers.customeridentity": 1}),
        (pks["C-1"], pks["C-3"], "C-3", {"orders.order": 1, "customers.customeridentity": 1}),
    ]
    # and every identifier now names the survivor
    assert identifiers(survivor) == sorted(
        [
            ("external_id", "C-1"),
            ("external_id", "C-2"),
            ("external_id", "C-3"),
            SHARED_IDENTITY[shared],
        ]
    )
    # so a lookup by any of the external ids finds the survivor
    assert get_customer("C-2") == get_customer("C-3") == get_customer("C-1") == survivor
    counts = table_counts()

    # when the orders file is imported again
    again = run_import("orders", orders_file, *rejects(tmp_path))

    # then nothing is duplicated or moved: the orders of C-2 and C-3 resolve to the survivor
    assert "0 inserted, 0 updated, 3 unchanged, 0 rejected" in again.stdout
    assert table_counts() == counts
    assert set(Order.objects.values_list("customer_id", flat=True)) == {survivor.pk}


def test_new_customers_sharing_a_phone_in_one_file_become_one_customer(tmp_path: Path) -> None:
    # given an empty store

    # when a customer file names one person under three ids with one phone in three formats
    path = write_csv(tmp_path / "customers.csv", CUSTOMER_HEADER, SAME_PHONE)
    output = run_import("customers", path, *rejects(tmp_path))

    # then one customer is created, named by all three ids and the phone
    assert "1 inserted, 2 updated, 0 unchanged, 0 rejected" in output.stdout
    customer = Customer.objects.get()
    assert (customer.external_id, customer.name, customer.phone) == (
        "C-1",
        "Zhang Wei",
        "13812345678",
    )
    assert identifiers(customer) == [
        ("external_id", "C-1"),
        ("external_id", "C-2"),
        ("external_id", "C-3"),
        ("phone", "+8613812345678"),
    ]
    # and orders for any of the ids land on that customer
    orders = run_import(
        "orders", write_csv(tmp_path / "orders.csv", ORDER_HEADER, ORDER_ROWS), *rejects(tmp_path)
    )
    assert "3 inserted" in orders.stdout
    assert Customer.objects.count() == 1
    assert customer.orders.count() == 3


def test_an_invalid_phone_rejects_the_customer_row_naming_the_field(tmp_path: Path) -> None:
    # given a customer row with a phone that is no phone number
    path = write_csv(
        tmp_path / "customers.csv",
        CUSTOMER_HEADER,
        [["C-1", "张伟", "call me", ""], ["C-2", "Li Na", "13912345678", ""]],
    )

    # when it is imported
    with pytest.raises(CommandError, match=r"^1 rows rejected$"):
        run_import("customers", path, *rejects(tmp_path))

    # then the good row is in and the bad one is named
    assert list(Customer.objects.values_list("external_id", "phone")) == [("C-2", "13912345678")]
    rejected = (tmp_path / "r.csv").read_text(encoding="utf-8").splitlines()
    # naming no personal value: the reason quotes none and the personal columns are masked
    assert rejected[1].startswith("2,phone,phone: not a phone number,C-1,张*,***,")


@pytest.fixture
def two_customers_with_history() -> tuple[Customer, Customer]:
    """Customer A (older, no phone) and customer B (newer, with phone, an order, an event)."""
    older = Customer.objects.create(external_id="A", name="Wang Fang", tags=["vip"])
    newer = Customer.objects.create(
        external_id="B", phone="13812345678", province="Zhejiang", tags=["wholesale"]
    )
    CustomerIdentity.objects.create(customer=older, kind="external_id", value="A")
    CustomerIdentity.objects.create(customer=newer, kind="external_id", value="B")
    Order.objects.create(
        external_id="O-B",
        customer=newer,
        ordered_at=datetime(2024, 3, 1, tzinfo=UTC),
        currency="CNY",
        subtotal_amount=Decimal("10.00"),
        total_amount=Decimal("10.00"),
    )
    Event.objects.create(
        external_id="E-B",
        customer=newer,
        event_type="view",
        occurred_at=datetime(2024, 3, 1, tzinfo=UTC),
    )
    return older, newer


def test_merge_customers_moves_orders_and_events_and_keeps_a_snapshot(
    two_customers_with_history: tuple[Customer, Customer],
) -> None:
    # given two records of one person, the newer one holding an order and an event
    survivor, duplicate = two_customers_with_history
    duplicate_pk = duplicate.pk

    # when the newer is merged into the older
    merge = merge_customers(survivor, duplicate, reason="same person, found by staff")

    # then the duplicate is gone and its order, event and identity are the survivor's
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["A"]
    assert Order.objects.get(external_id="O-B").customer_id == survivor.pk
    assert Event.objects.get(external_id="E-B").customer_id == survivor.pk
    assert sorted(survivor.identities.values_list("value", flat=True)) == ["A", "B"]
    # the survivor's blanks are filled from the duplicate, and tags are united
    survivor.refresh_from_db()
    assert (survivor.name, survivor.phone, survivor.province, survivor.tags) == (
        "Wang Fang",
        "13812345678",
        "Zhejiang",
        ["vip", "wholesale"],
    )
    # and the merge record keeps what the duplicate was
    merge.refresh_from_db()
    assert (merge.survivor_id, merge.merged_customer_pk, merge.merged_external_id) == (
        survivor.pk,
        duplicate_pk,
        "B",
    )
    assert merge.reason == "same person, found by staff"
    assert merge.moved_rows == {
        "customers.customeridentity": 1,
        "orders.order": 1,
        "orders.event": 1,
    }
    assert merge.snapshot == {
        "external_id": "B",
        "tags": ["wholesale"],
        "name": "",
        "email": "",
        "phone": "13812345678",
        "birthday": None,
        "address": "",
        "gender": "unknown",
        "province": "Zhejiang",
        "city": "",
        "signup_channel": "",
        "signed_up_at": None,
    }


def test_merge_customers_refuses_to_merge_a_customer_into_itself(
    two_customers_with_history: tuple[Customer, Customer],
) -> None:
    # given a customer
    customer, _ = two_customers_with_history

    # when it is merged into itself
    with pytest.raises(ValueError, match="cannot merge a customer into itself"):
        merge_customers(customer, customer, reason="oops")

    # then nothing happened
    assert Customer.objects.count() == 2
    assert CustomerMerge.objects.count() == 0


def test_resolve_duplicates_merges_customers_entered_outside_the_importer() -> None:
    # given customers saved directly (no identities), two pairs of them the same person
    first = Customer.objects.create(external_id="X-1", phone="138 1234 5678")
    second = Customer.objects.create(external_id="X-2", phone="+86 138-1234-5678")
    third = Customer.objects.create(external_id="X-3", email="Li.Na@Example.com")
    fourth = Customer.objects.create(external_id="X-4", email="ｌｉ．ｎａ＠ｅｘａｍｐｌｅ．ｃｏｍ")
    other = Customer.objects.create(external_id="X-5", phone="not a phone")
    Order.objects.create(
        external_id="O-4", customer=fourth, ordered_at=datetime(2024, 3, 1, tzinfo=UTC)
    )

    # when the sweep runs
    merges = resolve_duplicates()

    # then each pair became its older record, with the orders kept
    assert [(m.survivor_id, m.merged_external_id) for m in merges] == [
        (first.pk, "X-2"),
        (third.pk, "X-4"),
    ]
    # and the reasons quote the shared identifier masked (merge records are not encrypted)
    assert merges[0].reason == "same phone: +86 138****5678"
    assert merges[1].reason == "same email: l***@example.com"
    assert sorted(Customer.objects.values_list("pk", flat=True)) == sorted(
        [first.pk, third.pk, other.pk]
    )
    assert Order.objects.get().customer_id == third.pk
    assert get_customer("X-4") == third
    assert second.pk not in set(Customer.objects.values_list("pk", flat=True))

    # when it runs again
    # then there is nothing more to merge
    assert resolve_duplicates() == []


EVENT_HEADER = ["event_id", "customer_id", "device_id", "event_type", "occurred_at", "product_id"]


def test_anonymous_device_events_are_attached_once_a_login_links_the_device(
    tmp_path: Path,
) -> None:
    # given a device that browsed anonymously, and another device nobody logged in on
    anonymous = write_csv(
        tmp_path / "browse.csv",
        EVENT_HEADER,
        [
            ["E-1", "", "dev-1", "view", "2024-03-01 10:00:00", "SKU-1"],
            ["E-2", "", "dev-1", "add_to_cart", "2024-03-01 10:01:00", "SKU-1"],
            ["E-3", "", "dev-2", "view", "2024-03-01 10:02:00", "SKU-2"],
        ],
    )
    run_import("events", anonymous, *rejects(tmp_path))
    assert Event.objects.filter(customer__isnull=True).count() == 3

    # when the device's owner logs in on it, and browses on
    login = write_csv(
        tmp_path / "login.csv",
        EVENT_HEADER,
        [["E-4", "00042", "dev-1", "login", "2024-03-01 10:05:00", ""]],
    )
    run_import("events", login, *rejects(tmp_path))
    later = write_csv(
        tmp_path / "later.csv",
        EVENT_HEADER,
        [["E-5", "", "dev-1", "checkout", "2024-03-01 10:10:00", ""]],
    )
    run_import("events", later, *rejects(tmp_path))

    # then the device's earlier and later events are the customer's; the other device's not
    customer = Customer.objects.get(external_id="00042")
    assert sorted(
        Event.objects.filter(customer=customer).values_list("external_id", flat=True)
    ) == [
        "E-1",
        "E-2",
        "E-4",
        "E-5",
    ]
    assert list(
        Event.objects.filter(customer__isnull=True).values_list("external_id", flat=True)
    ) == ["E-3"]
    assert list(customer.identities.filter(kind="device").values_list("value", flat=True)) == [
        "dev-1"
    ]


def test_a_shared_device_moves_to_the_latest_customer_without_merging(tmp_path: Path) -> None:
    # given a family tablet on which one customer logged in
    first = write_csv(
        tmp_path / "first.csv",
        EVENT_HEADER,
        [["E-1", "A-1", "tablet", "login", "2024-03-01 10:00:00", ""]],
    )
    run_import("events", first, *rejects(tmp_path))

    # when another customer logs in on it, and it then browses anonymously
    second = write_csv(
        tmp_path / "second.csv",
        EVENT_HEADER,
        [
            ["E-2", "B-2", "tablet", "login", "2024-03-02 20:00:00", ""],
            ["E-3", "", "tablet", "view", "2024-03-02 20:05:00", "SKU-1"],
        ],
    )
    run_import("events", second, *rejects(tmp_path))

    # then both customers remain, the tablet is the second one's, and so is the later view
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["A-1", "B-2"]
    assert CustomerMerge.objects.count() == 0
    device = CustomerIdentity.objects.get(kind="device", value="tablet")
    assert device.customer.external_id == "B-2"
    assert Event.objects.get(external_id="E-3").customer == device.customer


def test_strict_undoes_merges_when_a_row_is_bad(tmp_path: Path) -> None:
    # given three customers with orders
    run_import(
        "orders", write_csv(tmp_path / "orders.csv", ORDER_HEADER, ORDER_ROWS), *rejects(tmp_path)
    )
    before = table_counts()

    # when a customer file that would merge them, but has one bad row, is imported --strict
    path = write_csv(
        tmp_path / "customers.csv",
        CUSTOMER_HEADER,
        [*SAME_PHONE, ["C-4", "Li Na", "", "not an e-mail"]],
    )
    with pytest.raises(CommandError, match=r"^1 rows rejected$"):
        run_import("customers", path, "--strict", *rejects(tmp_path))

    # then no merge, identity or customer change was kept
    assert table_counts() == before
    assert CustomerMerge.objects.count() == 0
    assert sorted(Customer.objects.values_list("external_id", "phone")) == [
        ("C-1", ""),
        ("C-2", ""),
        ("C-3", ""),
    ]


def test_resolve_customers_command_reports_the_merges() -> None:
    # given two customers entered with one phone in two formats
    Customer.objects.create(external_id="Y-1", phone="139 0000 1111")
    Customer.objects.create(external_id="Y-2", phone="+86-139-0000-1111")
    output = io.StringIO()

    # when the command runs, and again
    call_command("resolve_customers", stdout=output)
    call_command("resolve_customers", stdout=output)

    # then the first run merged them and the second found nothing more
    assert output.getvalue().splitlines() == [
        "merged Y-2 into Y-1: same phone: +86 139****1111",
        "1 customers merged",
        "0 customers merged",
    ]
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["Y-1"]
