"""Malformed order files: each bad row named with its file, row and field; ``--strict``."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError

from patron.customers.models import Customer
from patron.orders.models import Order, OrderLine
from tests.ingest.helpers import (
    CommandOutput,
    order_snapshot,
    read_rejects,
    run_import,
    table_counts,
    write_csv,
)

pytestmark = pytest.mark.django_db

HEADER = "order_id,customer_id,ordered_at,product_id,product_name,quantity,unit_price\n"
GOOD_ROWS = (
    "G-1,00042,2024-03-01 10:00:00,SKU-1,Green tea,2,12.50\n"  # line 2
    "G-1,00042,2024-03-01 10:00:00,SKU-2,Teapot,1,88.00\n"  # line 3
)
BAD_DATE = "B-1,00043,2024-02-30 09:00:00,SKU-1,Green tea,1,12.50\n"  # line 4
NEGATIVE_QUANTITY = "B-2,00044,2024-03-02,SKU-1,Green tea,-3,12.50\n"  # line 5
MISSING_CUSTOMER = "B-3,,2024-03-02,SKU-1,Green tea,1,12.50\n"  # line 6
LAST_GOOD_ROW = "G-2,00045,20240303,SKU-3,Cup,4,5.25\n"  # line 8

# (line, field, start of the reason) of each bad row of the malformed file
EXPECTED_REJECTS = [
    ("4", "ordered_at", "ordered_at: not a date or time: 2024-02-30 09:00:00"),
    ("5", "quantity", "quantity: negative quantity: -3"),
    ("6", "customer_id", "customer_id: missing"),
    ("7", "product_name", "product_name: not valid text in the file's encoding"),
]


def write_malformed(path: Path) -> Path:
    """A UTF-8 order file with good rows and one row of each kind of fault.

    Line 7 carries a product name written in GBK (连衣裙), which is not valid UTF-8.
    """
    gbk_row = b"B-4,00046,2024-03-02,SKU-4," + "连衣裙".encode("gbk") + b",1,99.00\n"
    path.write_bytes(
        (HEADER + GOOD_ROWS + BAD_DATE + NEGATIVE_QUANTITY + MISSING_CUSTOMER).encode()
        + gbk_row
        + LAST_GOOD_ROW.encode()
    )
    return path


def test_good_rows_are_stored_and_each_bad_row_is_rejected_with_row_and_field(
    tmp_path: Path,
) -> None:
    # given a file with three good rows and four bad ones
    path = write_malformed(tmp_path / "orders.csv")
    rejects = tmp_path / "r.csv"

    # when it is imported without --strict
    with pytest.raises(CommandError, match=r"^4 rows rejected$") as raised:
        run_import("orders", path, "--rejects", str(rejects))

    # then the command exits non-zero
    assert raised.value.returncode == 1
    # and every good row is in the store with its exact values
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["G-1", "G-2"]
    assert sorted(Customer.objects.values_list("external_id", flat=True)) == ["00042", "00045"]
    first = Order.objects.get(external_id="G-1")
    assert first.customer.external_id == "00042"
    assert first.ordered_at == datetime(2024, 3, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    assert (first.status, first.channel, first.currency) == ("paid", "web", "CNY")
    assert (first.subtotal_amount, first.discount_amount, first.total_amount) == (
        Decimal("113.0000"),
        Decimal("0.0000"),
        Decimal("113.0000"),
    )
    assert list(
        first.lines.order_by("line_number").values_list(
            "line_key",
            "product__external_id",
            "product__name",
            "quantity",
            "unit_price_amount",
            "line_total_amount",
        )
    ) == [
        ("SKU-1#1", "SKU-1", "Green tea", 2, Decimal("12.5000"), Decimal("25.0000")),
        ("SKU-2#1", "SKU-2", "Teapot", 1, Decimal("88.0000"), Decimal("88.0000")),
    ]
    second = Order.objects.get(external_id="G-2")
    assert second.ordered_at == datetime(2024, 3, 2, 16, 0, tzinfo=UTC)  # 3 March in Shanghai
    assert second.total_amount == Decimal("21.0000")
    assert OrderLine.objects.count() == 3
    # and every bad row is in the rejects file with its line, field and reason
    rejected = read_rejects(rejects)
    assert [
        (row["reject_row"], row["reject_field"], row["reject_reason"][: len(expected)])
        for row, (_, _, expected) in zip(rejected, EXPECTED_REJECTS, strict=True)
    ] == EXPECTED_REJECTS
    # with its original values, for fixing and importing again
    assert [row["order_id"] for row in rejected] == ["B-1", "B-2", "B-3", "B-4"]
    assert rejected[1]["quantity"] == "-3"


def test_the_command_names_file_row_and_field_of_each_bad_row(tmp_path: Path) -> None:
    # given the malformed file
    path = write_malformed(tmp_path / "orders.csv")
    rejects = tmp_path / "r.csv"
    output = CommandOutput()

    # when it is imported
    with pytest.raises(CommandError):
        run_import("orders", path, "--rejects", str(rejects), output=output)

    # then each error is printed with file, row and field, and the summary follows
    assert output.stderr.splitlines() == [
        "orders.csv, row 4, ordered_at: not a date or time: 2024-02-30 09:00:00",
        "orders.csv, row 5, quantity: negative quantity: -3 (a return belongs in refund_amount)",
        "orders.csv, row 6, customer_id: missing",
        "orders.csv, row 7, product_name: not valid text in the file's encoding "
        "(save it as UTF-8 or pass --encoding)",
    ]
    assert "3 inserted, 0 updated, 0 unchanged, 4 rejected" in output.stdout
    assert f"Rejected rows with their reasons: {rejects}" in output.stdout


def test_strict_writes_nothing_into_an_empty_store(tmp_path: Path) -> None:
    # given an empty store and the malformed file
    path = write_malformed(tmp_path / "orders.csv")
    before = table_counts()
    assert set(before.values()) == {0}

    # when it is imported with --strict
    output = CommandOutput()
    with pytest.raises(CommandError, match=r"^4 rows rejected$"):
        run_import("orders", path, "--strict", "--rejects", str(tmp_path / "r.csv"), output=output)

    # then not one row of any table was written, and the output says so
    assert table_counts() == before
    assert "Nothing written (--strict)" in output.stdout
    assert len(read_rejects(tmp_path / "r.csv")) == 4


def test_strict_leaves_a_store_with_data_exactly_as_it_was(tmp_path: Path) -> None:
    # given a store that already holds orders, and a file that would change one of them
    existing = write_csv(
        tmp_path / "existing.csv",
        ["order_id", "customer_id", "ordered_at", "product_id", "quantity", "unit_price"],
        [["G-1", "00042", "2024-03-01 10:00:00", "SKU-1", "1", "12.50"]],
    )
    run_import("orders", existing, "--rejects", str(tmp_path / "r0.csv"))
    before = table_counts()
    snapshot_before = order_snapshot()
    path = write_malformed(tmp_path / "orders.csv")

    # when the malformed file is imported with --strict
    with pytest.raises(CommandError, match=r"^4 rows rejected$"):
        run_import("orders", path, "--strict", "--rejects", str(tmp_path / "r.csv"))

    # then every table has the same rows, and the existing order is untouched
    assert table_counts() == before
    assert order_snapshot() == snapshot_before


def test_strict_with_only_good_rows_imports_them(tmp_path: Path) -> None:
    # given a file of good rows only
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + GOOD_ROWS + LAST_GOOD_ROW, encoding="utf-8")

    # when it is imported with --strict
    output = run_import("orders", path, "--strict", "--rejects", str(tmp_path / "r.csv"))

    # then it is written in full
    assert "3 inserted, 0 updated, 0 unchanged, 0 rejected" in output.stdout
    assert OrderLine.objects.count() == 3


def test_a_missing_required_column_stops_the_import_naming_the_closest_column(
    tmp_path: Path,
) -> None:
    # given a file whose customer id column is misspelt
    path = tmp_path / "orders.csv"
    path.write_text(HEADER.replace("customer_id", "custmer_id") + GOOD_ROWS, encoding="utf-8")

    # when it is imported
    with pytest.raises(CommandError) as raised:
        run_import("orders", path, "--rejects", str(tmp_path / "r.csv"))

    # then the error names the missing column and the closest one present, and nothing is written
    assert str(raised.value) == (
        "orders.csv: required column 'customer_id' is missing; the closest column present is "
        "'custmer_id' (use --map custmer_id=customer_id)"
    )
    assert set(table_counts().values()) == {0}
    assert not (tmp_path / "r.csv").exists()


def test_a_file_without_quantity_or_line_total_is_refused(tmp_path: Path) -> None:
    # given an order file with neither quantity + unit_price nor line_total
    path = write_csv(
        tmp_path / "orders.csv",
        ["order_id", "customer_id", "ordered_at", "unit_price"],
        [["G-1", "00042", "2024-03-01", "12.50"]],
    )

    # when it is imported
    with pytest.raises(CommandError, match="need quantity \\+ unit_price or line_total columns"):
        run_import("orders", path, "--rejects", str(tmp_path / "r.csv"))

    # then nothing is written
    assert set(table_counts().values()) == {0}


def test_an_unknown_map_target_is_a_clear_error(tmp_path: Path) -> None:
    # given a good file
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + GOOD_ROWS, encoding="utf-8")

    # when a column is mapped to a target that is not a canonical column
    with pytest.raises(CommandError) as raised:
        run_import("orders", path, "--map", "unit_price=unit_prize")

    # then the error names the target, suggests the canonical column, and nothing is written
    message = str(raised.value)
    assert message.startswith(
        "--map unit_price=unit_prize: unit_prize is not a column of orders "
        "(did you mean unit_price?); the columns are order_id, customer_id, ordered_at"
    )
    assert set(table_counts().values()) == {0}


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("unit_price", "--map 'unit_price': write it as SOURCE=TARGET"),
        ("unitprice=unit_price", "--map unitprice=unit_price: no column 'unitprice'; "
         "the closest column present is 'unit_price'"),
    ],
)  # fmt: skip
def test_a_malformed_or_dangling_map_is_a_clear_error(
    tmp_path: Path, pair: str, message: str
) -> None:
    # given a good file
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + GOOD_ROWS, encoding="utf-8")

    # when the mapping is malformed or names a column the file does not have
    with pytest.raises(CommandError) as raised:
        run_import("orders", path, "--map", pair)

    # then the error says what is wrong
    assert str(raised.value) == message
    assert set(table_counts().values()) == {0}


def test_a_gbk_file_imports_with_its_encoding_named(tmp_path: Path) -> None:
    # given a file saved in GBK, as Chinese spreadsheet software often does
    path = tmp_path / "orders.csv"
    path.write_bytes((HEADER + "G-1,00042,2024-03-01,SKU-9,连衣裙,1,199.00\n").encode("gbk"))

    # when it is imported with --encoding gbk
    output = run_import("orders", path, "--encoding", "gbk", "--rejects", str(tmp_path / "r.csv"))

    # then the text arrives intact
    assert "1 inserted" in output.stdout
    line = OrderLine.objects.select_related("product").get()
    assert line.product is not None
    assert line.product.name == "连衣裙"
