"""Coupons: templates, bulk code generation, validation, atomic redemption and release.

Every write happens inside ``transaction.atomic()`` and takes its locks in one order: the
order being redeemed for (``_lock_order``), then through ``patron.loyalty.locks`` the coupon
template, the code (``_lock_coupon``) and the redemption. Two redemptions of codes of the same
template therefore queue on the template row instead of deadlocking, and the limit checks read
counters nobody else can change until the transaction ends (no check-then-act race). Counters
move with ``F()`` and the tables' check constraints refuse any counter past its limit.

On SQLite the settings open every transaction with ``BEGIN IMMEDIATE`` and a busy timeout, so
writers queue for the database lock instead of failing; ``select_for_update`` is a no-op there.

Refusals raise :class:`CouponRefusedError` with a machine ``code`` (one of :data:`REFUSAL_CODES`)
and a human message; :func:`validate_coupon` returns the same refusal instead of raising.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from operator import or_

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from patron.catalog.models import Category
from patron.core.bulk import chunks
from patron.core.money import default_currency, quantize_amount, round_for_currency
from patron.customers.models import Customer
from patron.loyalty.errors import LoyaltyError, LoyaltyInputError
from patron.loyalty.locks import lock_rows
from patron.loyalty.models.coupons import (
    Coupon,
    CouponKindChoices,
    CouponRedemption,
    CouponTemplate,
)
from patron.orders.models import Order

#: Characters of generated codes: digits and capitals without the look-alikes 0/O and 1/I,
#: 32 symbols, so each character carries exactly 5 bits.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
#: The least entropy of a generated code's random part: guessing one of a million live codes
#: still takes about 2**40 tries.
MIN_CODE_ENTROPY_BITS = 60
#: Random characters of a generated code by default (12 x 5 = 60 bits).
DEFAULT_CODE_LENGTH = math.ceil(MIN_CODE_ENTROPY_BITS / math.log2(len(CODE_ALPHABET)))
#: Codes per generation call at most.
MAX_CODES_PER_CALL = 100_000
#: Draws of fresh codes for the ones that collided before giving up (a collision of 60-bit codes
#: is rare enough that a second draw all but never collides again).
_DRAW_ATTEMPTS = 5

_PREFIX_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9-]{0,19}")
_CODE_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9-]{2,63}")

#: Machine codes of refusals, with what they mean.
REFUSAL_CODES: dict[str, str] = {
    "unknown_code": "no coupon has this code",
    "inactive": "the coupon campaign is switched off",
    "not_yet_valid": "the coupon's validity has not started",
    "expired": "the coupon's validity has ended",
    "invalid_amount": "the order total or a line amount is zero, negative or not a number",
    "minimum_spend": "the order total is below the coupon's minimum spend",
    "out_of_scope": "no part of the order is in the coupon's categories",
    "total_limit_reached": "the code or its campaign has been used as often as allowed",
    "customer_limit_reached": "this customer has used the campaign as often as allowed",
    "not_stackable": "the coupon cannot be combined with another code on the order",
    "assigned_to_another_customer": "the code is personal to another customer",
    "order_conflict": "the order already redeemed this code for another customer",
}


class CouponRefusedError(LoyaltyError):
    """A coupon action was refused; ``code`` is a key of :data:`REFUSAL_CODES`.

    Refusals caused by the state of the coupon (limits, stacking, an order conflict) are
    conflicts (HTTP 409, :attr:`is_conflict`); the rest are unusable requests (HTTP 422).
    """

    CONFLICT_CODES = frozenset(
        {"total_limit_reached", "customer_limit_reached", "not_stackable", "order_conflict"}
    )

    def __init__(self, code: str, message: str) -> None:
        if code not in REFUSAL_CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def is_conflict(self) -> bool:
        """Whether the refusal comes from the coupon's state rather than from the request."""
        return self.code in self.CONFLICT_CODES


class CouponInputError(LoyaltyInputError):
    """Bad input to a coupon action other than a refusal; ``field`` names the parameter."""


@dataclass(frozen=True)
class CouponLine:
    """One line of an order as far as a coupon cares: its amount and its product's category."""

    amount: Decimal
    category_id: int | None = None


@dataclass(frozen=True)
class CouponQuote:
    """What a code would take off an order.

    ``eligible_amount`` is the part of the order the discount applies to (the whole order, or its
    lines in the coupon's categories); ``discount_amount`` is rounded to the currency.
    """

    code: str
    template_id: int
    kind: str
    eligible_amount: Decimal
    discount_amount: Decimal
    is_free_shipping: bool
    currency: str


@dataclass(frozen=True)
class CouponValidation:
    """The answer of :func:`validate_coupon`: a quote, or a refusal code and message."""

    quote: CouponQuote | None
    refusal_code: str = ""
    message: str = ""

    @property
    def is_valid(self) -> bool:
        """Whether the code can be redeemed on this order now."""
        return self.quote is not None


# --- templates and codes -----------------------------------------------------------------


def create_coupon_template(
    *,
    name: str,
    kind: str,
    value: Decimal = Decimal(0),
    currency: str | None = None,
    minimum_spend_amount: Decimal = Decimal(0),
    categories: Iterable[Category] = (),
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    total_use_limit: int | None = None,
    per_customer_use_limit: int | None = None,
    is_stackable: bool = False,
    is_active: bool = True,
) -> CouponTemplate:
    """Create a coupon template after checking every field.

    Raises ``django.core.exceptions.ValidationError`` whose ``message_dict`` names each wrong
    field (``value``, ``valid_until``, ``per_customer_use_limit`` ...); nothing is written then.
    """
    template = CouponTemplate(
        name=name,
        kind=kind,
        value=value,
        currency=currency or default_currency(),
        minimum_spend_amount=minimum_spend_amount,
        valid_from=valid_from,
        valid_until=valid_until,
        total_use_limit=total_use_limit,
        per_customer_use_limit=per_customer_use_limit,
        is_stackable=is_stackable,
        is_active=is_active,
    )
    template.full_clean()
    with transaction.atomic():
        template.save()
        template.categories.set(list(categories))
    return template


def normalize_code(code: str) -> str:
    """A code as stored: without surrounding blanks, upper-case (customers type ``ab-12``)."""
    return code.strip().upper()


def code_entropy_bits(length: int) -> float:
    """Bits of entropy of a generated code's random part of ``length`` characters."""
    return length * math.log2(len(CODE_ALPHABET))


def new_coupon_code(prefix: str = "", length: int = DEFAULT_CODE_LENGTH) -> str:
    """One random code: ``prefix`` then ``length`` characters of :data:`CODE_ALPHABET` drawn
    with ``secrets`` (a cryptographic source, so codes cannot be predicted from others)."""
    return prefix + "".join(secrets.choice(CODE_ALPHABET) for _ in range(length))


def _check_code_shape(prefix: str, length: int) -> str:
    prefix = normalize_code(prefix)
    if prefix and not _PREFIX_PATTERN.fullmatch(prefix):
        raise CouponInputError(
            "prefix",
            f"{prefix!r}: use 1-20 letters, digits or '-', starting with a letter or digit",
        )
    if code_entropy_bits(length) < MIN_CODE_ENTROPY_BITS:
        raise CouponInputError(
            "length",
            f"{length}: a code needs at least {DEFAULT_CODE_LENGTH} random characters "
            f"({MIN_CODE_ENTROPY_BITS} bits) so that it cannot be guessed",
        )
    if len(prefix) + length > 64:
        raise CouponInputError(
            "length",
            f"with the prefix, codes have at most 64 characters, not {len(prefix) + length}",
        )
    return prefix


def generate_coupon_codes(
    template: CouponTemplate,
    count: int | None = None,
    *,
    customers: Sequence[Customer] | None = None,
    prefix: str = "",
    length: int = DEFAULT_CODE_LENGTH,
    use_limit: int | None = 1,
    code_factory: Callable[[], str] | None = None,
) -> list[str]:
    """Create ``count`` new unique codes of ``template`` in one transaction and return them.

    With ``customers``, one personal code is made for each of them (``count`` is then left
    out). ``use_limit`` caps the uses of each code (1: single use; None: only the template's
    limits). Codes are ``prefix`` + ``length`` random characters (at least 60 bits); a code that
    collides with one already stored, or with another of the same call, is drawn again.
    ``code_factory`` replaces the random draw (tests use it to force collisions).
    Rows are inserted set-wise (``bulk_create``), a few hundred per statement.
    """
    if customers is not None:
        if count is not None:
            raise CouponInputError("count", "leave it out when customers are given (one each)")
        count = len(customers)
    if count is None or count < 1 or count > MAX_CODES_PER_CALL:
        raise CouponInputError("count", f"give 1 to {MAX_CODES_PER_CALL} codes, not {count}")
    if use_limit is not None and use_limit < 1:
        raise CouponInputError("use_limit", f"at least 1 (or None for no limit), not {use_limit}")
    prefix = _check_code_shape(prefix, length)
    draw = code_factory or (lambda: new_coupon_code(prefix, length))

    for _attempt in range(_DRAW_ATTEMPTS):
        codes = _draw_unique_codes(count, draw)
        rows = [
            Coupon(
                template=template,
                code=code,
                customer=customers[index] if customers is not None else None,
                use_limit=use_limit,
            )
            for index, code in enumerate(codes)
        ]
        try:
            with transaction.atomic():
                Coupon.objects.bulk_create(rows, batch_size=1000)
        except IntegrityError:
            # Another call stored one of these codes after we looked: draw the batch again.
            continue
        return codes
    raise CouponInputError(
        "length", "could not draw unique codes; use a longer length or another prefix"
    )


def _draw_unique_codes(count: int, draw: Callable[[], str]) -> list[str]:
    """``count`` distinct codes of which none is stored yet."""
    codes: dict[str, None] = {}  # insertion-ordered set
    for _attempt in range(_DRAW_ATTEMPTS):
        fresh = {draw() for _ in range(count - len(codes))} - codes.keys()
        taken: set[str] = set()
        for part in chunks(sorted(fresh)):
            taken.update(Coupon.objects.filter(code__in=part).values_list("code", flat=True))
        codes.update(dict.fromkeys(code for code in fresh if code not in taken))
        if len(codes) == count:
            return list(codes)
    raise CouponInputError(
        "length", "could not draw unique codes; use a longer length or another prefix"
    )


def create_shared_coupon(
    template: CouponTemplate,
    code: str | None = None,
    *,
    prefix: str = "",
    use_limit: int | None = None,
) -> Coupon:
    """One code that many customers may use, up to ``use_limit`` (None: the template's limits).

    ``code`` is a chosen code (``SUMMER25``: easy to say, so also easy to guess; cap its uses
    with the template's limits) or None for a random one.
    """
    if code is None:
        return Coupon.objects.get(
            code=generate_coupon_codes(template, 1, prefix=prefix, use_limit=use_limit)[0]
        )
    code = normalize_code(code)
    if not _CODE_PATTERN.fullmatch(code):
        raise CouponInputError(
            "code", f"{code!r}: use 3-64 letters, digits or '-', starting with a letter or digit"
        )
    if use_limit is not None and use_limit < 1:
        raise CouponInputError("use_limit", f"at least 1 (or None for no limit), not {use_limit}")
    if Coupon.objects.filter(code=code).exists():
        raise CouponInputError("code", f"{code!r} exists already")
    return Coupon.objects.create(template=template, code=code, use_limit=use_limit)


def coupon_lines_for_order(order: Order) -> list[CouponLine]:
    """The lines of a stored ``patron.orders`` order as :class:`CouponLine` values."""
    return [
        CouponLine(amount=line.line_total_amount, category_id=line.product.category_id)
        if line.product is not None
        else CouponLine(amount=line.line_total_amount)
        for line in order.lines.select_related("product")
    ]


# --- validation ------------------------------------------------------------------------------


def validate_coupon(
    code: str,
    customer: Customer,
    order_total: Decimal,
    order_lines: Sequence[CouponLine] | None = None,
    other_codes: Iterable[str] = (),
    *,
    at: dt.datetime | None = None,
) -> CouponValidation:
    """What ``code`` would take off an order of ``customer`` now, or why it would be refused.

    ``order_lines`` are needed only for coupons limited to categories; ``other_codes`` are the
    codes already on the order (for stacking). Reads without locks: the answer is advice, and
    :func:`redeem_coupon` checks again under its locks.
    """
    try:
        coupon = _get_coupon(code)
        quote = _quote(
            coupon.template, coupon, customer, order_total, order_lines, other_codes, at=at
        )
    except CouponRefusedError as refusal:
        return CouponValidation(quote=None, refusal_code=refusal.code, message=refusal.message)
    return CouponValidation(quote=quote)


def _get_coupon(code: str) -> Coupon:
    code = normalize_code(code)
    coupon = Coupon.objects.select_related("template").filter(code=code).first()
    if coupon is None:
        raise CouponRefusedError("unknown_code", f"no coupon has the code {code!r}")
    return coupon


def _quote(
    template: CouponTemplate,
    coupon: Coupon,
    customer: Customer,
    order_total: Decimal,
    order_lines: Sequence[CouponLine] | None,
    other_codes: Iterable[str],
    *,
    at: dt.datetime | None,
) -> CouponQuote:
    """Check every rule in a fixed order and price the discount; raise the first refusal."""
    at = at or timezone.now()
    if not template.is_active:
        raise CouponRefusedError("inactive", f"coupon {coupon.code} is no longer active")
    if coupon.customer_id is not None and coupon.customer_id != customer.pk:
        raise CouponRefusedError(
            "assigned_to_another_customer", f"coupon {coupon.code} belongs to another customer"
        )
    if template.valid_from is not None and at < template.valid_from:
        raise CouponRefusedError(
            "not_yet_valid",
            f"coupon {coupon.code} is valid from {template.valid_from.isoformat()}",
        )
    if template.valid_until is not None and at >= template.valid_until:
        raise CouponRefusedError(
            "expired", f"coupon {coupon.code} expired at {template.valid_until.isoformat()}"
        )
    order_total = _checked_amount(order_total, "order total")
    lines = [
        CouponLine(
            _checked_amount(line.amount, "order line amount", allow_zero=True), line.category_id
        )
        for line in order_lines or ()
    ]
    _check_stacking(template, coupon, other_codes)
    if order_total < template.minimum_spend_amount:
        raise CouponRefusedError(
            "minimum_spend",
            f"coupon {coupon.code} needs an order of at least "
            f"{round_for_currency(template.minimum_spend_amount, template.currency)} "
            f"{template.currency}; this one is {order_total}",
        )
    eligible = _eligible_amount(template, coupon, order_total, lines if order_lines else None)
    if coupon.use_limit is not None and coupon.times_used >= coupon.use_limit:
        raise CouponRefusedError(
            "total_limit_reached",
            f"coupon {coupon.code} has been used {coupon.times_used} of {coupon.use_limit} times",
        )
    if template.total_use_limit is not None and template.times_used >= template.total_use_limit:
        raise CouponRefusedError(
            "total_limit_reached",
            f"the coupons of {template.name!r} have been used {template.times_used} of "
            f"{template.total_use_limit} times",
        )
    if template.per_customer_use_limit is not None:
        used = CouponRedemption.objects.filter(
            template=template, customer=customer, released_at__isnull=True
        ).count()
        if used >= template.per_customer_use_limit:
            raise CouponRefusedError(
                "customer_limit_reached",
                f"this customer has used the coupons of {template.name!r} {used} of "
                f"{template.per_customer_use_limit} times",
            )
    return CouponQuote(
        code=coupon.code,
        template_id=template.pk,
        kind=template.kind,
        eligible_amount=eligible,
        discount_amount=_discount(template, eligible),
        is_free_shipping=template.kind == CouponKindChoices.FREE_SHIPPING,
        currency=template.currency,
    )


def _checked_amount(amount: Decimal, what: str, *, allow_zero: bool = False) -> Decimal:
    if not isinstance(amount, Decimal | int) or isinstance(amount, bool):
        raise CouponRefusedError("invalid_amount", f"the {what} must be a Decimal, not {amount!r}")
    amount = Decimal(amount)
    if not amount.is_finite() or amount < 0 or (amount == 0 and not allow_zero):
        rule = "at least 0" if allow_zero else "above 0"
        raise CouponRefusedError("invalid_amount", f"the {what} must be {rule}, not {amount}")
    return amount


def _check_stacking(template: CouponTemplate, coupon: Coupon, other_codes: Iterable[str]) -> None:
    wanted = sorted({normalize_code(code) for code in other_codes} - {coupon.code})
    if not wanted:
        return
    # Codes that do not exist take nothing off the order, so they do not stack either.
    others = dict(
        Coupon.objects.filter(code__in=wanted)
        .order_by("code")
        .values_list("code", "template__is_stackable")
    )
    if not others:
        return
    if not template.is_stackable:
        raise CouponRefusedError(
            "not_stackable",
            f"coupon {coupon.code} cannot be combined with another code ({', '.join(others)})",
        )
    blocking = [code for code, is_stackable in others.items() if not is_stackable]
    if blocking:
        raise CouponRefusedError(
            "not_stackable",
            f"code {blocking[0]} already on the order cannot be combined with another code",
        )


def _scope_category_ids(template: CouponTemplate) -> set[int]:
    """The template's categories and all their sub-categories (by the tree's ``path``)."""
    paths = list(template.categories.values_list("path", flat=True))
    if not paths:
        return set()
    condition = reduce(or_, (Q(path=path) | Q(path__startswith=f"{path} > ") for path in paths))
    return set(Category.objects.filter(condition).values_list("pk", flat=True))


def _eligible_amount(
    template: CouponTemplate,
    coupon: Coupon,
    order_total: Decimal,
    lines: Sequence[CouponLine] | None,
) -> Decimal:
    scope = _scope_category_ids(template)
    if not scope:
        return order_total
    names = ", ".join(template.categories.order_by("path").values_list("path", flat=True))
    if lines is None:
        raise CouponRefusedError(
            "out_of_scope",
            f"coupon {coupon.code} applies only to {names}; give the order's lines",
        )
    in_scope = sum((line.amount for line in lines if line.category_id in scope), Decimal(0))
    if in_scope <= 0:
        raise CouponRefusedError(
            "out_of_scope", f"coupon {coupon.code} applies only to {names}, not in this order"
        )
    # Line amounts before an order-level discount may add up to more than the total.
    return min(in_scope, order_total)


def _discount(template: CouponTemplate, eligible: Decimal) -> Decimal:
    if template.kind == CouponKindChoices.PERCENTAGE:
        amount = eligible * template.value / Decimal(100)
    elif template.kind == CouponKindChoices.FIXED_AMOUNT:
        amount = min(template.value, eligible)
    else:
        amount = Decimal(0)
    # Rounded half up to the currency's minor unit; a percentage never rounds above eligible.
    return min(round_for_currency(amount, template.currency), eligible)


# --- redemption ------------------------------------------------------------------------------


#: First key of the PostgreSQL advisory locks that queue the coupon redemptions of one order.
_ORDER_LOCK_SPACE = 0x436F  # "Co"


def _lock_order(order_id: str) -> None:
    """Queue the redemptions of one order, whatever their codes (inside ``atomic()``).

    Two codes of different templates lock different rows, so without this two requests could
    each see no other code on the order and both pass the stacking rule. The order may not be
    in the store, so there is no row to lock: PostgreSQL takes a transaction-scoped advisory
    lock on the order id's hash (a collision only makes two orders queue); SQLite's
    ``BEGIN IMMEDIATE`` has already serialised every writer. Taken before the template lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [_ORDER_LOCK_SPACE, order_id]
            )


def _lock_coupon(code: str) -> tuple[CouponTemplate, Coupon]:
    """Lock the template, then the code (the one lock order of this module); refuse unknown
    codes. Must run inside ``transaction.atomic()``."""
    code = normalize_code(code)
    found = Coupon.objects.filter(code=code).values_list("pk", "template_id").first()
    if found is None:
        raise CouponRefusedError("unknown_code", f"no coupon has the code {code!r}")
    coupon_pk, template_pk = found
    # A code never changes template, so the template found before the lock is still its own.
    (template,) = lock_rows(CouponTemplate.objects.filter(pk=template_pk))
    (coupon,) = lock_rows(Coupon.objects.filter(pk=coupon_pk))
    coupon.template = template
    return template, coupon


def redeem_coupon(
    code: str,
    customer: Customer,
    order_id: str,
    order_total: Decimal,
    order_lines: Sequence[CouponLine] | None = None,
    other_codes: Iterable[str] = (),
    *,
    at: dt.datetime | None = None,
) -> CouponRedemption:
    """Use ``code`` on order ``order_id`` of ``customer``, or raise :class:`CouponRefusedError`.

    Idempotent per (code, order): the same order redeeming again gets its earlier redemption
    back unchanged (another customer on the same order is an ``order_conflict``). Codes already
    redeemed by the same order count as ``other_codes`` for stacking. Under concurrency no limit
    can be passed: the checks and the counter updates happen under the template's and the
    code's row locks. A refusal writes nothing.
    """
    order_id = order_id.strip() if isinstance(order_id, str) else order_id
    if not isinstance(order_id, str) or not order_id or len(order_id) > 128:
        raise CouponInputError(
            "order_id", f"give the shop's order id (1-128 characters), not {order_id!r}"
        )
    at = at or timezone.now()
    with transaction.atomic():
        _lock_order(order_id)
        template, coupon = _lock_coupon(code)
        # One read: this code's row for the order (even released) and the order's other uses.
        of_order = list(
            CouponRedemption.objects.filter(order_id=order_id)
            .filter(Q(coupon=coupon) | Q(released_at__isnull=True))
            .select_related("coupon")
        )
        earlier = next((row for row in of_order if row.coupon_id == coupon.pk), None)
        if earlier is not None and earlier.released_at is None:
            if earlier.customer_id != customer.pk:
                raise CouponRefusedError(
                    "order_conflict",
                    f"order {order_id} redeemed coupon {coupon.code} for another customer",
                )
            return earlier
        on_order = [row.coupon.code for row in of_order if row.coupon_id != coupon.pk]
        quote = _quote(
            template,
            coupon,
            customer,
            order_total,
            order_lines,
            [*other_codes, *on_order],
            at=at,
        )
        Coupon.objects.filter(pk=coupon.pk).update(times_used=F("times_used") + 1)
        CouponTemplate.objects.filter(pk=template.pk).update(times_used=F("times_used") + 1)
        values = {
            "template": template,
            "customer": customer,
            "order_total_amount": quantize_amount(Decimal(order_total)),
            "discount_amount": quote.discount_amount,
            "is_free_shipping": quote.is_free_shipping,
            "currency": quote.currency,
            "redeemed_at": at,
            "released_at": None,
        }
        if earlier is None:
            return CouponRedemption.objects.create(coupon=coupon, order_id=order_id, **values)
        # The order was cancelled and its use released; it takes the use back.
        for field, value in values.items():
            setattr(earlier, field, value)
        earlier.save(update_fields=[*values])
        return earlier


def release_coupon_use(
    code: str, order_id: str, *, at: dt.datetime | None = None
) -> CouponRedemption | None:
    """Give back the use of ``code`` by order ``order_id`` (the order was cancelled).

    The freed use counts no more against any limit. Releasing again changes nothing and returns
    the released row; None when the order never redeemed the code. Unknown codes are refused.
    """
    with transaction.atomic():
        template, coupon = _lock_coupon(code)
        found = lock_rows(CouponRedemption.objects.filter(coupon=coupon, order_id=order_id))
        redemption = found[0] if found else None
        if redemption is None or redemption.released_at is not None:
            return redemption
        redemption.released_at = at or timezone.now()
        redemption.save(update_fields=["released_at"])
        Coupon.objects.filter(pk=coupon.pk).update(times_used=F("times_used") - 1)
        CouponTemplate.objects.filter(pk=template.pk).update(times_used=F("times_used") - 1)
        return redemption
