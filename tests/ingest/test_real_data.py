"""The two real transaction logs of the issue, imported through ``patron import orders``.

Every expected figure is computed here, independently of the importer, from the file itself.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import CommandError
from django.db.models import Sum

from patron.catalog.models import Product
from patron.customers.models import Customer
from patron.orders.models import Order, OrderLine
from tests.ingest.helpers import cents, read_rejects, run_import, table_counts

pytestmark = [pytest.mark.slow, pytest.mark.shared_data, pytest.mark.django_db]

CDNOW_MAP = (
    "--map", "customer=customer_id",
    "--map", "date=ordered_at",
    "--map", "number_of_cds=quantity",
    "--map", "dollar_value=line_total",
    "--map", "order=order_id",
    "--currency", "USD",
)  # fmt: skip
RETAIL_MAP = (
    "--map", "InvoiceNo=order_id",
    "--map", "StockCode=product_id",
    "--map", "Description=product_name",
    "--map", "Quantity=quantity",
    "--map", "InvoiceDate=ordered_at",
    "--map", "UnitPrice=unit_price",
    "--map", "CustomerID=customer_id",
    "--currency", "GBP",
    "--time-zone", "Europe/London",
)  # fmt: skip


@dataclass(frozen=True)
class CdnowFacts:
    """What the CDNOW log holds, computed with plain Python."""

    lines: int
    customers: int
    orders: int
    revenue: Decimal


def cdnow_to_csv(source: Path, target: Path) -> CdnowFacts:
    """Turn the whitespace-separated CDNOW log into CSV with an ``order`` column.

    CDNOW has no order id, and one customer's rows of one day are one purchase occasion: the
    standard BTYD treatment (Fader, Hardie & Lee 2005) counts them as one transaction, so
    the order id is ``customer_id-date``.
    """
    customers: set[str] = set()
    orders: set[str] = set()
    revenue = Decimal(0)
    lines = 0
    with source.open(encoding="ascii") as lines_in, target.open("w", newline="") as out:
        writer = csv.writer(out)
        header = next(lines_in).split()
        assert header == ["customer_id", "date", "number_of_cds", "dollar_value"]
        writer.writerow(["customer", "date", "number_of_cds", "dollar_value", "order"])
        for line in lines_in:
            customer, date, cds, dollars = line.split()
            order = f"{customer}-{date}"
            writer.writerow([customer, date, cds, dollars, order])
            customers.add(customer)
            orders.add(order)
            revenue += Decimal(dollars)
            lines += 1
    return CdnowFacts(lines=lines, customers=len(customers), orders=len(orders), revenue=revenue)


def store_revenue() -> tuple[Decimal, Decimal]:
    """Sum of the orders' totals and sum of the lines' totals, in cents."""
    orders = Order.objects.aggregate(total=Sum("total_amount"))["total"]
    lines = OrderLine.objects.aggregate(total=Sum("line_total_amount"))["total"]
    return cents(orders), cents(lines)


def test_cdnow_imports_with_the_counts_and_revenue_of_the_file(
    shared_data: Path, tmp_path: Path
) -> None:
    # given the CDNOW master log as CSV, and its figures computed independently
    path = tmp_path / "cdnow.csv"
    facts = cdnow_to_csv(shared_data / "cdnow" / "CDNOW_master.txt", path)
    assert facts.customers == 23_570  # the published number of the CDNOW cohort
    rejects = tmp_path / "r.csv"

    # when it is imported
    output = run_import("orders", path, *CDNOW_MAP, "--rejects", str(rejects))

    # then the store holds exactly the file's customers, orders, lines and revenue
    assert f"{facts.lines} inserted, 0 updated, 0 unchanged, 0 rejected" in output.stdout
    assert Customer.objects.count() == facts.customers
    assert Order.objects.count() == facts.orders
    assert OrderLine.objects.count() == facts.lines
    assert store_revenue() == (cents(facts.revenue), cents(facts.revenue))
    assert set(Order.objects.values_list("currency", flat=True).distinct()) == {"USD"}
    assert not rejects.exists()
    # ids keep their leading zeros, and YYYYMMDD dates are days in the shop's time zone
    first = Order.objects.select_related("customer").get(external_id="00001-19970101")
    assert first.customer.external_id == "00001"
    assert first.ordered_at == datetime(1996, 12, 31, 16, 0, tzinfo=UTC)
    assert first.total_amount == Decimal("11.7700")
    counts = table_counts()

    # when the same file is imported again
    output = run_import("orders", path, *CDNOW_MAP, "--rejects", str(rejects))

    # then nothing is inserted or changed
    assert f"0 inserted, 0 updated, {facts.lines} unchanged, 0 rejected" in output.stdout
    assert table_counts() == counts
    assert store_revenue() == (cents(facts.revenue), cents(facts.revenue))


@dataclass(frozen=True)
class RetailFacts:
    """What the Online Retail file holds, computed with plain Python."""

    lines: int
    stored_lines: int
    revenue: Decimal
    orders: int
    customers: int
    products: int
    rejected_fields: dict[int, set[str]]  # line number -> fields the importer must name


def retail_facts(path: Path) -> RetailFacts:
    """Which lines the store can take and which it must reject (with the field to blame).

    A line is refused when it has no CustomerID (an order belongs to a customer), a negative
    Quantity (the C-invoices: cancellations) or a negative UnitPrice (bad-debt adjustments).
    """
    rejected: dict[int, set[str]] = {}
    revenue = Decimal(0)
    orders: set[str] = set()
    customers: set[str] = set()
    products: set[str] = set()
    lines = 0
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        # The header is line 1 of the file, so the first record is line 2.
        for line_number, row in enumerate(csv.DictReader(handle), start=2):
            lines += 1
            fields: set[str] = set()
            if not row["CustomerID"].strip():
                fields.add("customer_id")
            if int(row["Quantity"]) < 0:
                fields.add("quantity")
            if Decimal(row["UnitPrice"]) < 0:
                fields.add("unit_price")
            if fields:
                rejected[line_number] = fields
                continue
            revenue += int(row["Quantity"]) * Decimal(row["UnitPrice"])
            orders.add(row["InvoiceNo"])
            customers.add(row["CustomerID"])
            products.add(row["StockCode"])
    return RetailFacts(
        lines=lines,
        stored_lines=lines - len(rejected),
        revenue=revenue,
        orders=len(orders),
        customers=len(customers),
        products=len(products),
        rejected_fields=rejected,
    )


def test_online_retail_stores_every_good_line_and_rejects_the_rest_with_reasons(
    shared_data: Path, tmp_path: Path
) -> None:
    # given the Online Retail file and what it holds
    path = shared_data / "online_retail" / "online_retail.csv.gz"
    facts = retail_facts(path)
    assert facts.lines == 541_909
    rejects = tmp_path / "r.csv"

    # when it is imported with a mapping; cancellations and anonymous lines are rejected
    with pytest.raises(CommandError, match=f"^{len(facts.rejected_fields)} rows rejected$"):
        run_import("orders", path, *RETAIL_MAP, "--rejects", str(rejects))

    # then every line is either in the store or in the rejects file, never both
    rejected_rows = read_rejects(rejects)
    rejected_fields = {
        int(row["reject_row"]): set(row["reject_field"].split("; ")) for row in rejected_rows
    }
    assert len(rejected_rows) == len(rejected_fields)  # one rejects line per bad input line
    assert rejected_fields == facts.rejected_fields
    assert OrderLine.objects.count() == facts.lines - len(rejected_fields) == facts.stored_lines
    # each reason starts with the field it blames
    for row in rejected_rows:
        for field, reason in zip(
            row["reject_field"].split("; "), row["reject_reason"].split("; "), strict=True
        ):
            assert reason.startswith(f"{field}: ")
    # the original columns travel with the rejected line
    cancellation = next(row for row in rejected_rows if row["InvoiceNo"].startswith("C"))
    assert cancellation["reject_field"] in {"quantity", "customer_id; quantity"}
    assert int(cancellation["Quantity"]) < 0
    # and the stored lines are the accepted ones, with their revenue
    assert Order.objects.count() == facts.orders
    assert Customer.objects.count() == facts.customers
    assert Product.objects.count() == facts.products
    orders_total, lines_total = store_revenue()
    assert lines_total == orders_total == cents(facts.revenue)
    # a December invoice time in London is the same time in UTC
    first = Order.objects.select_related("customer").get(external_id="536365")
    assert first.ordered_at == datetime(2010, 12, 1, 8, 26, tzinfo=UTC)
    assert first.customer.external_id == "17850"
    assert first.currency == "GBP"
