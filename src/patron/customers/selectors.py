"""Reads of customers."""

from __future__ import annotations

import contextlib

from django.db.models import Q, QuerySet

from patron.customers.identity import InvalidIdentifier, normalize_phone
from patron.customers.models import Customer


def search_customers(query: str = "") -> QuerySet[Customer]:
    """Customers whose name, e-mail, phone or external id matches ``query``, newest first.

    A phone number in any format (``138 1234 5678``, ``+86-138...``) also finds the customer
    through the normalised phone identity.
    """
    customers = Customer.objects.order_by("-pk")
    query = query.strip()
    if not query:
        return customers
    condition = (
        Q(name__icontains=query)
        | Q(email__icontains=query)
        | Q(phone__icontains=query)
        | Q(external_id=query)
        | Q(identities__value=query.lower())
    )
    if any(character.isdigit() for character in query):
        with contextlib.suppress(InvalidIdentifier):
            condition |= Q(identities__kind="phone", identities__value=normalize_phone(query))
    return customers.filter(condition).distinct()


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
