"""Enrolling customers in the programme and finding members."""

from __future__ import annotations

import secrets
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from patron.customers.models import Customer
from patron.loyalty.errors import LoyaltyInputError, MemberNotFoundError
from patron.loyalty.models import Member, PointBalance, Programme
from patron.loyalty.programme import get_programme
from patron.loyalty.tiers import evaluate_member_tier

#: No 0/O, 1/I/L: codes are read aloud and typed from screens. 31 symbols, 8 long:
#: 31**8 = 8.5e11 codes, so guessing a live one is hopeless.
REFERRAL_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
REFERRAL_CODE_LENGTH = 8


def new_referral_code() -> str:
    """A random referral code from the readable alphabet (``secrets``, not ``random``)."""
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_CODE_LENGTH))


def enrol_member(
    customer: Customer, *, as_of: datetime | None = None, programme: Programme | None = None
) -> Member:
    """Enrol ``customer`` in the programme (idempotent: an enrolled customer's membership is
    returned as it is). The member starts with an empty balance and the tier their history
    qualifies for (the entry tier when it has threshold 0)."""
    if not isinstance(customer, Customer) or customer.pk is None:
        raise LoyaltyInputError("customer", "must be a saved customer")
    programme = programme or get_programme()
    existing = (
        Member.objects.select_related("programme", "tier")
        .filter(programme=programme, customer=customer)
        .first()
    )
    if existing is not None:
        return existing
    as_of = as_of or timezone.now()
    for _attempt in range(5):
        try:
            with transaction.atomic():
                member = Member.objects.create(
                    programme=programme,
                    customer=customer,
                    referral_code=new_referral_code(),
                    enrolled_at=as_of,
                )
                PointBalance.objects.create(member=member)
                evaluate_member_tier(member, as_of, "enrolled")
                return member
        except IntegrityError:
            # Either a concurrent enrolment of the same customer won (return it), or the
            # random referral code collided (try another).
            existing = (
                Member.objects.select_related("programme", "tier")
                .filter(programme=programme, customer=customer)
                .first()
            )
            if existing is not None:
                return existing
    raise RuntimeError("could not draw a unique referral code in 5 attempts")


def get_member(customer_external_id: str, programme: Programme | None = None) -> Member:
    """The member for a customer's external id; :class:`MemberNotFoundError` if not enrolled."""
    if not isinstance(customer_external_id, str) or not customer_external_id:
        raise LoyaltyInputError("customer_external_id", "must be a non-empty text")
    programme = programme or get_programme()
    member = (
        Member.objects.select_related("programme", "tier", "customer")
        .filter(programme=programme, customer__external_id=customer_external_id)
        .first()
    )
    if member is None:
        raise MemberNotFoundError(
            f"customer {customer_external_id!r} is not a member of {programme.name}"
        )
    return member
