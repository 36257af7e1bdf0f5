"""Enrolling customers in the programme and finding members."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from patron.core.bulk import chunks, insert_models
from patron.core.sql import columns, fetch_one, link, quote
from patron.customers.models import Customer
from patron.loyalty.errors import LoyaltyInputError, MemberNotFoundError
from patron.loyalty.models import Member, PointBalance, Programme, Tier, TierChange
from patron.loyalty.programme import get_programme
from patron.loyalty.tiers import enrolment_tier, evaluate_member_tier

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


def enrol_members(
    customer_ids: Iterable[int],
    *,
    as_of: datetime | None = None,
    programme: Programme | None = None,
) -> dict[int, int]:
    """Member id per customer id (primary keys), enrolling the customers who are not members
    yet set-based: the same members, empty balances and entry-tier changes as
    :func:`enrol_member` on each, in a few statements. A concurrent enrolment of one of them
    (or a referral code drawn twice) makes it fall back to one customer at a time."""
    programme = programme or get_programme()
    wanted = sorted(set(customer_ids))
    found: dict[int, int] = {}
    for chunk in chunks(wanted):
        found.update(
            Member.objects.filter(programme=programme, customer_id__in=chunk).values_list(
                "customer_id", "pk"
            )
        )
    missing = [customer_id for customer_id in wanted if customer_id not in found]
    if not missing:
        return found
    as_of = as_of or timezone.now()
    tiers = list(Tier.objects.filter(programme=programme).order_by("threshold"))
    tier, reason = enrolment_tier(programme, tiers)
    try:
        with transaction.atomic():
            member_ids = insert_models(
                Member,
                {
                    "programme_id": [programme.pk] * len(missing),
                    "customer_id": missing,
                    "referral_code": _fresh_referral_codes(len(missing)),
                    "tier_id": [tier.pk if tier else None] * len(missing),
                    "downgrade_due_at": [None] * len(missing),
                    "enrolled_at": [as_of] * len(missing),
                },
            )
            zeros = [0] * len(missing)
            insert_models(
                PointBalance,
                {
                    "member_id": member_ids,
                    **dict.fromkeys(
                        ("pending", "available", "debt", "redeemed", "expired", "lifetime_earned"),
                        zeros,
                    ),
                },
                new_keys=False,
            )
            if tier is not None:
                now = timezone.now()
                insert_models(
                    TierChange,
                    {
                        "member_id": member_ids,
                        "from_tier_id": [None] * len(missing),
                        "to_tier_id": [tier.pk] * len(missing),
                        "qualifying_value": [Decimal(0)] * len(missing),
                        "reason": [reason[:300]] * len(missing),
                        "changed_at": [as_of] * len(missing),
                        "created_at": [now] * len(missing),
                    },
                )
    except IntegrityError:
        for customer in Customer.objects.filter(pk__in=missing).order_by("pk"):
            found[customer.pk] = enrol_member(customer, as_of=as_of, programme=programme).pk
        return found
    found.update(zip(missing, member_ids, strict=True))
    return found


def _fresh_referral_codes(count: int) -> list[str]:
    """``count`` distinct referral codes that no member has yet."""
    codes: set[str] = set()
    while len(codes) < count:
        drawn = {new_referral_code() for _ in range(count - len(codes))} - codes
        for chunk in chunks(sorted(drawn)):
            drawn -= set(
                Member.objects.filter(referral_code__in=chunk).values_list(
                    "referral_code", flat=True
                )
            )
        codes |= drawn
    return list(codes)


def get_member(customer_external_id: str, programme: Programme | None = None) -> Member:
    """The member for a customer's external id; :class:`MemberNotFoundError` if not enrolled.

    The member comes with its programme, tier and customer. Without ``programme`` it is the
    shop's programme (the first active one), found in the same query: this read is on the
    path of every loyalty API call, so it is one statement of SQL (``patron.core.sql``)."""
    if not isinstance(customer_external_id, str) or not customer_external_id:
        raise LoyaltyInputError("customer_external_id", "must be a non-empty text")
    member_columns = columns(Member, "m")
    programme_columns = columns(Programme, "p")
    tier_columns = columns(Tier, "t")
    customer_columns = columns(Customer, "c")
    if programme is None:
        programme_filter = (
            f"(SELECT p1.{quote('id')} FROM {quote(Programme._meta.db_table)} p1 "
            f"WHERE p1.{quote('is_active')} = %s ORDER BY p1.{quote('id')} LIMIT 1)"
        )
        params: list[object] = [customer_external_id, True]
    else:
        programme_filter = "%s"
        params = [customer_external_id, programme.pk]
    row = fetch_one(
        f"SELECT {member_columns.sql}, {programme_columns.sql}, {tier_columns.sql}, "
        f"{customer_columns.sql} FROM {member_columns.table} "
        f"JOIN {customer_columns.table} "
        f"ON c.{quote('id')} = {member_columns.column('customer_id')} "
        f"JOIN {programme_columns.table} ON p.{quote('id')} = "
        f"{member_columns.column('programme_id')} "
        f"LEFT JOIN {tier_columns.table} ON t.{quote('id')} = {member_columns.column('tier_id')} "
        f"WHERE c.{quote('external_id')} = %s "
        f"AND {member_columns.column('programme_id')} = {programme_filter}",
        params,
    )
    if row is None:
        programme = programme or get_programme()
        raise MemberNotFoundError(
            f"customer {customer_external_id!r} is not a member of {programme.name}"
        )
    member = member_columns.instance(row)
    assert member is not None
    offset = len(member_columns)
    link(member, "programme", programme_columns.instance(row, offset))
    offset += len(programme_columns)
    link(member, "tier", tier_columns.instance(row, offset))
    offset += len(tier_columns)
    link(member, "customer", customer_columns.instance(row, offset))
    return member
