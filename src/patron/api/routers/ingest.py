"""``/api/v1/ingest/{customers,products,orders,events}``: import a JSON list of records.

The body is read and checked here (a JSON list of objects, at most 10,000) before the importer
sees it, so that a wrong body gets a clear 422 or 413 rather than a half-read import.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema

from patron.api.auth import requires_permission, requires_scope
from patron.api.choices import ScopeChoices
from patron.api.errors import ApiError, ErrorOut, ValidationErrorOut
from patron.core.roles import ApiPermissionChoices
from patron.ingest.schemas import MAX_API_RECORDS
from patron.ingest.services import (
    ImportFileError,
    ImportOptions,
    ImportSummary,
    OrderPointsSync,
    RecordKind,
    import_records,
)

router = Router(tags=["ingest"])

#: The largest body read: 10,000 generous records. Django's own cap
#: (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB) is too small for a full batch, so the body is read
#: from the stream with this limit instead.
MAX_BODY_BYTES = 64 * 1024 * 1024

_COLUMNS: dict[RecordKind, str] = {
    RecordKind.CUSTOMERS: (
        "customer_id (required), name, email, phone, birthday, address, gender, province, "
        "city, signup_channel, signed_up_at, tags (name, email, phone, birthday and address "
        "are stored encrypted)"
    ),
    RecordKind.PRODUCTS: (
        "product_id (required), name, category, brand, price, currency, attributes"
    ),
    RecordKind.ORDERS: (
        "one record per order line: order_id, customer_id, ordered_at (required), product_id, "
        "quantity + unit_price or line_total; optional currency, status, channel, discount, "
        "coupon_code, product_name, refund_amount, refunded_at, refund_reason"
    ),
    RecordKind.EVENTS: (
        "event_id, customer_id or device_id, event_type, occurred_at, product_id, channel, "
        "properties"
    ),
}


class RowErrorOut(Schema):
    """A rejected record: its 1-based position in the list, the field, and why."""

    row: int
    field: str
    reason: str


class PointsSummaryOut(Schema):
    """What the loyalty ledger did with the orders written (see docs/loyalty.md#imports)."""

    orders_earned: int
    points_earned: int
    reversals: int
    points_reversed: int
    coupon_uses_released: int
    skipped: dict[str, int]
    problems: list[str]


class IngestSummaryOut(Schema):
    """What the import did. Importing the same records again inserts nothing. ``points`` is
    set for orders when a loyalty programme is active."""

    inserted: int
    updated: int
    unchanged: int
    rejected: int
    ignored_columns: list[str]
    errors: list[RowErrorOut]
    points: PointsSummaryOut | None = None


class RejectedRecordsOut(ErrorOut):
    """The body of a strict import refused because some records are bad."""

    errors: list[RowErrorOut]


def _row_errors(summary: ImportSummary) -> list[dict[str, Any]]:
    return [
        {"row": error.row, "field": error.field, "reason": error.reason} for error in summary.errors
    ]


def _json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {dict: "object", list: "list", str: "string"}
    return names.get(type(value), type(value).__name__)


def _body_error(message: str, field: str = "body", error_type: str = "invalid") -> ApiError:
    field_error = {"location": "body", "field": field, "message": message, "type": error_type}
    return ApiError(422, "invalid_request", message, errors=[field_error])


def read_records(request: HttpRequest) -> list[dict[str, Any]]:
    """The request body as a list of JSON objects, or an :class:`ApiError` saying what is
    wrong with it (413 past 10,000 records)."""
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"The body is over {MAX_BODY_BYTES:,} bytes.")
    raw = request.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"The body is over {MAX_BODY_BYTES:,} bytes.")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        message = f"The body is not valid JSON: {error}"
        raise _body_error(message, error_type="json_invalid") from error
    if not isinstance(body, list):
        raise _body_error(
            f"The body must be a JSON list of records (objects), not {_json_type(body)}.",
            error_type="list_type",
        )
    if len(body) > MAX_API_RECORDS:
        raise ApiError(
            413,
            "payload_too_large",
            f"{len(body):,} records in one call; send at most {MAX_API_RECORDS:,} per call.",
        )
    for index, record in enumerate(body):
        if not isinstance(record, dict):
            raise _body_error(
                f"Record {index + 1} is {_json_type(record)}, not an object.",
                field=f"[{index}]",
                error_type="dict_type",
            )
    return body


def _import(request: HttpRequest, kind: RecordKind, strict: bool) -> dict[str, Any]:
    records = read_records(request)
    try:
        summary = import_records(kind, records, options=ImportOptions(source="api", strict=strict))
    except ImportFileError as error:
        # The batch as a whole is at fault (no records, a required column missing).
        raise _body_error(str(error).removeprefix("api: ")) from error
    if not summary.written:
        raise ApiError(
            422,
            "invalid_records",
            f"{summary.rejected} of {summary.total} records are invalid; "
            "nothing was written (strict=true).",
            errors=_row_errors(summary),
        )
    return {
        "inserted": summary.inserted,
        "updated": summary.updated,
        "unchanged": summary.unchanged,
        "rejected": summary.rejected,
        "ignored_columns": summary.ignored_columns,
        "errors": _row_errors(summary),
        "points": _points(summary.points),
    }


def _points(sync: OrderPointsSync | None) -> dict[str, Any] | None:
    if sync is None or sync.programme is None:
        return None
    return {
        "orders_earned": sync.earned,
        "points_earned": sync.points_earned,
        "reversals": sync.reversed,
        "points_reversed": sync.points_reversed,
        "coupon_uses_released": sync.coupons_released,
        "skipped": sync.skipped,
        "problems": sync.problems,
    }


def _request_body_schema(kind: RecordKind) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "maxItems": MAX_API_RECORDS,
                        "items": {"type": "object", "additionalProperties": True},
                        "description": f"Records with the canonical columns: {_COLUMNS[kind]}.",
                    }
                }
            },
        }
    }


def _add_ingest_operation(kind: RecordKind) -> None:
    def ingest(
        request: HttpRequest,
        strict: bool = Query(False, description="Write nothing if any record is bad (422)"),
    ) -> dict[str, Any]:
        return _import(request, kind, strict)

    # ninja names the operation (and its URL) after the function.
    ingest.__name__ = f"ingest_{kind.value}"
    ingest.__doc__ = (
        f"Import up to {MAX_API_RECORDS:,} {kind.value} records (a JSON list of objects). "
        "Records already in the store are left unchanged or updated; bad ones are rejected "
        "with their row (1-based position), field and reason."
    )
    decorate: Callable[[Any], Any] = router.post(
        f"/{kind.value}",
        response={
            200: IngestSummaryOut,
            401: ErrorOut,
            403: ErrorOut,
            413: ErrorOut,
            422: RejectedRecordsOut | ValidationErrorOut,
        },
        summary=f"Import {kind.value}",
        openapi_extra=_request_body_schema(kind),
    )
    decorate(
        requires_scope(ScopeChoices.INGEST)(
            requires_permission(ApiPermissionChoices.INGEST_WRITE)(ingest)
        )
    )


for _kind in RecordKind:
    _add_ingest_operation(_kind)
