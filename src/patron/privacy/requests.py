"""Data subject requests: access and export, correction, erasure, and the retention job.

Each operation records a :class:`~patron.privacy.models.PrivacyRequest` (with its due date,
``PATRON_DSR_DEADLINE_DAYS`` after it was received) and an audit event, and is called alike
by the API, the CLI (``patron privacy export|erase|requests|retention``) and jobs.

- :func:`export_for_subject`: the export zip (:mod:`patron.privacy.export`), audit ``export``.
- :func:`erase_customer`: anonymisation (:mod:`patron.privacy.erasure`), audit ``erasure``;
  idempotent: erasing an erased customer (by pseudonym or by the old shop id) answers the
  first erasure's request again.
- :func:`correct_customer`: profile corrections, audit ``correction``.
- :func:`run_retention`: anonymises customers inactive for longer than a number of days.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, Max, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from patron.customers.choices import GenderChoices, IdentityKindChoices
from patron.customers.identity import (
    InvalidIdentifier,
    identity_lookup_values,
    normalize_email,
    normalize_phone,
)
from patron.customers.models import Customer, CustomerIdentity
from patron.customers.resolution import attach_identity
from patron.customers.selectors import get_customer
from patron.orders.models import Event, Order
from patron.privacy.audit import AuditActor, record
from patron.privacy.choices import (
    CLOSED_REQUEST_STATUSES,
    AuditActionChoices,
    PrivacyRequestKindChoices,
    PrivacyRequestStatusChoices,
)
from patron.privacy.erasure import (
    PSEUDONYM_PREFIX,
    ErasureSummary,
    anonymise_customer,
    erased_customer_for,
    is_pseudonym,
    personal_values,
)
from patron.privacy.export import export_customer
from patron.privacy.models import ErasedIdentifier, PrivacyRequest

logger = logging.getLogger(__name__)

MAX_NOTES = 2000
DEFAULT_RETENTION_BATCH = 200


class PrivacyRequestError(ValueError):
    """A data subject request that cannot be carried out; ``field`` names the bad input."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class UnknownCustomerError(LookupError):
    """No customer (and no erased customer) has the external id asked for."""


class CorrectionConflictError(PrivacyRequestError):
    """A corrected e-mail or phone already names another customer."""


def due_at_for(received_at: dt.datetime) -> dt.datetime:
    """When a request received at ``received_at`` must be answered
    (``PATRON_DSR_DEADLINE_DAYS`` later)."""
    return received_at + dt.timedelta(days=settings.DSR_DEADLINE_DAYS)


def find_subject(external_id: str) -> Customer:
    """The customer a request names: by the shop's id (also a merged-away one), by an erasure's
    pseudonym, or by a shop id that was erased (its pseudonymous record). Raises
    :class:`UnknownCustomerError` naming the id."""
    try:
        return get_customer(external_id)
    except Customer.DoesNotExist:
        pass
    erased = erased_customer_for(external_id)
    if erased is None:
        raise UnknownCustomerError(f"no customer with external id {external_id!r}")
    return erased


def _check_notes(notes: str, customer: Customer) -> str:
    notes = notes.strip()
    if len(notes) > MAX_NOTES:
        raise PrivacyRequestError("notes", f"at most {MAX_NOTES} characters, not {len(notes)}")
    folded = notes.casefold()
    for value in personal_values(customer):
        # Chinese names are often two characters; shorter Latin values match too much text.
        shortest = 2 if any("\u3400" <= character <= "\u9fff" for character in value) else 3
        if len(value) >= shortest and value.casefold() in folded:
            raise PrivacyRequestError(
                "notes",
                "must not hold the customer's personal data (a name, e-mail, phone, "
                "address, birthday or id of theirs): describe the request instead",
            )
    return notes


def open_request(
    customer: Customer,
    kind: str,
    *,
    actor: AuditActor | None = None,
    notes: str = "",
    received_at: dt.datetime | None = None,
) -> PrivacyRequest:
    """Record a request of ``kind`` (:class:`PrivacyRequestKindChoices`) received now (or at
    ``received_at``), due ``PATRON_DSR_DEADLINE_DAYS`` later."""
    if kind not in PrivacyRequestKindChoices.values:
        raise PrivacyRequestError(
            "kind", f"{kind!r} is not one of {', '.join(PrivacyRequestKindChoices.values)}"
        )
    if received_at is not None and timezone.is_naive(received_at):
        raise PrivacyRequestError("received_at", "must carry a time zone")
    received = received_at or timezone.now()
    actor = actor or AuditActor()
    return PrivacyRequest.objects.create(
        kind=kind,
        customer=customer,
        received_at=received,
        due_at=due_at_for(received),
        actor_user_id=actor.user_id,
        actor_label=actor.label,
        notes=_check_notes(notes, customer),
    )


def set_request_status(
    privacy_request: PrivacyRequest, status: str, *, at: dt.datetime | None = None
) -> PrivacyRequest:
    """Move a request to ``status``; a closed (done or refused) request stays closed."""
    if status not in PrivacyRequestStatusChoices.values:
        raise PrivacyRequestError(
            "status", f"{status!r} is not one of {', '.join(PrivacyRequestStatusChoices.values)}"
        )
    if privacy_request.status in CLOSED_REQUEST_STATUSES:
        raise PrivacyRequestError(
            "status", f"request #{privacy_request.pk} is {privacy_request.status} already"
        )
    privacy_request.status = status
    privacy_request.completed_at = (
        (at or timezone.now()) if status in CLOSED_REQUEST_STATUSES else None
    )
    privacy_request.save(update_fields=["status", "completed_at"])
    return privacy_request


def open_requests() -> QuerySet[PrivacyRequest]:
    """Requests not answered yet, the one due first (the most overdue) first."""
    return (
        PrivacyRequest.objects.exclude(status__in=CLOSED_REQUEST_STATUSES)
        .select_related("customer")
        .order_by("due_at", "pk")
    )


def export_for_subject(
    customer: Customer,
    *,
    actor: AuditActor | None = None,
    kind: str = PrivacyRequestKindChoices.EXPORT,
    notes: str = "",
) -> tuple[PrivacyRequest, bytes]:
    """Answer an access or export request: the export zip of ``customer``, with the request
    recorded (done) and an ``export`` audit event."""
    if kind not in (PrivacyRequestKindChoices.ACCESS, PrivacyRequestKindChoices.EXPORT):
        raise PrivacyRequestError("kind", "an export answers an access or export request")
    with transaction.atomic():
        privacy_request = open_request(customer, kind, actor=actor, notes=notes)
        archive = export_customer(customer)
        set_request_status(privacy_request, PrivacyRequestStatusChoices.DONE)
        record(
            AuditActionChoices.EXPORT,
            actor=actor,
            customer=customer,
            details={"request_id": privacy_request.pk, "kind": kind, "bytes": len(archive)},
        )
    return privacy_request, archive


@dataclass
class ErasureOutcome:
    """The erasure request and what it changed; ``created`` is False when the customer had
    been erased before (nothing changed this time)."""

    request: PrivacyRequest
    customer: Customer
    created: bool
    changed: dict[str, int] = field(default_factory=dict)


def _previous_erasure(customer: Customer) -> PrivacyRequest | None:
    if not is_pseudonym(customer.external_id):
        return None
    if not ErasedIdentifier.objects.filter(customer=customer).exists():
        return None
    return (
        PrivacyRequest.objects.filter(
            customer=customer,
            kind=PrivacyRequestKindChoices.ERASURE,
            status=PrivacyRequestStatusChoices.DONE,
        )
        .order_by("-pk")
        .first()
    )


def erase_customer(
    customer: Customer, *, reason: str, actor: AuditActor | None = None
) -> ErasureOutcome:
    """Erase ``customer``'s personal data (:func:`~patron.privacy.erasure.anonymise_customer`)
    and record the request (done) and an ``erasure`` audit event naming only the pseudonym.
    Idempotent: an erased customer gets its first erasure's request back, nothing changes.
    ``reason`` is required and must hold no personal data."""
    if not reason.strip():
        raise PrivacyRequestError("reason", "say why the customer is erased (no personal data)")
    with transaction.atomic():
        # Checked under the customer's row lock: two erasures at once apply one.
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        previous = _previous_erasure(customer)
        if previous is not None:
            return ErasureOutcome(previous, customer, created=False)
        received = timezone.now()
        notes = _check_notes(reason, customer)
        summary: ErasureSummary = anonymise_customer(customer)
        customer.refresh_from_db()
        privacy_request = open_request(
            customer,
            PrivacyRequestKindChoices.ERASURE,
            actor=actor,
            notes=notes,
            received_at=received,
        )
        set_request_status(privacy_request, PrivacyRequestStatusChoices.DONE)
        record(
            AuditActionChoices.ERASURE,
            actor=actor,
            customer=customer,
            details={"request_id": privacy_request.pk, "changed": summary.changed},
        )
    # Counts only: the log never names the person.
    logger.info("customer %s erased: %s", customer.pk, summary.changed)
    return ErasureOutcome(privacy_request, customer, created=True, changed=summary.changed)


#: Profile fields a correction may change.
CORRECTABLE_FIELDS = (
    "name",
    "email",
    "phone",
    "address",
    "birthday",
    "gender",
    "province",
    "city",
)
_MAX_LENGTHS = {"name": 200, "email": 254, "phone": 32, "address": 500, "province": 64, "city": 64}


def _clean_correction(changes: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(CORRECTABLE_FIELDS))
    if unknown:
        raise PrivacyRequestError(
            unknown[0], f"cannot be corrected; correctable: {', '.join(CORRECTABLE_FIELDS)}"
        )
    if not changes:
        raise PrivacyRequestError("changes", "name at least one field to correct")
    cleaned: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "birthday":
            if value is not None and not isinstance(value, dt.date):
                raise PrivacyRequestError(name, "must be a date (YYYY-MM-DD) or null")
            if value is not None and value > timezone.localdate():
                raise PrivacyRequestError(name, "cannot be in the future")
            cleaned[name] = value
            continue
        text = "" if value is None else str(value).strip()
        if name in _MAX_LENGTHS and len(text) > _MAX_LENGTHS[name]:
            raise PrivacyRequestError(name, f"at most {_MAX_LENGTHS[name]} characters")
        try:
            if name == "email" and text:
                text = normalize_email(text)
            if name == "phone" and text:
                text = normalize_phone(text)
        except InvalidIdentifier as error:
            raise PrivacyRequestError(name, f"is not a valid {name}") from error
        if name == "gender" and text not in GenderChoices.values:
            raise PrivacyRequestError(name, f"must be one of {', '.join(GenderChoices.values)}")
        cleaned[name] = text
    return cleaned


def correct_customer(
    customer: Customer, changes: Mapping[str, Any], *, actor: AuditActor | None = None
) -> tuple[Customer, PrivacyRequest, list[str]]:
    """Correct profile fields of ``customer`` (validated; e-mail and phone normalised and
    their identities replaced), recorded as a correction request (done) and a ``correction``
    audit event naming the fields changed, never their values. An e-mail or phone that names
    another customer is refused (:class:`CorrectionConflictError`): merging is not a
    correction. Returns the customer, the request and the names of the fields changed."""
    if is_pseudonym(customer.external_id):
        raise PrivacyRequestError("customer", "an erased customer cannot be corrected")
    cleaned = _clean_correction(changes)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        for kind in (IdentityKindChoices.EMAIL, IdentityKindChoices.PHONE):
            new_value = cleaned.get(kind.value)
            if not new_value:
                continue
            holder = (
                CustomerIdentity.objects.filter(
                    kind=kind, value__in=identity_lookup_values(kind, new_value)
                )
                .exclude(customer=customer)
                .exists()
            )
            if holder:
                raise CorrectionConflictError(
                    kind.value, "already names another customer; merge them instead"
                )
        changed = sorted(
            name for name, value in cleaned.items() if getattr(customer, name) != value
        )
        for name in changed:
            setattr(customer, name, cleaned[name])
        customer.save()
        for kind in (IdentityKindChoices.EMAIL, IdentityKindChoices.PHONE):
            if kind.value not in changed:
                continue
            CustomerIdentity.objects.filter(customer=customer, kind=kind).delete()
            if cleaned[kind.value]:
                attach_identity(customer, kind.value, cleaned[kind.value])
        privacy_request = open_request(customer, PrivacyRequestKindChoices.CORRECTION, actor=actor)
        set_request_status(privacy_request, PrivacyRequestStatusChoices.DONE)
        record(
            AuditActionChoices.CORRECTION,
            actor=actor,
            customer=customer,
            details={"request_id": privacy_request.pk, "fields": changed},
        )
    return customer, privacy_request, changed


def inactive_customers(
    inactive_days: int, *, as_of: dt.datetime | None = None
) -> QuerySet[Customer]:
    """Customers not erased whose latest activity (order, event, including logins, or else
    sign-up or creation) is more than ``inactive_days`` days before ``as_of`` (now)."""
    if inactive_days < 1:
        raise PrivacyRequestError("inactive_days", "must be at least 1")
    cutoff = (as_of or timezone.now()) - dt.timedelta(days=inactive_days)
    epoch = Value(dt.datetime(1970, 1, 1, tzinfo=dt.UTC), output_field=DateTimeField())
    # One subquery per source (not joins): a customer's orders times their events would
    # multiply the rows aggregated.
    last_order = (
        Order.objects.filter(customer=OuterRef("pk"))
        .order_by()
        .values("customer")
        .annotate(latest=Max("ordered_at"))
        .values("latest")
    )
    last_event = (
        Event.objects.filter(customer=OuterRef("pk"))
        .order_by()
        .values("customer")
        .annotate(latest=Max("occurred_at"))
        .values("latest")
    )
    return (
        Customer.objects.exclude(external_id__startswith=PSEUDONYM_PREFIX)
        .annotate(
            last_active=Greatest(
                Coalesce(Subquery(last_order, output_field=DateTimeField()), epoch),
                Coalesce(Subquery(last_event, output_field=DateTimeField()), epoch),
                Coalesce("signed_up_at", epoch),
                "created_at",
            )
        )
        .filter(last_active__lt=cutoff)
        .order_by("pk")
    )


@dataclass
class RetentionSummary:
    """What a retention run found and did."""

    inactive_days: int
    cutoff: dt.datetime
    found: int = 0
    erased: int = 0
    dry_run: bool = False


def _batches(pks: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(pks), size):
        yield pks[start : start + size]


def run_retention(
    inactive_days: int,
    *,
    dry_run: bool = False,
    batch_size: int = DEFAULT_RETENTION_BATCH,
    as_of: dt.datetime | None = None,
    actor: AuditActor | None = None,
) -> RetentionSummary:
    """Anonymise every customer inactive for more than ``inactive_days`` days, ``batch_size``
    customers per transaction (a failure keeps the batches before it); with ``dry_run`` only
    count them. Each erasure is recorded like a requested one, reason ``retention``."""
    if batch_size < 1:
        raise PrivacyRequestError("batch_size", "must be at least 1")
    now = as_of or timezone.now()
    pks = list(inactive_customers(inactive_days, as_of=now).values_list("pk", flat=True))
    summary = RetentionSummary(
        inactive_days, now - dt.timedelta(days=inactive_days), found=len(pks), dry_run=dry_run
    )
    if dry_run:
        return summary
    reason = f"retention: inactive for more than {inactive_days} days"
    for batch in _batches(pks, batch_size):
        with transaction.atomic():
            for customer in Customer.objects.filter(pk__in=batch).order_by("pk"):
                if erase_customer(customer, reason=reason, actor=actor).created:
                    summary.erased += 1
    return summary
