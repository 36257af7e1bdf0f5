"""Reads of customers."""

from __future__ import annotations

import contextlib

from django.db.models import Q, QuerySet

from patron.core.sql import columns, fetch_one
from patron.customers.identity import (
    InvalidIdentifier,
    identity_lookup_values,
    index_form_email,
    index_form_name,
    index_form_phone,
    normalize_phone,
)
from patron.customers.models import Customer
from patron.privacy.pii.crypto import blind_index_candidates


def search_customers(query: str = "") -> QuerySet[Customer]:
    """Customers named exactly by ``query``, newest first: the shop's customer id, a full
    e-mail address, a phone number in any format (``138 1234 5678``, ``+86-138...``) or a full
    name (case and spacing ignored).

    Names, e-mails and phones are stored encrypted, so they are matched through their blind
    indexes (on the profile and on every identity, merged duplicates' included): an exact
    value is found, a part of one (``张``, ``@qq.com``) is not.
    """
    customers = Customer.objects.order_by("-pk")
    query = query.strip()
    if not query:
        return customers
    condition = (
        Q(external_id=query)
        | Q(identities__kind="external_id", identities__value=query)
        | Q(name_index__in=blind_index_candidates("name", index_form_name(query)))
    )
    if "@" in query:
        email = index_form_email(query)
        condition |= Q(email_index__in=blind_index_candidates("email", email)) | Q(
            identities__kind="email", identities__value__in=identity_lookup_values("email", email)
        )
    if any(character.isdigit() for character in query):
        condition |= Q(phone_index__in=blind_index_candidates("phone", index_form_phone(query)))
        with contextlib.suppress(InvalidIdentifier):
            phone = normalize_phone(query)
            condition |= Q(
                identities__kind="phone",
                identities__value__in=identity_lookup_values("phone", phone),
            )
    return customers.filter(condition).distinct()


def find_customer_by_email(email: str) -> Customer | None:
    """The customer an e-mail address (any spelling that normalises to it) names, or None."""
    if not email.strip():
        return None
    value = index_form_email(email)
    condition = Q(email_index__in=blind_index_candidates("email", value)) | Q(
        identities__kind="email", identities__value__in=identity_lookup_values("email", value)
    )
    return Customer.objects.filter(condition).order_by("pk").first()


def find_customer_by_phone(phone: str) -> Customer | None:
    """The customer a phone number (any format) names, or None."""
    if not phone.strip():
        return None
    value = index_form_phone(phone)
    condition = Q(phone_index__in=blind_index_candidates("phone", value)) | Q(
        identities__kind="phone", identities__value__in=identity_lookup_values("phone", value)
    )
    return Customer.objects.filter(condition).order_by("pk").first()


def get_customer(external_id: str) -> Customer:
    """The customer named by an external id, also one merged away into another customer.

    Raises ``Customer.DoesNotExist`` when no customer has that id.
    """
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        customer = Customer.objects.filter(
            identities__kind="external_id", identities__value=external_id
        ).first()
    if customer is None:
        raise Customer.DoesNotExist(f"no customer with external id {external_id!r}")
    return customer


def find_customer(external_id: str) -> Customer | None:
    """The customer whose own external id is ``external_id`` (not one merged away), or
    None. One statement of SQL (``patron.core.sql``): every API call about a customer
    starts here."""
    customer = columns(Customer, "c")
    row = fetch_one(
        f"SELECT {customer.sql} FROM {customer.table} WHERE {customer.column('external_id')} = %s",
        [external_id],
    )
    return None if row is None else customer.instance(row)
