"""``/api/v1/customers/{external_id}/consents``: a customer's consent per purpose and channel
with its history, and recording grants and withdrawals (mounted at the API's root)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja import Field, Router, Schema, Status

from patron.api.auth import requires_permission, requires_scope
from patron.api.choices import ScopeChoices
from patron.api.errors import ApiError, ErrorOut, ValidationErrorOut
from patron.api.idempotency import require_idempotency_key
from patron.api.schemas import ApiDateTime, ShopDateTime
from patron.api.shortcuts import invalid_request
from patron.core.roles import ApiPermissionChoices
from patron.customers.models import Customer
from patron.customers.selectors import get_customer
from patron.privacy.audit import request_actor
from patron.privacy.consent import (
    ConsentError,
    consent_history,
    current_consents,
    record_consent,
)
from patron.privacy.models import ConsentEvent, PrivacyRequest
from patron.privacy.requests import (
    CorrectionConflictError,
    PrivacyRequestError,
    UnknownCustomerError,
    correct_customer,
    erase_customer,
    export_for_subject,
    find_subject,
    open_requests,
)

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
    occurred_at: ApiDateTime | None = Field(
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
@requires_permission(ApiPermissionChoices.CONSENTS_READ)
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
@requires_permission(ApiPermissionChoices.CONSENTS_WRITE)
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


# --- Data subject requests: export, erasure, correction, open requests -------------------


def _subject_or_404(external_id: str) -> Customer:
    try:
        return find_subject(external_id)
    except UnknownCustomerError as error:
        raise ApiError(
            404, "customer_not_found", f"No customer with external id {external_id!r}."
        ) from error


class PrivacyRequestOut(Schema):
    """A data subject request and its deadline."""

    id: int
    kind: str = Field(examples=["erasure"])
    status: str = Field(examples=["done"])
    customer_id: str = Field(description="The customer's external id (a pseudonym once erased)")
    received_at: ShopDateTime
    due_at: ShopDateTime = Field(description="received_at + PATRON_DSR_DEADLINE_DAYS")
    completed_at: ShopDateTime | None
    overdue: bool


class ErasureIn(Schema):
    """Why the customer is erased (recorded with the request; no personal data)."""

    reason: str = Field(min_length=1, max_length=2000, examples=["customer asked by e-mail"])


class ErasureOut(PrivacyRequestOut):
    """The erasure request; ``created`` false when the customer had been erased before."""

    created: bool
    changed: dict[str, int] = Field(description="Rows changed per table (empty on a repeat)")


class ProfileCorrectionIn(Schema):
    """Profile fields to correct; a field left out is not changed, ``""`` clears it."""

    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=500)
    birthday: date | None = None
    gender: Literal["male", "female", "other", "unknown"] | None = None
    province: str | None = Field(default=None, max_length=64)
    city: str | None = Field(default=None, max_length=64)


class CorrectionOut(PrivacyRequestOut):
    """The correction request and the fields it changed."""

    fields: list[str]


def _request_out(privacy_request: PrivacyRequest) -> dict[str, Any]:
    return {
        "id": privacy_request.pk,
        "kind": privacy_request.kind,
        "status": privacy_request.status,
        "customer_id": privacy_request.customer.external_id,
        "received_at": privacy_request.received_at,
        "due_at": privacy_request.due_at,
        "completed_at": privacy_request.completed_at,
        "overdue": privacy_request.completed_at is None and privacy_request.due_at < timezone.now(),
    }


@router.get(
    "/customers/{external_id}/export",
    response={**_ERRORS},
    summary="Export a customer's data (zip)",
    openapi_extra={
        "responses": {
            "200": {
                "description": "customer.json and one CSV per table, in a zip",
                "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
@requires_permission(ApiPermissionChoices.PRIVACY_REQUESTS)
def export_customer_data(request: HttpRequest, external_id: str) -> HttpResponse:
    """Everything Patron holds on the customer (profile, identities, orders, refunds, events,
    points ledger, tiers, coupons, referrals, recommendations, consents, scores, requests),
    decrypted, as ``customer.json`` plus one CSV per table in a zip; recorded as an export
    request (done) and in the audit log."""
    customer = _subject_or_404(external_id)
    _, archive = export_for_subject(customer, actor=request_actor(request))
    response = HttpResponse(archive, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="customer-{customer.pk}.zip"'
    return response


@router.post(
    "/customers/{external_id}/erasure",
    response={200: ErasureOut, 201: ErasureOut, **_ERRORS},
    summary="Erase a customer's personal data",
)
@requires_scope(ScopeChoices.ADMIN)
@requires_permission(ApiPermissionChoices.PRIVACY_REQUESTS)
def erase_customer_data(
    request: HttpRequest, external_id: str, body: ErasureIn
) -> Status[dict[str, Any]]:
    """Remove the customer's personal data for good: profile, identities, merge snapshots,
    device ids and event properties are cleared and the shop's id is replaced by a pseudonym
    (``erased-…``); orders, points and scores stay with the pseudonymous record. Needs an
    ``Idempotency-Key``. Answers 201 when erased now, 200 when the customer (named by the
    pseudonym or the old id) had been erased before."""
    require_idempotency_key(request)
    customer = _subject_or_404(external_id)
    try:
        outcome = erase_customer(customer, reason=body.reason, actor=request_actor(request))
    except PrivacyRequestError as error:
        # The reason is kept as the request's notes.
        field_name = "reason" if error.field == "notes" else error.field
        raise invalid_request([(f"body.{field_name}", error.message)]) from error
    out = {
        **_request_out(outcome.request),
        "created": outcome.created,
        "changed": outcome.changed,
    }
    return Status(201 if outcome.created else 200, out)


@router.patch(
    "/customers/{external_id}/profile",
    response={200: CorrectionOut, **_ERRORS, 409: ErrorOut},
    summary="Correct a customer's profile",
)
@requires_scope(ScopeChoices.ADMIN)
@requires_permission(ApiPermissionChoices.PRIVACY_CORRECT)
def correct_customer_profile(
    request: HttpRequest, external_id: str, body: ProfileCorrectionIn
) -> dict[str, Any]:
    """Correct profile fields at the customer's request (validated: e-mail and phone are
    normalised, a birthday is not in the future). Recorded as a correction request and in the
    audit log (the fields changed, never their values)."""
    customer = _subject_or_404(external_id)
    changes = body.model_dump(exclude_unset=True)
    try:
        _, privacy_request, fields = correct_customer(
            customer, changes, actor=request_actor(request)
        )
    except CorrectionConflictError as error:
        raise ApiError(409, "identifier_taken", f"{error.field} {error.message}.") from error
    except PrivacyRequestError as error:
        raise invalid_request([(f"body.{error.field}", error.message)]) from error
    return {**_request_out(privacy_request), "fields": fields}


@router.get(
    "/privacy/requests",
    response={200: list[PrivacyRequestOut], **_ERRORS},
    summary="Open data subject requests",
)
@requires_permission(ApiPermissionChoices.PRIVACY_REQUESTS)
def list_open_requests(request: HttpRequest) -> list[dict[str, Any]]:
    """Requests not answered yet, the most overdue first."""
    return [_request_out(privacy_request) for privacy_request in open_requests()[:500]]
