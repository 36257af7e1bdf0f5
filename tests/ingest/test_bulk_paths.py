"""The set-based order path's shortcuts give what the plain reading of the rows gives.

Repeated products, an order naming two customers, an explicit line id given twice, and
a large load whose plain indexes (and on PostgreSQL foreign keys) are suspended and restored.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from django.db import connection
from django.utils import timezone

from patron.core import bulk
from patron.customers.models import Customer
from patron.ingest import loaders
from patron.ingest.services import ImportOptions, RecordKind, import_frames
from patron.orders.models import Order, OrderLine
from tests.ingest.helpers import order_snapshot

pytestmark = pytest.mark.django_db


def _lines(rows: list[tuple[str, str, str, int, str]], **extra: list[str]) -> pl.DataFrame:
    """Order lines ``(order_id, customer_id, product_id, quantity, unit_price)``."""
    order_ids, customers, products, quantities, prices = (
        list(column) for column in zip(*rows, strict=True)
    )
    return pl.DataFrame(
        {
            "order_id": order_ids,
            "customer_id": customers,
            "ordered_at": ["2024-05-01 10:00:00"] * len(rows),
            "product_id": products,
            "quantity": quantities,
            "unit_price": prices,
            **extra,
        }
    )


def test_a_product_repeated_in_an_order_becomes_numbered_lines() -> None:
    # given order A with P1 three times among other products, in one batch
    rows = [
        ("A", "C1", "P1", 1, "10.00"),
        ("A", "C1", "P2", 2, "3.50"),
        ("A", "C1", "P1", 3, "10.00"),
        ("B", "C2", "P1", 1, "9.99"),
        ("A", "C1", "P1", 1, "11.00"),
    ]

    # when imported twice
    first = import_frames(RecordKind.ORDERS, [_lines(rows)])
    again = import_frames(RecordKind.ORDERS, [_lines(rows)])

    # then every row is a line, numbered per product in file order, and the second
    # import changes nothing
    assert (first.inserted, again.inserted, again.updated, again.unchanged) == (5, 0, 0, 5)
    stored = OrderLine.objects.filter(order__external_id="A").order_by("line_number")
    assert [(line.line_key, line.line_number, line.quantity) for line in stored] == [
        ("P1#1", 1, 1),
        ("P2#1", 2, 2),
        ("P1#2", 3, 3),
        ("P1#3", 4, 1),
    ]
    expected_a = sum(
        Decimal(price) * quantity for order, _, _, quantity, price in rows if order == "A"
    )
    assert Order.objects.get(external_id="A").total_amount == expected_a


def test_rows_naming_another_customer_for_an_order_are_refused() -> None:
    # given order A first named with C1 (row 1), then with C2 (row 3)
    rows = [
        ("A", "C1", "P1", 1, "10.00"),
        ("B", "C2", "P1", 1, "5.00"),
        ("A", "C2", "P2", 1, "7.00"),
    ]

    # when imported
    summary = import_frames(RecordKind.ORDERS, [_lines(rows)])

    # then row 3 is refused with the reason and the rest kept
    assert (summary.inserted, summary.rejected) == (2, 1)
    assert [(error.row, error.field, error.reason) for error in summary.errors] == [
        (3, "customer_id", "order A belongs to customer C1 (row 1), not C2")
    ]
    assert [(order[0], order[1], len(order[8])) for order in order_snapshot()] == [
        ("A", "C1", 1),
        ("B", "C2", 1),
    ]


def test_an_explicit_line_id_given_twice_keeps_the_last_row() -> None:
    # given line L1 of order A twice in one batch, the second with another quantity
    rows = [("A", "C1", "P1", 1, "10.00"), ("A", "C1", "P1", 4, "10.00")]

    # when imported
    import_frames(RecordKind.ORDERS, [_lines(rows, line_id=["L1", "L1"])])

    # then one line holds the last row's values and the total follows it
    assert list(OrderLine.objects.values_list("line_key", "quantity")) == [("L1", 4)]
    assert Order.objects.get().total_amount == Decimal("40.0000")


def _checks() -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    tables = [Order._meta.db_table, OrderLine._meta.db_table]
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            # SQLite: foreign keys are part of the table; its indexes are in sqlite_master.
            cursor.execute(
                "SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name IN (%s, %s) ORDER BY name",
                tables,
            )
            return [], cursor.fetchall(), []
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = ANY(%s::regclass[]) ORDER BY conname",
            [tables],
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) "
            "ORDER BY indexname",
            [tables],
        )
        indexes = cursor.fetchall()
        # Column defaults (Django's tables have none; a large load sets two for a while).
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_name = ANY(%s) AND column_default IS NOT NULL "
            "AND column_default NOT LIKE 'nextval%%' ORDER BY table_name, column_name",
            [tables],
        )
        defaults = cursor.fetchall()
    return constraints, indexes, defaults


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("strict", [False, True])
def test_a_large_load_restores_its_foreign_keys_and_indexes(
    monkeypatch: pytest.MonkeyPatch, strict: bool
) -> None:
    # given a threshold low enough for a small file to count as a large load
    monkeypatch.setattr(loaders, "SET_BASED_CHECK_MIN_ROWS", 1)
    monkeypatch.setattr(bulk, "SET_BASED_CHECK_MIN_ROWS", 1)
    before = _checks()
    rows = [("A", "C1", "P1", 2, "10.00"), ("B", "C2", "P2", 1, "5.00")]
    frame = _lines(rows)
    if strict:
        # one bad row: a strict import must leave nothing behind
        frame = pl.concat([frame, _lines([("C", "C3", "P3", 1, "-1")])])
    dropped: list[list[tuple[str, str]]] = []
    original = bulk.suspend_checks

    def spy(tables: list[str], incoming: int) -> list[tuple[str, str]]:
        result = original(tables, incoming)
        dropped.append(result)
        return result

    monkeypatch.setattr(loaders, "suspend_checks", spy)

    # when imported
    started = timezone.now()
    summary = import_frames(RecordKind.ORDERS, [frame], options=ImportOptions(strict=strict))

    # then the checks were suspended (PostgreSQL: 3 foreign keys, 4 plain indexes; SQLite:
    # the 3 plain indexes) and are back as they were
    assert len(dropped) == 1
    assert len(dropped[0]) == (7 if connection.vendor == "postgresql" else 3)
    assert _checks() == before
    if strict:
        assert (summary.written, Order.objects.count()) == (False, 0)
    else:
        assert [(order[0], order[1], order[7]) for order in order_snapshot()] == [
            ("A", "C1", Decimal("20.0000")),
            ("B", "C2", Decimal("5.0000")),
        ]
        # the orders carry the import's time (from defaults set for the load on PostgreSQL)
        for created_at, updated_at in Order.objects.values_list("created_at", "updated_at"):
            assert started <= created_at == updated_at <= timezone.now()
        if connection.vendor != "postgresql":
            return
        # the keys were taken as blocks: the sequences have moved past them
        with connection.cursor() as cursor:
            for model in (Order, OrderLine):
                table = model._meta.db_table
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) > "
                    f"(SELECT max(id) FROM {table})",
                    [table],
                )
                assert cursor.fetchone() == (True,)


def test_a_customer_named_in_several_batches_is_created_once() -> None:
    # given customer C1 in two batches, C2 only in the second
    first = _lines([("A", "C1", "P1", 1, "1.00")])
    second = _lines([("B", "C1", "P2", 1, "2.00"), ("C", "C2", "P1", 1, "3.00")])

    # when imported as one input
    summary = import_frames(RecordKind.ORDERS, [first, second])

    # then each customer exists once and holds its orders
    assert summary.created["customers"] == 2
    assert sorted(Order.objects.values_list("external_id", "customer__external_id")) == [
        ("A", "C1"),
        ("B", "C1"),
        ("C", "C2"),
    ]
    assert Customer.objects.count() == 2
