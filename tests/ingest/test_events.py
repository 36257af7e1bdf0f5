"""Behaviour events: ids derived when absent, and importing again changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from patron.orders.models import Event
from tests.ingest.helpers import run_import, table_counts, write_csv

pytestmark = pytest.mark.django_db

HEADER = ["customer_id", "device_id", "event_type", "occurred_at", "product_id", "properties"]
ROWS = [
    ["00042", "", "view", "2024-03-01T10:00:00+08:00", "SKU-1", '{"page": "home"}'],
    ["00042", "", "Add_To_Cart", "2024-03-01T02:01:00Z", "SKU-1", ""],
    ["", "dev-9", "search", "2024-03-01 10:02:00", "", '{"query": "绿茶"}'],
]


def test_events_without_ids_import_once(tmp_path: Path) -> None:
    # given an event file without event ids, with times in several notations
    path = write_csv(tmp_path / "events.csv", HEADER, ROWS)

    # when it is imported twice
    first = run_import("events", path, "--rejects", str(tmp_path / "r.csv"))
    counts = table_counts()
    second = run_import("events", path, "--rejects", str(tmp_path / "r.csv"))

    # then the events are stored once, with their values, and the second run changes nothing
    assert "3 inserted, 0 updated, 0 unchanged, 0 rejected" in first.stdout
    assert "0 inserted, 0 updated, 3 unchanged, 0 rejected" in second.stdout
    assert table_counts() == counts
    events = Event.objects.select_related("customer", "product").order_by("occurred_at")
    assert [
        (
            event.customer.external_id if event.customer else None,
            event.device_id,
            event.event_type,
            event.occurred_at,
            event.product.external_id if event.product else None,
            event.properties,
        )
        for event in events
    ] == [
        ("00042", "", "view", datetime(2024, 3, 1, 2, 0, tzinfo=UTC), "SKU-1", {"page": "home"}),
        ("00042", "", "add_to_cart", datetime(2024, 3, 1, 2, 1, tzinfo=UTC), "SKU-1", {}),
        (None, "dev-9", "search", datetime(2024, 3, 1, 2, 2, tzinfo=UTC), None, {"query": "绿茶"}),
    ]
    assert all(event.external_id.startswith("derived:") for event in events)
