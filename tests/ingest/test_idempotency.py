"""Importing again changes nothing; later rows update; JSONL, Parquet and the API path."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from patron.customers.models import Customer
from patron.ingest.services import (
    ImportFileError,
    ImportOptions,
    RecordKind,
    import_frames,
    import_records,
)
from patron.orders.models import Order, OrderLine, Refund
from tests.ingest.helpers import order_snapshot, run_import, table_counts, write_csv

pytestmark = pytest.mark.django_db

HEADER = [
    "order_id",
    "customer_id",
    "ordered_at",
    "product_id",
    "product_name",
    "quantity",
    "unit_price",
    "status",
]
ROWS = [
    ["O-1", "00042", "2024-03-01 10:00:00", "SKU-1", "Green tea", "2", "12.50", "paid"],
    ["O-1", "00042", "2024-03-01 10:00:00", "SKU-2", "Teapot", "1", "88.00", "paid"],
    ["O-2", "00043", "2024-03-02 11:30:00", "SKU-1", "Green tea", "1", "12.50", "paid"],
]
# What the store holds after importing ROWS, in any format.
EXPECTED_SNAPSHOT = [
    (
        "O-1",
        "00042",
        datetime(2024, 3, 1, 2, 0, tzinfo=UTC),
        "paid",
        "CNY",
        Decimal("113.0000"),
        Decimal("0.0000"),
        Decimal("113.0000"),
        (
            ("SKU-1#1", "SKU-1", 2, Decimal("12.5000"), Decimal("25.0000")),
            ("SKU-2#1", "SKU-2", 1, Decimal("88.0000"), Decimal("88.0000")),
        ),
    ),
    (
        "O-2",
        "00043",
        datetime(2024, 3, 2, 3, 30, tzinfo=UTC),
        "paid",
        "CNY",
        Decimal("12.5000"),
        Decimal("0.0000"),
        Decimal("12.5000"),
        (("SKU-1#1", "SKU-1", 1, Decimal("12.5000"), Decimal("12.5000")),),
    ),
]


def rejects_args(tmp_path: Path) -> tuple[str, str]:
    """``--rejects`` into the test's folder (never the real PATRON_HOME)."""
    return ("--rejects", str(tmp_path / "r.csv"))


def test_the_same_file_twice_changes_nothing_the_second_time(tmp_path: Path) -> None:
    # given an order file imported once
    path = write_csv(tmp_path / "orders.csv", HEADER, ROWS)
    first = run_import("orders", path, *rejects_args(tmp_path))
    assert "3 inserted, 0 updated, 0 unchanged, 0 rejected" in first.stdout
    assert "(created 2 customers, 2 orders, 2 products)" in first.stdout
    counts, snapshot = table_counts(), order_snapshot()
    updated_at = dict(Order.objects.values_list("external_id", "updated_at"))

    # when it is imported again
    second = run_import("orders", path, *rejects_args(tmp_path))

    # then nothing is inserted or changed, not even a timestamp
    assert "0 inserted, 0 updated, 3 unchanged, 0 rejected" in second.stdout
    assert table_counts() == counts
    assert order_snapshot() == snapshot == EXPECTED_SNAPSHOT
    assert dict(Order.objects.values_list("external_id", "updated_at")) == updated_at


def test_leading_zeros_of_ids_are_kept(tmp_path: Path) -> None:
    # given ids that look like numbers with leading zeros
    path = write_csv(
        tmp_path / "orders.csv",
        ["order_id", "customer_id", "ordered_at", "product_id", "line_total"],
        [["000123", "00042", "2024-03-01", "0007", "10.00"]],
    )

    # when they are imported
    run_import("orders", path, *rejects_args(tmp_path))

    # then they are kept as written
    line = OrderLine.objects.select_related("order__customer", "product").get()
    assert line.order.external_id == "000123"
    assert line.order.customer.external_id == "00042"
    assert line.product is not None
    assert line.product.external_id == "0007"
    assert (line.quantity, line.unit_price_amount) == (1, Decimal("10.0000"))


def test_a_changed_status_updates_that_order_and_leaves_the_others(tmp_path: Path) -> None:
    # given the orders in the store
    run_import("orders", write_csv(tmp_path / "a.csv", HEADER, ROWS), *rejects_args(tmp_path))
    counts = table_counts()
    other_before = Order.objects.get(external_id="O-2")

    # when a later file says order O-1 has shipped
    later = [[*row[:-1], "shipped"] if row[0] == "O-1" else row for row in ROWS]
    output = run_import(
        "orders", write_csv(tmp_path / "b.csv", HEADER, later), *rejects_args(tmp_path)
    )

    # then O-1's two rows count as updated, O-2's as unchanged
    assert "0 inserted, 2 updated, 1 unchanged, 0 rejected" in output.stdout
    assert Order.objects.get(external_id="O-1").status == "shipped"
    other_after = Order.objects.get(external_id="O-2")
    assert (other_after.status, other_after.updated_at) == ("paid", other_before.updated_at)
    assert table_counts() == counts
    expected = [
        (*EXPECTED_SNAPSHOT[0][:3], "shipped", *EXPECTED_SNAPSHOT[0][4:]),
        EXPECTED_SNAPSHOT[1],
    ]
    assert order_snapshot() == expected


def test_an_order_level_refund_creates_one_refund_once(tmp_path: Path) -> None:
    # given the orders in the store
    run_import("orders", write_csv(tmp_path / "a.csv", HEADER, ROWS), *rejects_args(tmp_path))

    # when a later file carries a refund of 5.00 on order O-2
    refund_header = [*HEADER, "refund_amount", "refunded_at", "refund_reason"]
    refund_rows = [
        [*row, "5.00", "2024-03-05 12:00:00", "damaged box"]
        if row[0] == "O-2"
        else [*row, "", "", ""]
        for row in ROWS
    ]
    path = write_csv(tmp_path / "refunds.csv", refund_header, refund_rows)
    output = run_import("orders", path, *rejects_args(tmp_path))

    # then one refund is recorded on O-2, and O-2's row counts as updated
    assert "0 inserted, 1 updated, 2 unchanged, 0 rejected" in output.stdout
    refund = Refund.objects.select_related("order").get()
    assert (refund.order.external_id, refund.kind, refund.amount, refund.currency) == (
        "O-2",
        "refund",
        Decimal("5.0000"),
        "CNY",
    )
    assert refund.refunded_at == datetime(2024, 3, 5, 4, 0, tzinfo=UTC)
    assert refund.reason == "damaged box"
    counts = table_counts()

    # when the same refund file is imported again
    again = run_import("orders", path, *rejects_args(tmp_path))

    # then nothing changes
    assert "0 inserted, 0 updated, 3 unchanged, 0 rejected" in again.stdout
    assert table_counts() == counts
    assert Refund.objects.count() == 1


def write_jsonl(path: Path) -> Path:
    """ROWS as JSONL: one order per line with its lines nested, numbers as JSON numbers."""
    orders: dict[str, dict[str, object]] = {}
    for order_id, customer_id, ordered_at, product_id, name, quantity, price, status in ROWS:
        order = orders.setdefault(
            order_id,
            {
                "order_id": order_id,
                "customer_id": customer_id,
                "ordered_at": ordered_at.replace(" ", "T"),
                "status": status,
                "lines": [],
            },
        )
        lines = order["lines"]
        assert isinstance(lines, list)
        lines.append(
            {
                "product_id": product_id,
                "product_name": name,
                "quantity": int(quantity),
                "unit_price": float(price),
            }
        )
    path.write_text(
        "".join(json.dumps(order, ensure_ascii=False) + "\n" for order in orders.values()),
        encoding="utf-8",
    )
    return path


def write_parquet(path: Path) -> Path:
    """ROWS as Parquet with typed columns: integers, decimals, naive datetimes."""
    frame = pl.DataFrame(ROWS, schema=HEADER, orient="row").with_columns(
        pl.col("ordered_at").str.to_datetime("%Y-%m-%d %H:%M:%S"),
        pl.col("quantity").cast(pl.Int32),
        pl.col("unit_price").cast(pl.Decimal(10, 2)),
    )
    frame.write_parquet(path)
    return path


@pytest.mark.parametrize("writer", [write_jsonl, write_parquet], ids=["jsonl", "parquet"])
def test_jsonl_and_parquet_import_the_same_data_as_the_csv(tmp_path: Path, writer: object) -> None:
    assert callable(writer)
    # given the data as JSONL (nested lines) or Parquet
    path = writer(tmp_path / ("orders.jsonl" if writer is write_jsonl else "orders.parquet"))

    # when it is imported
    output = run_import("orders", path, *rejects_args(tmp_path))

    # then the store holds what the CSV gives
    assert "3 inserted, 0 updated, 0 unchanged, 0 rejected" in output.stdout
    assert order_snapshot() == EXPECTED_SNAPSHOT

    # and the CSV of the same data afterwards changes nothing
    again = run_import(
        "orders", write_csv(tmp_path / "orders.csv", HEADER, ROWS), *rejects_args(tmp_path)
    )
    assert "0 inserted, 0 updated, 3 unchanged, 0 rejected" in again.stdout


def test_a_gzip_compressed_csv_is_read(tmp_path: Path) -> None:
    # given the CSV compressed with gzip
    import gzip

    plain = write_csv(tmp_path / "orders.csv", HEADER, ROWS)
    path = tmp_path / "orders.csv.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))

    # when it is imported
    run_import("orders", path, *rejects_args(tmp_path))

    # then it holds the same data
    assert order_snapshot() == EXPECTED_SNAPSHOT


def test_import_records_imports_api_records() -> None:
    # given records as the API receives them, one of them bad
    records = [dict(zip(HEADER, row, strict=True)) for row in ROWS]
    records.append({"order_id": "O-3", "customer_id": "00044", "ordered_at": "yesterday"})

    # when they are imported
    summary = import_records(RecordKind.ORDERS, records, options=ImportOptions(source="api"))

    # then the good ones are stored and the bad one is named by its position
    assert (summary.inserted, summary.updated, summary.unchanged, summary.rejected) == (3, 0, 0, 1)
    assert [str(error) for error in summary.errors] == [
        "api, row 4, ordered_at: not a date or time: yesterday",
        "api, row 4, line_total: give quantity and unit_price, or line_total",
    ]
    assert order_snapshot() == EXPECTED_SNAPSHOT


def test_import_records_refuses_more_than_ten_thousand_records() -> None:
    # given 10,001 valid records
    records = [
        {"order_id": f"O-{n}", "customer_id": "00042", "ordered_at": "2024-03-01",
         "line_total": "1.00"}
        for n in range(10_001)
    ]  # fmt: skip

    # when they are sent in one call
    with pytest.raises(ImportFileError) as raised:
        import_records(RecordKind.ORDERS, records)

    # then the call is refused as a whole and nothing is written
    assert str(raised.value) == "10001 records in one call; send at most 10,000 per call"
    assert Customer.objects.count() == 0
    assert Order.objects.count() == 0


def test_a_changed_refund_amount_updates_the_refund(tmp_path: Path) -> None:
    # given order O-2 with a refund of 5.00
    refund_header = [*HEADER, "refund_amount", "refunded_at"]
    first = [[*ROWS[2], "5.00", "2024-03-05 12:00:00"]]
    run_import(
        "orders", write_csv(tmp_path / "a.csv", refund_header, first), *rejects_args(tmp_path)
    )

    # when a later file says the refund was 7.50 and the order was returned
    later = [[*ROWS[2][:-1], "returned", "7.50", "2024-03-06 12:00:00"]]
    output = run_import(
        "orders", write_csv(tmp_path / "b.csv", refund_header, later), *rejects_args(tmp_path)
    )

    # then the one refund is updated, not a second one added
    assert "0 inserted, 1 updated, 0 unchanged, 0 rejected" in output.stdout
    refund = Refund.objects.get()
    assert (refund.kind, refund.amount, refund.refunded_at) == (
        "return",
        Decimal("7.5000"),
        datetime(2024, 3, 6, 4, 0, tzinfo=UTC),
    )


def test_lines_of_one_order_in_two_files_add_up_to_its_total(tmp_path: Path) -> None:
    # given order O-1 imported with its first line only
    run_import("orders", write_csv(tmp_path / "a.csv", HEADER, ROWS[:1]), *rejects_args(tmp_path))
    assert Order.objects.get(external_id="O-1").total_amount == Decimal("25.0000")

    # when a later file carries both of its lines
    output = run_import(
        "orders", write_csv(tmp_path / "b.csv", HEADER, ROWS[:2]), *rejects_args(tmp_path)
    )

    # then the first line is unchanged, the second added, and the total covers both
    assert "1 inserted, 0 updated, 1 unchanged, 0 rejected" in output.stdout
    assert order_snapshot()[0] == EXPECTED_SNAPSHOT[0]


def test_an_order_whose_lines_span_batches_keeps_every_line() -> None:
    # given one order whose lines arrive in two batches, product P1 in both
    def lines(*products: str) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "order_id": ["A"] * len(products),
                "customer_id": ["C1"] * len(products),
                "ordered_at": ["2024-05-01 10:00:00"] * len(products),
                "product_id": list(products),
                "quantity": [1] * len(products),
                "unit_price": ["10.00"] * len(products),
            }
        )

    batches = [lines("P1", "P2"), lines("P1", "P3")]

    # when imported, then imported again
    first = import_frames(RecordKind.ORDERS, batches)
    again = import_frames(RecordKind.ORDERS, batches)

    # then the four lines are kept apart and counted once
    assert (first.inserted, again.unchanged, again.inserted) == (4, 4, 0)
    stored = OrderLine.objects.order_by("line_number").values_list("line_key", "line_number")
    assert list(stored) == [("P1#1", 1), ("P2#1", 2), ("P1#2", 3), ("P3#1", 4)]
    assert Order.objects.get().total_amount == Decimal("40.0000")
