"""Who reads customers' personal data in the clear, and the audit of those reads.

One place decides (:func:`sees_personal_data`): administrators, service agents and superusers
read names, e-mails, phones, birthdays and addresses unmasked; loyalty managers, marketers,
analysts, staff in no role and tokens of users in no role read them masked
(``138****5678``, ``z***@qq.com``, ``张*``). Every unmasked read writes a ``pii_read`` audit
event naming the reader, the customer and the purpose, never a value. A list page read
unmasked writes one event for the page, listing the external ids shown.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from patron.core.roles import sees_unmasked_personal_data
from patron.customers.choices import IdentityKindChoices
from patron.customers.models import Customer
from patron.privacy import audit
from patron.privacy.choices import AuditActionChoices
from patron.privacy.pii.masking import (
    MASK,
    mask_address,
    mask_birthday,
    mask_email,
    mask_name,
    mask_phone,
)

#: Characters of an identifier other than a phone or e-mail (a device id) kept when masked.
IDENTIFIER_KEPT = 4


@dataclass(frozen=True)
class PersonalData:
    """A customer's personal values as one reader may see them: plain or masked text
    (the birthday as ``YYYY-MM-DD`` or ``****-MM-DD``; blank when unknown)."""

    name: str
    email: str
    phone: str
    birthday: str
    address: str
    masked: bool


def sees_personal_data(user: Any) -> bool:
    """Whether ``user`` (a staff user, a token's user, or None) reads personal data unmasked."""
    return sees_unmasked_personal_data(user)


def mask_identifier(kind: str, value: str) -> str:
    """An identity's value masked by its kind: phones and e-mails as their own masks, the
    external id (the shop's own key, not personal) as it is, other kinds keep their first
    characters."""
    if kind == IdentityKindChoices.PHONE:
        return mask_phone(value)
    if kind == IdentityKindChoices.EMAIL:
        return mask_email(value)
    if kind == IdentityKindChoices.EXTERNAL_ID:
        return value
    return value[:IDENTIFIER_KEPT] + MASK * 4 if value else ""


def _plain(customer: Customer) -> PersonalData:
    return PersonalData(
        name=customer.name or "",
        email=customer.email or "",
        phone=customer.phone or "",
        birthday=customer.birthday.isoformat() if customer.birthday else "",
        address=customer.address or "",
        masked=False,
    )


def _masked(customer: Customer) -> PersonalData:
    return PersonalData(
        name=mask_name(customer.name or ""),
        email=mask_email(customer.email or ""),
        phone=mask_phone(customer.phone or ""),
        birthday=mask_birthday(customer.birthday),
        address=mask_address(customer.address or ""),
        masked=True,
    )


def _check_purpose(purpose: str) -> None:
    if not purpose.strip():
        raise ValueError("purpose must say why personal data is read (e.g. 'customer page')")


def customer_view(customer: Customer, user: Any, *, purpose: str) -> PersonalData:
    """``customer``'s personal data as ``user`` may see it. An unmasked read is audited
    (``pii_read``: the actor from the request being served, the customer, ``purpose``)."""
    _check_purpose(purpose)
    if not sees_personal_data(user):
        return _masked(customer)
    audit.record(
        AuditActionChoices.PII_READ,
        customer=customer,
        details={"purpose": purpose, "fields": list(PERSONAL_FIELDS)},
    )
    return _plain(customer)


#: The fields a :class:`PersonalData` holds (named in the audit event, never their values).
PERSONAL_FIELDS = ("name", "email", "phone", "birthday", "address")


def customers_view(
    customers: Sequence[Customer], user: Any, *, purpose: str
) -> dict[int, PersonalData]:
    """The personal data of a page of ``customers`` as ``user`` may see it, by primary key.
    An unmasked read writes one ``pii_read`` event for the page listing the external ids
    shown (none for an empty page)."""
    _check_purpose(purpose)
    if not sees_personal_data(user):
        return {customer.pk: _masked(customer) for customer in customers}
    if customers:
        audit.record(
            AuditActionChoices.PII_READ,
            # One customer (a detail read): the event is findable by that customer.
            customer=customers[0] if len(customers) == 1 else None,
            details={
                "purpose": purpose,
                "fields": list(PERSONAL_FIELDS),
                "customers": [customer.external_id for customer in customers],
            },
        )
    return {customer.pk: _plain(customer) for customer in customers}


def identities_view(identities: Iterable[tuple[str, str]], user: Any) -> list[tuple[str, str]]:
    """``(kind, value)`` identities as ``user`` may see them (masked unless
    :func:`sees_personal_data`); the read is audited by the caller's :func:`customer_view`."""
    if sees_personal_data(user):
        return list(identities)
    return [(kind, mask_identifier(kind, value)) for kind, value in identities]


#: Masks of the personal columns a CSV export may carry, by column name.
_CSV_MASKS = {
    "name": mask_name,
    "email": mask_email,
    "phone": mask_phone,
    "address": mask_address,
    "birthday": mask_birthday,
}


def csv_for(content: bytes, user: Any, *, purpose: str) -> bytes:
    """A UTF-8 CSV export (header row first, with or without a byte-order mark) as ``user``
    may download it: the personal columns (name, email, phone, address, birthday) masked, or
    plain with one ``pii_read`` event naming ``purpose`` and the number of rows."""
    _check_purpose(purpose)
    text = content.decode("utf-8-sig")
    bom = content.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(text)))
    if sees_personal_data(user):
        audit.record(
            AuditActionChoices.PII_READ,
            details={"purpose": purpose, "rows": max(len(rows) - 1, 0)},
        )
        return content
    if not rows:
        return content
    masks = {
        index: _CSV_MASKS[column] for index, column in enumerate(rows[0]) if column in _CSV_MASKS
    }
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(rows[0])
    for row in rows[1:]:
        writer.writerow(
            [masks[index](value) if index in masks else value for index, value in enumerate(row)]
        )
    return buffer.getvalue().encode("utf-8-sig" if bom else "utf-8")
