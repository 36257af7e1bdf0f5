"""Erasure: a customer's personal data removed, the customer kept as a pseudonymous record.

:func:`anonymise_customer` applies the registry (:mod:`patron.privacy.registry`) to one
customer: profile fields cleared, blind indexes recomputed from the blanks, identities deleted,
merge snapshots cleared, device ids and event properties cleared, consent source ids cleared,
kept API answers that name the customer deleted, and the shop's id (``external_id``) replaced
by a random pseudonym ``erased-<16 hex>``. A keyed hash of every shop id the customer had is
kept (:class:`~patron.privacy.models.ErasedIdentifier`), so that the same id asked about
again is recognised as erased without being readable.

The customer row, its orders, ledger, coupons and analytics rows stay: revenue, order counts,
points totals and aggregate analytics do not change. Recording the request and the audit
event is :mod:`patron.privacy.requests`'s job.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field

from django.apps import apps
from django.db import transaction
from django.db.models import Q

from patron.core.bulk import chunks
from patron.customers.choices import GenderChoices, IdentityKindChoices
from patron.customers.models import Customer, CustomerIdentity, CustomerMerge
from patron.orders.models import Event
from patron.privacy.models import ConsentEvent, ErasedIdentifier
from patron.privacy.pii.crypto import blind_index, blind_index_candidates

PSEUDONYM_PREFIX = "erased-"
#: Purpose of the keyed hash of an erased shop id (kept apart from e-mail and phone indexes).
ERASED_ID_PURPOSE = "erased_external_id"
_SCAN_CHUNK = 2000


@dataclass
class ErasureSummary:
    """What an erasure changed, per table (counts only: no values)."""

    pseudonym: str
    changed: dict[str, int] = field(default_factory=dict)


def is_pseudonym(external_id: str) -> bool:
    """Whether ``external_id`` is a pseudonym given by an erasure."""
    return external_id.startswith(PSEUDONYM_PREFIX)


def new_pseudonym() -> str:
    """A random pseudonym for an erased customer (64 random bits: no link to the old id)."""
    return f"{PSEUDONYM_PREFIX}{secrets.token_hex(8)}"


def erased_customer_for(external_id: str) -> Customer | None:
    """The pseudonymous customer that the shop's id ``external_id`` became when erased, or
    None when that id was never erased."""
    record = (
        ErasedIdentifier.objects.select_related("customer")
        .filter(index__in=blind_index_candidates(ERASED_ID_PURPOSE, external_id))
        .first()
    )
    return None if record is None else record.customer


def erased_customer_keys(external_ids: Collection[str]) -> dict[str, int]:
    """The pseudonymous customer's key of each of the shop's ids ``external_ids`` that was
    erased (the others are left out). Costs one ``EXISTS`` query while nobody was ever erased;
    otherwise a keyed hash per id and one query per :data:`~patron.core.bulk.IN_CHUNK` ids."""
    if not external_ids or not ErasedIdentifier.objects.exists():
        return {}
    by_index = {
        index: external_id
        for external_id in external_ids
        for index in blind_index_candidates(ERASED_ID_PURPOSE, external_id)
    }
    found: dict[str, int] = {}
    for chunk in chunks(list(by_index)):
        for index, customer_pk in ErasedIdentifier.objects.filter(index__in=chunk).values_list(
            "index", "customer_id"
        ):
            found[by_index[index]] = customer_pk
    return found


def personal_values(customer: Customer) -> list[str]:
    """The customer's personal values as text (name, e-mail, phone, address, birthday, the
    shop's ids, device ids): what must not remain anywhere after the erasure."""
    values = [customer.name, customer.email, customer.phone, customer.address, customer.external_id]
    if customer.birthday:
        values.append(customer.birthday.isoformat())
    for identity in CustomerIdentity.objects.filter(customer=customer):
        values.append(identity.identifier)
    return [value for value in values if value]


def _needles(values: list[str]) -> list[bytes]:
    """The byte forms a value takes in a kept JSON answer (UTF-8 and ASCII-escaped)."""
    needles: set[bytes] = set()
    for value in values:
        needles.add(value.encode())
        needles.add(json.dumps(value).strip('"').encode())
    return [needle for needle in needles if len(needle) >= 4]


def _delete_kept_answers(values: list[str]) -> int:
    """Delete the kept API answers (``Idempotency-Key`` replays) whose path or body names the
    customer: they may echo a profile. Scanned in Python: bodies are bytes, not queryable."""
    needles = _needles(values)
    # Looked up by name: the API (presentation) sits above privacy, which must not import it.
    kept_answers = apps.get_model("api", "IdempotentRequest")
    doomed: list[int] = []
    # A record without an answer yet is the request being served (an erasure over the API):
    # it must survive to answer a retry; its path names the shop's id, its body only the
    # pseudonym.
    rows = kept_answers.objects.filter(status__isnull=False).values_list(
        "pk", "path", "response_body"
    )
    for pk, path, body in rows.iterator(chunk_size=_SCAN_CHUNK):
        content = path.encode() + b"\n" + bytes(body or b"")
        if any(needle in content for needle in needles):
            doomed.append(pk)
    deleted, _ = kept_answers.objects.filter(pk__in=doomed).delete()
    return deleted


def anonymise_customer(customer: Customer) -> ErasureSummary:
    """Remove ``customer``'s personal data as the registry says, in one transaction, and
    return what changed. The caller checks that the customer is not erased already."""
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        identities = list(CustomerIdentity.objects.filter(customer=customer))
        shop_ids = {customer.external_id} | {
            identity.value
            for identity in identities
            if identity.kind == IdentityKindChoices.EXTERNAL_ID
        }
        merges = CustomerMerge.objects.filter(survivor=customer)
        shop_ids |= set(merges.values_list("merged_external_id", flat=True))
        devices = [
            identity.value for identity in identities if identity.kind == IdentityKindChoices.DEVICE
        ]
        values = personal_values(customer) + sorted(shop_ids)
        pseudonym = new_pseudonym()
        summary = ErasureSummary(pseudonym)

        customer.external_id = pseudonym
        customer.name = customer.email = customer.phone = customer.address = ""
        customer.birthday = None
        customer.gender = GenderChoices.UNKNOWN
        customer.province = customer.city = ""
        customer.tags = []
        # save() recomputes the blind indexes from the blank values (blank indexes).
        customer.save()
        summary.changed["customers"] = 1

        summary.changed["identities"] = CustomerIdentity.objects.filter(customer=customer).delete()[
            0
        ]
        CustomerIdentity.objects.create(
            customer=customer, kind=IdentityKindChoices.EXTERNAL_ID, value=pseudonym
        )
        merged = 0
        for merge_pk in merges.values_list("pk", flat=True):
            merged += CustomerMerge.objects.filter(pk=merge_pk).update(
                merged_external_id=new_pseudonym(), snapshot={}, reason=""
            )
        summary.changed["merges"] = merged
        events = Event.objects.filter(Q(customer=customer) | Q(device_id__in=devices))
        summary.changed["events"] = events.update(device_id="", properties={})
        summary.changed["consent_events"] = (
            ConsentEvent.objects.filter(customer=customer)
            .exclude(source_event_id="")
            .update(source_event_id="")
        )
        summary.changed["kept_api_answers"] = _delete_kept_answers(values)
        ErasedIdentifier.objects.bulk_create(
            [
                ErasedIdentifier(index=blind_index(ERASED_ID_PURPOSE, shop_id), customer=customer)
                for shop_id in sorted(shop_ids)
            ],
            ignore_conflicts=True,
        )
    return summary
