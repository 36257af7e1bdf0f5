"""The canonical columns of each kind of record (documented in docs/data-formats.md)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RecordKind(StrEnum):
    """What a file or API call imports."""

    CUSTOMERS = "customers"
    PRODUCTS = "products"
    ORDERS = "orders"
    EVENTS = "events"


@dataclass(frozen=True)
class Schema:
    """Canonical columns of one kind: ``required`` must be present (after ``--map``),
    ``one_of_groups`` lists alternatives of which at least one group must be present."""

    columns: tuple[str, ...]
    required: tuple[str, ...]
    one_of_groups: tuple[tuple[str, ...], ...] = ()


SCHEMAS: dict[RecordKind, Schema] = {
    RecordKind.CUSTOMERS: Schema(
        columns=(
            "customer_id",
            "name",
            "email",
            "phone",
            "birthday",
            "address",
            "gender",
            "province",
            "city",
            "signup_channel",
            "signed_up_at",
            "tags",
        ),
        required=("customer_id",),
    ),
    RecordKind.PRODUCTS: Schema(
        columns=(
            "product_id",
            "sku",
            "name",
            "category",
            "brand",
            "price",
            "currency",
            "attributes",
            "is_active",
        ),
        required=("product_id",),
    ),
    RecordKind.ORDERS: Schema(
        columns=(
            "order_id",
            "customer_id",
            "ordered_at",
            "line_id",
            "product_id",
            "product_name",
            "quantity",
            "unit_price",
            "line_total",
            "currency",
            "status",
            "channel",
            "discount",
            "coupon_code",
            "refund_amount",
            "refunded_at",
            "refund_reason",
        ),
        required=("order_id", "customer_id", "ordered_at"),
        one_of_groups=(("quantity", "unit_price"), ("line_total",)),
    ),
    RecordKind.EVENTS: Schema(
        columns=(
            "event_id",
            "customer_id",
            "device_id",
            "event_type",
            "occurred_at",
            "product_id",
            "channel",
            "properties",
        ),
        required=("event_type", "occurred_at"),
        one_of_groups=(("customer_id",), ("device_id",)),
    ),
}

#: Largest number of records one API call may carry.
MAX_API_RECORDS = 10_000
