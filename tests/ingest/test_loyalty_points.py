"""Imported and ingested orders flow into the points ledger: paid orders earn, refunds and
cancellations take back, re-imports change nothing, and nothing happens without a programme,
with ``--no-points`` or when a strict import is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from patron.api.tokens import create_token
from patron.loyalty.models import LedgerTransaction, Member, Programme
from patron.loyalty.programme import configure_programme, get_programme
from patron.loyalty.selectors import member_balances
from tests.ingest.helpers import CommandOutput, run_import, write_csv
from tests.loyalty.points_helpers import assert_ledger_consistent, ledger_size

pytestmark = pytest.mark.django_db

HEADER = [
    "order_id",
    "customer_id",
    "ordered_at",
    "product_id",
    "quantity",
    "unit_price",
    "status",
    "refund_amount",
    "refunded_at",
]
ROWS = [
    ["O-1", "00042", "2026-03-01 10:00:00", "SKU-1", "2", "50.00", "paid", "", ""],
    ["O-1", "00042", "2026-03-01 10:00:00", "SKU-2", "1", "88.00", "paid", "", ""],
    ["O-2", "00042", "2026-03-02 11:00:00", "SKU-1", "1", "50.00", "delivered", "", ""],
    ["O-3", "00043", "2026-03-02 12:00:00", "SKU-1", "3", "50.00", "placed", "", ""],
    ["O-4", "00043", "2026-03-03 09:00:00", "SKU-2", "1", "88.00", "cancelled", "", ""],
]


@pytest.fixture
def programme() -> Programme:
    return configure_programme(get_programme(), pending_days=15, points_per_unit=1)


def _import(tmp_path: Path, name: str, rows: list[list[str]], *extra: str) -> CommandOutput:
    path = write_csv(tmp_path / name, HEADER, rows)
    return run_import("orders", path, "--rejects", str(tmp_path / "rejects.csv"), *extra)


def _points(customer_id: str) -> tuple[int, int]:
    """Available and lifetime points (March orders are past their return window now)."""
    member = Member.objects.get(customer__external_id=customer_id)
    balances = assert_ledger_consistent(member)
    return balances.available, balances.lifetime_earned


def test_paid_orders_of_an_import_earn_and_a_second_import_changes_nothing(
    tmp_path: Path, programme: Programme
) -> None:
    # when the orders are imported with a programme set up
    output = _import(tmp_path, "orders.csv", ROWS)

    # then the paid and delivered orders earned; placed and cancelled ones did not
    assert "Loyalty points: 2 orders earned 238 points" in output.stdout
    assert _points("00042") == (238, 238)
    assert not Member.objects.filter(customer__external_id="00043").exists()
    size = ledger_size()

    # when the same file is imported again
    again = _import(tmp_path, "orders.csv", ROWS)

    # then no order was written, so no points moved
    assert "0 inserted, 0 updated, 5 unchanged" in again.stdout
    assert "Loyalty points: 0 orders earned 0 points" in again.stdout
    assert ledger_size() == size


def test_a_later_refund_and_its_growth_take_back_points_once(
    tmp_path: Path, programme: Programme
) -> None:
    _import(tmp_path, "orders.csv", ROWS)
    refunded = [[*row[:7], "30.00", "2026-03-05 12:00:00"] for row in ROWS[:2]]

    first = _import(tmp_path, "refund.csv", refunded)
    grown = [[*row[:7], "50.00", "2026-03-06 12:00:00"] for row in ROWS[:2]]
    second = _import(tmp_path, "grown.csv", grown)
    size = ledger_size()
    third = _import(tmp_path, "grown.csv", grown)

    assert "1 refunds or cancellations took back 30" in first.stdout
    assert "1 refunds or cancellations took back 20" in second.stdout
    assert "0 refunds or cancellations took back 0" in third.stdout
    assert ledger_size() == size
    assert _points("00042") == (238 - 50, 238 - 50)


def test_an_order_cancelled_by_a_later_import_gives_its_points_back(
    tmp_path: Path, programme: Programme
) -> None:
    _import(tmp_path, "orders.csv", ROWS)
    cancelled = [[*row[:6], "cancelled", "", ""] for row in ROWS[2:3]]

    output = _import(tmp_path, "cancel.csv", cancelled)

    assert "1 refunds or cancellations took back 50" in output.stdout
    assert _points("00042") == (188, 188)
    entry = LedgerTransaction.objects.get(kind="refund")
    assert entry.reason == "cancellation of order O-2 of 50.0000: 50 of 50 points"


def test_without_a_programme_an_import_writes_no_points(tmp_path: Path) -> None:
    output = _import(tmp_path, "orders.csv", ROWS)

    assert "Loyalty points: no active loyalty programme: no points" in output.stdout
    assert not Programme.objects.exists()
    assert not Member.objects.exists()


def test_no_points_imports_the_orders_alone(tmp_path: Path, programme: Programme) -> None:
    output = _import(tmp_path, "orders.csv", ROWS, "--no-points")

    assert "5 inserted" in output.stdout
    assert "Loyalty points" not in output.stdout
    assert ledger_size() == (0, 0, 0, 0)

    # a later sync catches up with them
    run = CommandOutput()
    call_command("loyalty", "sync-orders", stdout=run.stdout_buffer)
    assert "2 orders earned 238 points" in run.stdout


def test_a_refused_strict_import_writes_no_points(tmp_path: Path, programme: Programme) -> None:
    bad = [*ROWS, ["O-9", "", "2026-03-03 09:00:00", "SKU-2", "1", "88.00", "paid", "", ""]]

    with pytest.raises(CommandError, match="1 rows rejected"):
        _import(tmp_path, "bad.csv", bad, "--strict")

    assert ledger_size() == (0, 0, 0, 0)
    assert not Member.objects.exists()


def test_orders_ingested_through_the_api_earn_and_report_their_points(
    client: Client, programme: Programme
) -> None:
    _, token = create_token(User.objects.create_user("shop-sync"), "sync")
    bearer = {"Authorization": f"Bearer {token}"}
    records = [dict(zip(HEADER, row, strict=True)) for row in ROWS]

    response = client.post(
        "/api/v1/ingest/orders", json.dumps(records), content_type="application/json",
        headers=bearer,
    )  # fmt: skip

    assert response.status_code == 200
    assert response.json()["points"] == {
        "orders_earned": 2,
        "points_earned": 238,
        "reversals": 0,
        "points_reversed": 0,
        "coupon_uses_released": 0,
        "skipped": {},
        "problems": [],
    }
    member = Member.objects.get(customer__external_id="00042")
    assert member_balances(member).available == 238
