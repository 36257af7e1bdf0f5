"""Referrals: a member's code brings a new customer; both are rewarded once the new
customer's first order has outlived the return window.

Refusals at recording raise :class:`ReferralRefusedError` with a machine code and write
nothing: an unknown code, a self-referral (the same customer, or two customers sharing a
normalised phone, e-mail or device), a customer referred before or who already ordered, and
referral farming (more referrals by one referrer in the policy's period than its cap).

The store keeps no delivery address yet (customers have a province and a city only), so the
shared-address check of a self-referral has nothing to compare; it belongs here once the
orders carry one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from patron.customers.identity import InvalidIdentifier, normalize_email, normalize_phone
from patron.customers.models import Customer, CustomerIdentity
from patron.loyalty.care import PROGRAMME_ACTOR
from patron.loyalty.errors import LoyaltyError, LoyaltyInputError
from patron.loyalty.ledger import adjust_points
from patron.loyalty.locks import lock_point_balances, lock_rows
from patron.loyalty.members import enrol_member
from patron.loyalty.models import Member, Programme, Referral, ReferralPolicy
from patron.loyalty.models.referrals import ReferralStatusChoices
from patron.loyalty.programme import PAID_STATUSES, get_programme, to_int
from patron.orders.choices import OrderStatusChoices
from patron.orders.models import Event, Order
from patron.orders.selectors import counted_orders

_MAX_POLICY_DAYS = 3660
_MAX_POLICY_POINTS = 10**9


class ReferralRefusedError(LoyaltyError):
    """A referral that may not be recorded; ``code`` says why for machines, the message for
    people. Nothing was written."""

    code = "referral_refused"

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


# Machine codes of a refusal (at recording, or at settlement for the first order's fate).
UNKNOWN_CODE = "unknown_referral_code"
SELF_SAME_CUSTOMER = "self_referral_same_customer"
SELF_SHARED_PHONE = "self_referral_shared_phone"
SELF_SHARED_EMAIL = "self_referral_shared_email"
SELF_SHARED_DEVICE = "self_referral_shared_device"
ALREADY_REFERRED = "already_referred"
ALREADY_ORDERED = "already_ordered"
CAP_REACHED = "referral_cap_reached"
FIRST_ORDER_CANCELLED = "first_order_cancelled"
FIRST_ORDER_REFUNDED = "first_order_refunded"


# --------------------------------------------------------------------------- policy


def get_referral_policy(programme: Programme | None = None) -> ReferralPolicy:
    """The programme's referral policy, created with the defaults on first use."""
    programme = programme or get_programme()
    policy, _created = ReferralPolicy.objects.get_or_create(programme=programme)
    return policy


def configure_referral_policy(
    programme: Programme | None = None,
    *,
    referrer_points: int | None = None,
    referee_points: int | None = None,
    max_referrals_per_period: int | None = None,
    period_days: int | None = None,
) -> ReferralPolicy:
    """Change the referral policy; settings left as None keep their value."""
    policy = get_referral_policy(programme)
    if referrer_points is not None:
        policy.referrer_points = to_int(
            "referrer_points", referrer_points, maximum=_MAX_POLICY_POINTS
        )
    if referee_points is not None:
        policy.referee_points = to_int("referee_points", referee_points, maximum=_MAX_POLICY_POINTS)
    if max_referrals_per_period is not None:
        policy.max_referrals_per_period = to_int(
            "max_referrals_per_period", max_referrals_per_period, maximum=_MAX_POLICY_POINTS
        )
    if period_days is not None:
        policy.period_days = to_int("period_days", period_days, minimum=1, maximum=_MAX_POLICY_DAYS)
    policy.save()
    return policy


# --------------------------------------------------------------------------- identities


@dataclass(frozen=True)
class _Identifiers:
    phones: frozenset[str]
    emails: frozenset[str]
    devices: frozenset[str]


def _identifiers(customer: Customer) -> _Identifiers:
    """The customer's normalised phones, e-mails and devices: the profile's fields, the
    identities resolution attached (merged duplicates bring theirs) and the devices of the
    customer's events."""
    phones: set[str] = set()
    emails: set[str] = set()
    devices: set[str] = set()
    if customer.phone:
        with contextlib.suppress(InvalidIdentifier):
            phones.add(normalize_phone(customer.phone))
    if customer.email:
        with contextlib.suppress(InvalidIdentifier):
            emails.add(normalize_email(customer.email))
    # E-mail and phone identities keep their value encrypted in ``secret`` (``identifier``
    # decrypts it); ``value`` is only their blind index.
    for identity in CustomerIdentity.objects.filter(customer=customer):
        kind, value = identity.kind, identity.identifier
        if kind == "phone":
            with contextlib.suppress(InvalidIdentifier):
                phones.add(normalize_phone(value))
        elif kind == "email":
            with contextlib.suppress(InvalidIdentifier):
                emails.add(normalize_email(value))
        elif kind == "device" and value.strip():
            devices.add(value.strip())
    devices.update(
        device.strip()
        for device in Event.objects.filter(customer=customer)
        .exclude(device_id="")
        .values_list("device_id", flat=True)
        .distinct()
        if device.strip()
    )
    return _Identifiers(frozenset(phones), frozenset(emails), frozenset(devices))


def _check_not_self(referrer: Customer, new_customer: Customer) -> None:
    if referrer.pk == new_customer.pk:
        raise ReferralRefusedError(
            SELF_SAME_CUSTOMER, "self-referral: a member cannot use their own referral code"
        )
    theirs, ours = _identifiers(referrer), _identifiers(new_customer)
    for code, label, shared in (
        (SELF_SHARED_PHONE, "phone number", theirs.phones & ours.phones),
        (SELF_SHARED_EMAIL, "e-mail address", theirs.emails & ours.emails),
        (SELF_SHARED_DEVICE, "device", theirs.devices & ours.devices),
    ):
        if shared:
            raise ReferralRefusedError(
                code,
                f"self-referral: customer {new_customer.external_id} shares a {label} with "
                f"the referrer {referrer.external_id}",
            )


# --------------------------------------------------------------------------- recording


def _find_referrer(referral_code: object, programme: Programme) -> Member:
    if not isinstance(referral_code, str) or not referral_code.strip():
        raise LoyaltyInputError("referral_code", "must be a non-empty text")
    code = referral_code.strip().upper()
    referrer = (
        Member.objects.select_related("customer")
        .filter(programme=programme, referral_code=code)
        .first()
    )
    if referrer is None:
        raise ReferralRefusedError(UNKNOWN_CODE, f"unknown referral code {code!r}")
    return referrer


def _check_new(new_customer: Customer, programme: Programme, as_of: datetime) -> None:
    earlier = (
        Referral.objects.filter(programme=programme, referee__customer=new_customer)
        .select_related("referrer__customer")
        .first()
    )
    if earlier is not None:
        raise ReferralRefusedError(
            ALREADY_REFERRED,
            f"customer {new_customer.external_id} was already referred by "
            f"{earlier.referrer.customer.external_id}",
        )
    first = (
        counted_orders()
        .filter(customer=new_customer, ordered_at__lte=as_of)
        .order_by("ordered_at", "pk")
        .first()
    )
    if first is not None:
        raise ReferralRefusedError(
            ALREADY_ORDERED,
            f"customer {new_customer.external_id} is not new: order {first.external_id} "
            f"of {timezone.localtime(first.ordered_at):%Y-%m-%d} came before the referral",
        )


def _check_cap(referrer: Member, policy: ReferralPolicy, as_of: datetime) -> None:
    since = as_of - timedelta(days=policy.period_days)
    made = Referral.objects.filter(
        referrer=referrer, referred_at__gt=since, referred_at__lte=as_of
    ).count()
    if made >= policy.max_referrals_per_period:
        raise ReferralRefusedError(
            CAP_REACHED,
            f"referral limit reached: {referrer.customer.external_id} made {made} referrals "
            f"in the last {policy.period_days} days (at most "
            f"{policy.max_referrals_per_period})",
        )


def record_referral(
    referral_code: str,
    new_customer: Customer,
    *,
    as_of: datetime | None = None,
    programme: Programme | None = None,
) -> Referral:
    """Record that ``new_customer`` came through the member whose code is ``referral_code``,
    enrolling them if needed. The referral stays pending until :func:`settle_referrals`.

    Raises :class:`ReferralRefusedError` (nothing written) for an unknown code, a
    self-referral, a customer referred before or who ordered before, or a referrer over the
    policy's cap; the cap is counted under the referrer's balance lock, so concurrent
    referrals cannot overshoot it.
    """
    if not isinstance(new_customer, Customer) or new_customer.pk is None:
        raise LoyaltyInputError("new_customer", "must be a saved customer")
    as_of = as_of or timezone.now()
    programme = programme or get_programme()
    referrer = _find_referrer(referral_code, programme)
    _check_not_self(referrer.customer, new_customer)
    _check_new(new_customer, programme, as_of)
    policy = get_referral_policy(programme)
    try:
        with transaction.atomic():
            # The referrer's balance row is the member's lock point (locks.py): holding it
            # makes the count and the insert one step for concurrent referrals.
            lock_point_balances([referrer.pk])
            _check_new(new_customer, programme, as_of)
            _check_cap(referrer, policy, as_of)
            referee = enrol_member(new_customer, as_of=as_of, programme=programme)
            return Referral.objects.create(
                programme=programme,
                referrer=referrer,
                referee=referee,
                referral_code=referrer.referral_code,
                referred_at=as_of,
            )
    except IntegrityError:
        # A concurrent referral of the same customer won the unique (programme, referee).
        _check_new(new_customer, programme, as_of)
        raise


# --------------------------------------------------------------------------- settlement


@dataclass(frozen=True)
class SettledReferrals:
    """What a settlement run did: referrals rewarded and refused now, those left pending,
    and the points granted."""

    rewarded: list[Referral]
    refused: list[Referral]
    pending: int
    points: int


def _first_order(referral: Referral) -> Order | None:
    """The new customer's first order placed from the referral on (cancelled ones too: a
    cancelled first order ends the referral)."""
    return (
        Order.objects.filter(
            customer_id=referral.referee.customer_id, ordered_at__gte=referral.referred_at
        )
        .order_by("ordered_at", "pk")
        .first()
    )


def _verdict(
    referral: Referral, order: Order | None, programme: Programme, as_of: datetime
) -> tuple[str, str]:
    """``(status, reason_code)`` for a pending referral as of ``as_of``."""
    if order is None or order.status == OrderStatusChoices.PLACED:
        return ReferralStatusChoices.PENDING, ""
    if order.status in (OrderStatusChoices.CANCELLED, OrderStatusChoices.RETURNED):
        return ReferralStatusChoices.REFUSED, FIRST_ORDER_CANCELLED
    refunded = order.refunds.filter(refunded_at__lte=as_of).aggregate(total=Sum("amount"))[
        "total"
    ] or Decimal(0)
    if refunded >= order.total_amount:
        return ReferralStatusChoices.REFUSED, FIRST_ORDER_REFUNDED
    if order.status not in PAID_STATUSES:
        return ReferralStatusChoices.PENDING, ""
    if order.ordered_at + timedelta(days=programme.pending_days) > as_of:
        return ReferralStatusChoices.PENDING, ""
    return ReferralStatusChoices.REWARDED, ""


def _settle_one(
    referral_id: int, policy: ReferralPolicy, programme: Programme, as_of: datetime
) -> Referral | None:
    """Settle one referral in its own transaction; None when it stays pending or a
    concurrent run settled it first (that run reports it)."""
    with transaction.atomic():
        referral = Referral.objects.select_related("referrer__customer", "referee__customer").get(
            pk=referral_id
        )
        # Lock order of locks.py: both balances first, then the referral row.
        lock_point_balances([referral.referrer_id, referral.referee_id])
        (locked,) = lock_rows(Referral.objects.filter(pk=referral_id))
        if locked.status != ReferralStatusChoices.PENDING:
            return None
        order = _first_order(referral)
        status, reason_code = _verdict(referral, order, programme, as_of)
        if status == ReferralStatusChoices.PENDING:
            return None
        assert order is not None
        referee_id = referral.referee.customer.external_id
        referral.first_order = order
        referral.settled_at = as_of
        referral.status = status
        referral.reason_code = reason_code
        if status == ReferralStatusChoices.REFUSED:
            fate = "cancelled" if reason_code == FIRST_ORDER_CANCELLED else "fully refunded"
            referral.reason = f"first order {order.external_id} of {referee_id} was {fate}"
        else:
            referral.reason = (
                f"first order {order.external_id} of {referee_id} passed the "
                f"{programme.pending_days}-day return window"
            )
            if policy.referrer_points:
                referral.referrer_transaction = adjust_points(
                    referral.referrer,
                    policy.referrer_points,
                    reason=f"referral bonus: referred {referee_id} (referral {referral.pk})",
                    actor=PROGRAMME_ACTOR,
                    idempotency_key=f"referral:{referral.pk}:referrer",
                    as_of=as_of,
                )
            if policy.referee_points:
                referral.referee_transaction = adjust_points(
                    referral.referee,
                    policy.referee_points,
                    reason=(
                        f"referral welcome bonus: referred by "
                        f"{referral.referrer.customer.external_id} (referral {referral.pk})"
                    ),
                    actor=PROGRAMME_ACTOR,
                    idempotency_key=f"referral:{referral.pk}:referee",
                    as_of=as_of,
                )
        referral.save(
            update_fields=[
                "first_order",
                "settled_at",
                "status",
                "reason_code",
                "reason",
                "referrer_transaction",
                "referee_transaction",
            ]
        )
        return referral


def settle_referrals(
    as_of: datetime | None = None, programme: Programme | None = None
) -> SettledReferrals:
    """Reward every pending referral whose new customer's first order has passed the
    programme's pending days without being cancelled or fully refunded (points for both
    sides, as the policy says, under keys ``referral:{id}:referrer`` and
    ``referral:{id}:referee``), and refuse those whose first order was cancelled, returned
    or fully refunded. One transaction per referral; running it twice grants nothing twice.
    """
    as_of = as_of or timezone.now()
    programme = programme or get_programme()
    policy = get_referral_policy(programme)
    rewarded: list[Referral] = []
    refused: list[Referral] = []
    ids = list(
        Referral.objects.filter(
            programme=programme, status=ReferralStatusChoices.PENDING, referred_at__lte=as_of
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for referral_id in ids:
        settled = _settle_one(referral_id, policy, programme, as_of)
        if settled is None:
            continue
        if settled.status == ReferralStatusChoices.REWARDED:
            rewarded.append(settled)
        else:
            refused.append(settled)
    pending = Referral.objects.filter(
        programme=programme, status=ReferralStatusChoices.PENDING, referred_at__lte=as_of
    ).count()
    points = sum(
        (referral.referrer_transaction.points if referral.referrer_transaction else 0)
        + (referral.referee_transaction.points if referral.referee_transaction else 0)
        for referral in rewarded
    )
    return SettledReferrals(rewarded, refused, pending, points)
