"""Access and portability: everything Patron holds on one customer, as a zip.

:func:`export_customer` returns a zip with ``customer.json`` (every section, plus a
description of the format and the registry of personal fields) and one CSV per section
(``profile.csv``, ``orders.csv`` ...). Values are decrypted: it is the customer's own data,
handed to them. Every column of every row is exported as stored, so a field added to a table
later is exported without a change here; ``*_index`` columns are keyed hashes, meaningless
outside Patron, exported for completeness. Audit-logging the export and recording the request
is :mod:`patron.privacy.requests`'s job.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone

from patron.analytics.models import CustomerAnalysis
from patron.customers.models import Customer, CustomerIdentity, CustomerMerge
from patron.loyalty.models import (
    CareGrant,
    Coupon,
    CouponRedemption,
    LedgerTransaction,
    Member,
    PointBalance,
    PointLot,
    Posting,
    Referral,
    RewardRedemption,
    TierChange,
)
from patron.orders.models import Event, Order, OrderLine, Refund, RefundLine
from patron.privacy.models import ConsentEvent, ConsentState, PrivacyRequest
from patron.privacy.registry import PERSONAL_FIELDS
from patron.recommend.models import Recommendation, RecommendationFeedback

EXPORT_FORMAT = "patron-customer-export/1"
JSON_NAME = "customer.json"


@dataclass(frozen=True)
class ExportSection:
    """One table of the export: its name (the CSV's name) and the rows of the customer."""

    name: str
    description: str
    rows: Callable[[Customer], models.QuerySet[Any]]


SECTIONS: tuple[ExportSection, ...] = (
    ExportSection("profile", "the customer's profile", lambda c: Customer.objects.filter(pk=c.pk)),
    ExportSection(
        "identities",
        "identifiers that name the customer (e-mail, phone, devices, the shop's ids)",
        lambda c: CustomerIdentity.objects.filter(customer=c),
    ),
    ExportSection(
        "merges",
        "duplicate records merged into this customer",
        lambda c: CustomerMerge.objects.filter(survivor=c),
    ),
    ExportSection("orders", "orders", lambda c: Order.objects.filter(customer=c)),
    ExportSection(
        "order_lines", "order lines", lambda c: OrderLine.objects.filter(order__customer=c)
    ),
    ExportSection(
        "refunds", "refunds and returns", lambda c: Refund.objects.filter(order__customer=c)
    ),
    ExportSection(
        "refund_lines",
        "refunded lines",
        lambda c: RefundLine.objects.filter(refund__order__customer=c),
    ),
    ExportSection(
        "events",
        "behaviour events (views, searches, carts)",
        lambda c: Event.objects.filter(customer=c),
    ),
    ExportSection(
        "memberships", "loyalty memberships", lambda c: Member.objects.filter(customer=c)
    ),
    ExportSection(
        "tier_changes", "tier history", lambda c: TierChange.objects.filter(member__customer=c)
    ),
    ExportSection(
        "points_transactions",
        "points ledger transactions",
        lambda c: LedgerTransaction.objects.filter(member__customer=c),
    ),
    ExportSection(
        "points_postings",
        "points ledger postings",
        lambda c: Posting.objects.filter(member__customer=c),
    ),
    ExportSection(
        "point_lots",
        "earned points and their expiry",
        lambda c: PointLot.objects.filter(member__customer=c),
    ),
    ExportSection(
        "point_balances",
        "points balances",
        lambda c: PointBalance.objects.filter(member__customer=c),
    ),
    ExportSection("coupons", "coupon codes given", lambda c: Coupon.objects.filter(customer=c)),
    ExportSection(
        "coupon_redemptions",
        "coupons used",
        lambda c: CouponRedemption.objects.filter(customer=c),
    ),
    ExportSection(
        "reward_redemptions",
        "rewards redeemed",
        lambda c: RewardRedemption.objects.filter(member__customer=c),
    ),
    ExportSection(
        "referrals",
        "referrals made or received",
        lambda c: Referral.objects.filter(Q(referrer__customer=c) | Q(referee__customer=c)),
    ),
    ExportSection(
        "care_grants",
        "birthday and anniversary points",
        lambda c: CareGrant.objects.filter(member__customer=c),
    ),
    ExportSection(
        "recommendations",
        "products recommended",
        lambda c: Recommendation.objects.filter(customer=c),
    ),
    ExportSection(
        "recommendation_feedback",
        "reactions to recommendations",
        lambda c: RecommendationFeedback.objects.filter(customer=c),
    ),
    ExportSection(
        "consents",
        "current consent per purpose and channel",
        lambda c: ConsentState.objects.filter(customer=c),
    ),
    ExportSection(
        "consent_events",
        "every consent decision",
        lambda c: ConsentEvent.objects.filter(customer=c),
    ),
    ExportSection(
        "scores",
        "analytics scores (RFM, value, CLV, churn) per analysis run",
        lambda c: CustomerAnalysis.objects.filter(customer=c),
    ),
    ExportSection(
        "privacy_requests",
        "the customer's data subject requests",
        lambda c: PrivacyRequest.objects.filter(customer=c),
    ),
)

#: Parts of the platform that hold nothing yet, named so the customer knows they were looked at.
NOT_YET_HELD = {
    "tickets": "Patron has no customer service tickets yet (the service app is not built).",
}


def _plain(value: Any) -> Any:
    """A JSON-ready form of a stored value (money and ids as text, times in ISO 8601)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value


def section_rows(section: ExportSection, customer: Customer) -> list[dict[str, Any]]:
    """The section's rows of ``customer``: every concrete column (``attname``: foreign keys
    as ``<name>_id``), decrypted, ordered by primary key."""
    queryset = section.rows(customer)
    columns = [field.attname for field in queryset.model._meta.concrete_fields]
    return [
        {column: _plain(row[column]) for column in columns}
        for row in queryset.order_by("pk").values(*columns)
    ]


def customer_data(customer: Customer) -> dict[str, Any]:
    """Everything Patron holds on ``customer``, as the JSON document of the export."""
    return {
        "format": EXPORT_FORMAT,
        "generated_at": timezone.now().isoformat(),
        "customer_id": customer.external_id,
        "sections": {section.name: section_rows(section, customer) for section in SECTIONS},
        "section_descriptions": {section.name: section.description for section in SECTIONS},
        "not_held": NOT_YET_HELD,
        "personal_data_fields": [
            {
                "table": entry.model,
                "field": entry.field,
                "section": entry.section,
                "holds": entry.holds,
            }
            for entry in PERSONAL_FIELDS
        ],
    }


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row[column]) for column in columns])
    # The BOM makes Excel (common in Chinese offices) read UTF-8 names correctly.
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def export_customer(customer: Customer) -> bytes:
    """A zip of everything Patron holds on ``customer``: ``customer.json`` and one CSV per
    section (header row even when the section is empty)."""
    data = customer_data(customer)
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(JSON_NAME, json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False))
        for section in SECTIONS:
            columns = [
                field.attname for field in section.rows(customer).model._meta.concrete_fields
            ]
            archive.writestr(f"{section.name}.csv", _csv(data["sections"][section.name], columns))
    return output.getvalue()


def read_export(archive: bytes) -> dict[str, Any]:
    """The JSON document of an export zip (for tests and tools reading an export back)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        document: dict[str, Any] = json.loads(opened.read(JSON_NAME))
    return document
