"""Identity resolution: one customer per real person.

A customer is named by identities (external id, e-mail, phone, device). ``(kind, value)`` is
unique, so two customer records that turn out to share an e-mail or a phone are the same
person: :func:`merge_customers` folds one into the other, keeping every order, event and
later-app row that pointed at either, and leaves a :class:`CustomerMerge` record behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from patron.customers.choices import IdentityKindChoices
from patron.customers.identity import (
    InvalidIdentifier,
    identity_lookup_values,
    normalize_email,
    normalize_phone,
    stored_identity,
)
from patron.customers.models import Customer, CustomerIdentity, CustomerMerge
from patron.privacy.pii.masking import mask_email, mask_phone

#: Profile fields a merge fills in and an import may set (tags are united separately).
PROFILE_FIELDS = (
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
)
_BLANK = ("", None, "unknown")


def _lock_customers(pks: Iterable[int]) -> dict[int, Customer]:
    # Always lock in primary-key order so that two merges never deadlock.
    locked = Customer.objects.filter(pk__in=sorted(set(pks))).order_by("pk").select_for_update()
    return {customer.pk: customer for customer in locked}


def json_safe(values: dict[str, Any]) -> dict[str, Any]:
    """Profile values with dates and times as ISO 8601 text, for JSON columns."""
    return {
        name: value.isoformat() if hasattr(value, "isoformat") else value
        for name, value in values.items()
    }


def profile_snapshot(customer: Customer) -> dict[str, Any]:
    """The customer's profile as JSON-ready values (kept in a merge record)."""
    values = {name: getattr(customer, name) for name in PROFILE_FIELDS}
    return json_safe({"external_id": customer.external_id, "tags": customer.tags, **values})


def masked_identifier(kind: str, value: str) -> str:
    """An identifier as merge reasons and messages may quote it: masked for e-mail and phone
    (``same phone: +86 138****5678``), as it is for external ids and devices."""
    if kind == IdentityKindChoices.EMAIL:
        return mask_email(value)
    if kind == IdentityKindChoices.PHONE:
        return mask_phone(value)
    return value


def fill_blank_profile(into: Customer, source: Customer) -> None:
    """Fill the blank profile fields of ``into`` from ``source`` and unite their tags."""
    for name in PROFILE_FIELDS:
        if getattr(into, name) in _BLANK:
            setattr(into, name, getattr(source, name))
    into.tags = sorted(set(into.tags) | set(source.tags))


def merge_customers(survivor: Customer, duplicate: Customer, *, reason: str) -> CustomerMerge:
    """Merge ``duplicate`` into ``survivor`` and delete ``duplicate``.

    Every row of any app that points at the duplicate (orders, events, identities, and the
    tables later apps add) is moved to the survivor; blank profile fields of the survivor
    are filled from the duplicate; tags are united. Returns the merge record.
    """
    if survivor.pk == duplicate.pk:
        raise ValueError("cannot merge a customer into itself")
    with transaction.atomic():
        locked = _lock_customers([survivor.pk, duplicate.pk])
        if survivor.pk not in locked or duplicate.pk not in locked:
            raise Customer.DoesNotExist("a customer to merge no longer exists")
        survivor, duplicate = locked[survivor.pk], locked[duplicate.pk]
        moved: dict[str, int] = {}
        # Generic over reverse foreign keys, so apps added later are moved too without
        # this low layer importing them.
        for relation in Customer._meta.related_objects:
            if not (relation.one_to_many or relation.one_to_one):
                continue
            related_model = relation.related_model
            field_name = relation.field.name
            count = related_model._default_manager.filter(**{field_name: duplicate}).update(
                **{field_name: survivor}
            )
            if count:
                moved[related_model._meta.label_lower] = count
        fill_blank_profile(survivor, duplicate)
        merge = CustomerMerge.objects.create(
            survivor=survivor,
            merged_customer_pk=duplicate.pk,
            merged_external_id=duplicate.external_id,
            reason=reason,
            snapshot=profile_snapshot(duplicate),
            moved_rows=moved,
        )
        duplicate.delete()
        survivor.save()
    return merge


def identities_of(customer: Customer) -> list[tuple[str, str]]:
    """The (kind, normalised value) pairs a customer's profile fields name."""
    pairs = [(IdentityKindChoices.EXTERNAL_ID.value, customer.external_id)]
    if customer.email:
        with contextlib.suppress(InvalidIdentifier):
            pairs.append((IdentityKindChoices.EMAIL.value, normalize_email(customer.email)))
    if customer.phone:
        with contextlib.suppress(InvalidIdentifier):
            pairs.append((IdentityKindChoices.PHONE.value, normalize_phone(customer.phone)))
    return pairs


def attach_identity(customer: Customer, kind: str, value: str) -> Customer:
    """Record that ``(kind, value)`` (a normalised identifier) names ``customer``.

    If another customer already holds that identity, the two are the same person and are
    merged; the older record (lower id) survives. Returns the surviving customer. E-mail and
    phone identities are stored as a blind index and the encrypted value.
    """
    with transaction.atomic():
        existing = (
            CustomerIdentity.objects.select_related("customer")
            .filter(kind=kind, value__in=identity_lookup_values(kind, value))
            .first()
        )
        if existing is None:
            stored, secret = stored_identity(kind, value)
            CustomerIdentity.objects.create(
                customer=customer, kind=kind, value=stored, secret=secret
            )
            return customer
        if existing.customer_id == customer.pk:
            return customer
        older, newer = sorted([customer, existing.customer], key=lambda c: c.pk)
        merge_customers(older, newer, reason=f"same {kind}: {masked_identifier(kind, value)}")
        older.refresh_from_db()
        return older


def sync_identities(customer: Customer) -> Customer:
    """Attach the identities named by the customer's profile, merging any duplicate found."""
    for kind, value in identities_of(customer):
        customer = attach_identity(customer, kind, value)
    return customer


def resolve_duplicates() -> list[CustomerMerge]:
    """Sweep every customer's e-mail and phone into identities and merge the duplicates found.

    Returns the merges made. Used after edits outside the importer and by
    ``patron resolve_customers``.
    """
    merges_before = set(CustomerMerge.objects.values_list("pk", flat=True))
    for customer_pk in Customer.objects.order_by("pk").values_list("pk", flat=True).iterator():
        customer = Customer.objects.filter(pk=customer_pk).first()
        if customer is not None:  # merged away earlier in this sweep
            sync_identities(customer)
    return list(CustomerMerge.objects.exclude(pk__in=merges_before).order_by("pk"))
