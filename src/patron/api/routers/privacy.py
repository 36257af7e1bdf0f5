"""``/api/v1/customers/{external_id}/consents``: a customer's consent per purpose and channel
with its history, and recording grants and withdrawals (mounted at the API's root)."""

from __future__ import annotations

from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import AwareDatetime

from patron.api.auth import requires_scope
from patron.api.choices import ScopeChoices
from patron.api.errors import ApiError, ErrorOut, ValidationErrorOut
from patron.api.schemas import ShopDateTime
from patron.api.shortcuts import invalid_request
from patron.customers.models import Customer
from patron.customers.selectors import get_customer
from patron.privacy.audit import request_actor
from patron.privacy.consent import (
    ConsentError,
    consent_history,
    current_consents,
    record_consent,
)
from patron.privacy.models import ConsentEvent

router = Router(tags=["privacy"])

MAX_CHANGES = 20
HISTORY_SHOWN = 200
_ERRORS: dict[int, type[Schema]] = {
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    422: ValidationErrorOut,
}

Purpose = Literal["marketing", "personalisation", "analytics"]
Channel = Literal["email", "sms", "wechat", "app_push"]
Source = Literal["api", "dashboard", "import", "checkout", "member_portal"]


class ConsentStatusOut(Schema):
    """The customer's current consent for one purpose and channel."""

    purpose: str = Field(examples=["marketing"])
    channel: str | None = Field(description="Null for purposes not given per channel")
    granted: bool
    is_default: bool = Field(
        description="True when the customer has not decided: the purpose's default applies "
        "(marketing: not granted; personalisation and analytics: PATRON_CONSENT_DEFAULTS)"
    )
    decided_at: ShopDateTime | None = Field(description="When the customer decided")
    source: str | None = Field(examples=["checkout"])
    wording_version: str | None = Field(description="The consent text the customer saw")


class ConsentEventOut(Schema):
    """One recorded decision (the history is append-only)."""

    id: int
    purpose: str
    channel: str | None
    granted: bool
    decided_at: ShopDateTime
    recorded_at: ShopDateTime
    source: str
    source_event_id: str | None
    wording_version: str | None
    recorded_by: str | None = Field(
        description="The staff user or the API token's prefix that recorded it"
    )


class ConsentsOut(Schema):
    """A customer's consent now and every decision behind it, the latest first."""

    customer_id: str
    consents: list[ConsentStatusOut]
    history: list[ConsentEventOut] = Field(description=f"At most {HISTORY_SHOWN} decisions")


class ConsentChangeIn(Schema):
    """One grant or withdrawal."""

    purpose: Purpose
    channel: Channel | None = Field(
        default=None, description="Required for marketing, absent for the other purposes"
    )
    granted: bool = Field(description="true: the customer grants; false: withdraws")
    wording_version: str = Field(
        default="",
        max_length=64,
        description="Version of the consent text the customer agreed to (required to grant)",
        examples=["privacy-2025-06"],
    )
    source: Source = Field(default="api", description="Where the decision was collected")
    source_event_id: str = Field(
        default="",
        max_length=128,
        description="The source's id of the decision: sent twice, recorded once",
    )
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When the customer decided (default: now)"
    )


class ConsentChangesIn(Schema):
    """Decisions of one customer, recorded together (all or none)."""

    changes: list[ConsentChangeIn] = Field(min_length=1, max_length=MAX_CHANGES)


class RecordedConsentOut(ConsentEventOut):
    """A decision of the request, ``created`` false when its source id was recorded before."""

    created: bool


class ConsentChangesOut(ConsentsOut):
    """The decisions recorded, then the customer's consent and history after them."""

    recorded: list[RecordedConsentOut]


def _customer_or_404(external_id: str) -> Customer:
    try:
        return get_customer(external_id)
    except Customer.DoesNotExist as error:
        raise ApiError(
            404, "customer_not_found", f"No customer with external id {external_id!r}."
        ) from error


def _event_out(event: ConsentEvent) -> dict[str, Any]:
    recorded_by = ""
    if event.actor_token_prefix:
        recorded_by = f"token {event.actor_token_prefix}"
    elif event.actor_user is not None:
        recorded_by = event.actor_user.get_username()
    return {
        "id": event.pk,
        "purpose": event.purpose,
        "channel": event.channel or None,
        "granted": event.is_granted,
        "decided_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "source": event.source,
        "source_event_id": event.source_event_id or None,
        "wording_version": event.wording_version or None,
        "recorded_by": recorded_by or None,
    }


def _consents_out(customer: Customer) -> dict[str, Any]:
    return {
        "customer_id": customer.external_id,
        "consents": [
            {
                "purpose": status.purpose,
                "channel": status.channel or None,
                "granted": status.is_granted,
                "is_default": status.is_default,
                "decided_at": status.decided_at,
                "source": status.source or None,
                "wording_version": status.wording_version or None,
            }
            for status in current_consents(customer)
        ],
        "history": [_event_out(event) for event in consent_history(customer)[:HISTORY_SHOWN]],
    }


@router.get(
    "/customers/{external_id}/consents",
    response={200: ConsentsOut, **_ERRORS},
    summary="A customer's consents",
)
def customer_consents(request: HttpRequest, external_id: str) -> dict[str, Any]:
    """The customer's consent for every purpose and channel (the default where they have not
    decided) and the history of their decisions, the latest first."""
    return _consents_out(_customer_or_404(external_id))


@router.post(
    "/customers/{external_id}/consents",
    response={200: ConsentChangesOut, 201: ConsentChangesOut, **_ERRORS},
    summary="Record consent decisions",
)
@requires_scope(ScopeChoices.INGEST)
def record_consents(
    request: HttpRequest, external_id: str, body: ConsentChangesIn
) -> Status[dict[str, Any]]:
    """Record grants and withdrawals of one customer, all or none. A grant names the
    ``wording_version`` the customer agreed to; marketing names its ``channel``. Answers 201
    when something new was recorded, 200 when every decision was a repeat of its
    ``source_event_id``. Each new decision is written to the audit log."""
    customer = _customer_or_404(external_id)
    actor = request_actor(request)
    recorded: list[dict[str, Any]] = []
    with transaction.atomic():
        for index, change in enumerate(body.changes):
            try:
                event, created = record_consent(
                    customer,
                    change.purpose,
                    change.channel,
                    is_granted=change.granted,
                    source=change.source,
                    source_event_id=change.source_event_id,
                    wording_version=change.wording_version,
                    occurred_at=change.occurred_at,
                    actor=actor,
                )
            except ConsentError as error:
                raise invalid_request(
                    [(f"body.changes[{index}].{error.field}", error.message)]
                ) from (error)
            recorded.append({**_event_out(event), "created": created})
    status = 201 if any(item["created"] for item in recorded) else 200
    return Status(status, {**_consents_out(customer), "recorded": recorded})
