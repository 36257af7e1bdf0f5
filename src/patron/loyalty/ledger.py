"""Points actions: every change of a member's points is one immutable ledger transaction
whose postings sum to zero, applied exactly once per idempotency key, with the member's
balance row locked for the whole database transaction.

Accounts and their legs (see ``models/ledger.py``):

=========== ======================================================================
earn        member_pending +P, programme_issued -P (and a lot of P points)
activate    member_pending -P, member_available +P
refund      member_pending -p, member_available -a, member_debt -d, programme_issued +(p+a+d)
redeem      member_available -P, programme_redeemed +P
expire      member_available -P, programme_expired +P
adjust      member_available +-P, programme_adjustments -+P
debt_repay  member_available -P, member_debt +P
=========== ======================================================================
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from patron.core.bulk import insert_models, update_integers
from patron.core.sql import (
    columns,
    fetch_all,
    fetch_one,
    increment,
    insert,
    insert_parts,
    mark_saved,
    quote,
)
from patron.loyalty.errors import (
    IdempotencyConflictError,
    InsufficientPointsError,
    LoyaltyError,
    LoyaltyInputError,
)
from patron.loyalty.locks import lock_point_balance, lock_point_balances
from patron.loyalty.members import enrol_member, enrol_members
from patron.loyalty.models import (
    LedgerTransaction,
    LotConsumption,
    Member,
    PointBalance,
    PointLot,
    Posting,
    Programme,
    Tier,
)
from patron.loyalty.models.ledger import AccountChoices, TransactionKindChoices
from patron.loyalty.models.programme import TierMetricChoices
from patron.loyalty.programme import (
    CANCELLED_STATUSES,
    PAID_STATUSES,
    available_from,
    earning_rules,
    expiry_for,
    get_programme,
    quote_order_points,
)
from patron.loyalty.tiers import evaluate_member_tier, in_window, qualifying_values
from patron.orders.models import Order, OrderLine, Refund
from patron.privacy import audit
from patron.privacy.choices import AuditActionChoices

Kind = TransactionKindChoices
Account = AccountChoices
MAX_POINTS_PER_ACTION = 10**12


# --------------------------------------------------------------------------- helpers


def _fingerprint(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _check_key(idempotency_key: object) -> str:
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise LoyaltyInputError("idempotency_key", "must be a non-empty text")
    if len(idempotency_key) > 200:
        raise LoyaltyInputError("idempotency_key", "must be at most 200 characters")
    return idempotency_key


def _check_member(member: object) -> Member:
    if not isinstance(member, Member) or member.pk is None:
        raise LoyaltyInputError("member", f"must be an enrolled member, not {member!r}")
    return member


def _check_points(points: object, *, allow_negative: bool = False) -> int:
    if isinstance(points, bool) or not isinstance(points, int):
        raise LoyaltyInputError("points", f"must be a whole number of points, not {points!r}")
    if points == 0:
        raise LoyaltyInputError("points", "must not be zero")
    if points < 0 and not allow_negative:
        raise LoyaltyInputError("points", f"must be positive, got {points}")
    if abs(points) > MAX_POINTS_PER_ACTION:
        raise LoyaltyInputError("points", f"must be at most {MAX_POINTS_PER_ACTION} in size")
    return points


def _check_text(field: str, value: object, *, required: bool) -> str:
    if not isinstance(value, str):
        raise LoyaltyInputError(field, f"must be a text, not {type(value).__name__}")
    if required and not value.strip():
        raise LoyaltyInputError(field, "is required")
    if len(value) > 500:
        raise LoyaltyInputError(field, "must be at most 500 characters")
    return value.strip()


def _find(key: str, kind: str, fingerprint: str) -> LedgerTransaction | None:
    """The transaction recorded under ``key``; a conflict if it was for another request."""
    return _same_request(
        LedgerTransaction.objects.filter(idempotency_key=key).first(), key, kind, fingerprint
    )


def _same_request(
    found: LedgerTransaction | None, key: str, kind: str, fingerprint: str
) -> LedgerTransaction | None:
    """``found`` (recorded under ``key``) if it was this request; a conflict if not."""
    if found is None:
        return None
    if found.kind != kind:
        raise IdempotencyConflictError(key, f"it recorded a {found.kind}, not a {kind}")
    if found.request_fingerprint != fingerprint:
        raise IdempotencyConflictError(key)
    return found


def _apply_once(
    key: str,
    kind: str,
    fingerprint: str,
    apply: Callable[[], LedgerTransaction],
    *,
    check_first: bool = True,
) -> LedgerTransaction:
    """Run ``apply`` in a transaction unless ``key`` was applied before; a concurrent delivery
    that wins the race is found through the unique key and returned instead. ``apply`` checks
    the key again under the lock; ``check_first=False`` leaves that check to it alone (one
    query less where duplicates are rare)."""
    if check_first:
        found = _find(key, kind, fingerprint)
        if found is not None:
            return found
    try:
        with transaction.atomic():
            return apply()
    except IntegrityError:
        found = _find(key, kind, fingerprint)
        if found is not None:
            return found
        raise


def _record(
    member: Member,
    *,
    kind: str,
    key: str,
    fingerprint: str,
    points: int,
    occurred_at: datetime,
    legs: dict[str, int],
    **fields: Any,
) -> LedgerTransaction:
    """Write a transaction, its postings and the matching change of the cached balance."""
    if sum(legs.values()) != 0:
        raise AssertionError(f"postings of a {kind} must sum to zero: {legs}")
    # Every change of points passes here: hand-written inserts (patron.core.sql), not the
    # ORM's compiled ones, keep an API redemption to a few milliseconds.
    (entry,) = insert(
        [
            LedgerTransaction(
                programme_id=member.programme_id,
                member=member,
                kind=kind,
                idempotency_key=key,
                request_fingerprint=fingerprint,
                points=points,
                occurred_at=occurred_at,
                **fields,
            )
        ]
    )
    postings = insert(
        [
            Posting(transaction=entry, member=member, account=account, points=amount)
            for account, amount in legs.items()
            if amount
        ]
    )
    _remember_postings(entry, postings)
    deltas = {
        "pending": legs.get(Account.MEMBER_PENDING, 0),
        "available": legs.get(Account.MEMBER_AVAILABLE, 0),
        "debt": -legs.get(Account.MEMBER_DEBT, 0),
        "redeemed": legs.get(Account.PROGRAMME_REDEEMED, 0),
        "expired": legs.get(Account.PROGRAMME_EXPIRED, 0),
        # Earned on orders net of refunds, plus points added by hand; points removed by hand
        # are not "unearned" (else a removal and a refund could take it below zero).
        "lifetime_earned": -legs.get(Account.PROGRAMME_ISSUED, 0)
        - min(0, legs.get(Account.PROGRAMME_ADJUSTMENTS, 0)),
    }
    increment(PointBalance, "member", member.pk, deltas)
    return entry


def _remember_postings(entry: LedgerTransaction, postings: list[Posting]) -> None:
    """Keep the postings just written as ``entry.postings.all()``, as a prefetch would, so
    that answering with the entry reads nothing back (postings are never changed)."""
    written = entry.postings.all()
    written._result_cache = postings
    written._prefetch_done = True  # type: ignore[attr-defined]
    entry._prefetched_objects_cache = {"postings": written}  # type: ignore[attr-defined]


def _available_lots(member_id: int) -> list[PointLot]:
    return _open_lots(member_id, activated=True)


def _pending_lots(member_id: int) -> list[PointLot]:
    return _open_lots(member_id, activated=False)


def _open_lots(member_id: int, *, activated: bool) -> list[PointLot]:
    """The member's lots with points left, available or pending, oldest first (FIFO: the
    oldest earning is spent and expires first). SQL of its own: every spend reads them."""
    lot = columns(PointLot, "l")
    rows = fetch_all(
        f"SELECT {lot.sql} FROM {lot.table} WHERE {lot.column('member_id')} = %s "
        f"AND {lot.column('activated_by_id')} IS {'NOT ' if activated else ''}NULL "
        f"AND {lot.column('remaining_points')} > 0 "
        f"ORDER BY {lot.column('earned_at')}, {lot.column('id')}",
        [member_id],
    )
    return [instance for row in rows if (instance := lot.instance(row)) is not None]


def _plan(lots: Iterable[PointLot], points: int) -> list[tuple[PointLot, int]]:
    """Take up to ``points`` from ``lots`` in their order."""
    plan: list[tuple[PointLot, int]] = []
    left = points
    for lot in lots:
        if left <= 0:
            break
        take = min(lot.remaining_points, left)
        if take > 0:
            plan.append((lot, take))
            left -= take
    return plan


def _consume(entry: LedgerTransaction, plan: list[tuple[PointLot, int]]) -> None:
    insert([LotConsumption(transaction=entry, lot=lot, points=take) for lot, take in plan])
    for lot, take in plan:
        increment(PointLot, "id", lot.pk, {"remaining_points": -take})


def _new_lot(
    member: Member, entry: LedgerTransaction, earned_at: datetime, **fields: Any
) -> PointLot:
    return PointLot.objects.create(
        member=member,
        earned_by=entry,
        points=entry.points,
        remaining_points=entry.points,
        earned_at=earned_at,
        expires_at=expiry_for(member.programme, earned_at),
        **fields,
    )


def _activate_lot(member: Member, lot: PointLot) -> LedgerTransaction:
    """Make a pending lot's remaining points available (its own idempotency key)."""
    lot.refresh_from_db(fields=["remaining_points", "activated_by"])
    remaining = lot.remaining_points
    entry = _record(
        member,
        kind=Kind.ACTIVATE,
        key=f"activate:lot:{lot.pk}",
        fingerprint=_fingerprint({"action": "activate", "lot": lot.pk}),
        points=remaining,
        occurred_at=lot.available_at,
        legs=(
            {Account.MEMBER_PENDING: -remaining, Account.MEMBER_AVAILABLE: remaining}
            if remaining
            else {}
        ),
        related_transaction_id=lot.earned_by_id,
        reason="return window passed",
    )
    PointLot.objects.filter(pk=lot.pk, activated_by__isnull=True).update(activated_by=entry)
    return entry


def _repay_debt(
    member: Member, as_of: datetime, after: LedgerTransaction
) -> LedgerTransaction | None:
    """Repay the member's debt from available points (oldest lots first), if both exist."""
    balance = PointBalance.objects.get(member_id=member.pk)
    repay = min(balance.debt, balance.available)
    if repay <= 0:
        return None
    plan = _plan(_available_lots(member.pk), repay)
    entry = _record(
        member,
        kind=Kind.DEBT_REPAY,
        key=f"debt_repay:after:{after.idempotency_key}"[:200],
        fingerprint=_fingerprint({"action": "debt_repay", "after": after.pk}),
        points=repay,
        occurred_at=as_of,
        legs={Account.MEMBER_AVAILABLE: -repay, Account.MEMBER_DEBT: repay},
        related_transaction=after,
        reason=f"debt repaid from points made available by {after.kind}",
    )
    _consume(entry, plan)
    return entry


def _locked_member(member_id: int) -> tuple[Member, PointBalance]:
    balance = lock_point_balance(member_id)
    return balance.member, balance


# --------------------------------------------------------------------------- orders


def award_points_for_order(
    order: Order,
    *,
    idempotency_key: str,
    as_of: datetime | None = None,
    programme: Programme | None = None,
) -> LedgerTransaction:
    """Award the points a paid order earns (see ``quote_order_points``), pending until the
    programme's pending days have passed since the order. The customer is enrolled if needed.

    An order earns once: a second delivery (same key, or another key for the same order)
    returns the first transaction. A refused channel or small order records an ``earn`` of
    0 points with the reason instead of raising.
    """
    if not isinstance(order, Order) or order.pk is None:
        raise LoyaltyInputError("order", f"must be a saved order, not {order!r}")
    key = _check_key(idempotency_key)
    fingerprint = _fingerprint({"action": "award", "order": order.external_id})
    if order.status not in PAID_STATUSES:
        # A late re-delivery of the payment, after the order was cancelled, gets its answer.
        found = _find(key, Kind.EARN, fingerprint)
        if found is not None:
            return found
        raise LoyaltyInputError(
            "order.status", f"order {order.external_id} is {order.status}; only paid orders earn"
        )
    as_of = as_of or timezone.now()
    programme = programme or get_programme()
    member_id = enrol_member(order.customer, as_of=as_of, programme=programme).pk

    def apply() -> LedgerTransaction:
        member, _balance = _locked_member(member_id)
        # One read for this key, an earlier earn of the order and refunds recorded before it.
        known = list(
            LedgerTransaction.objects.filter(Q(idempotency_key=key) | Q(order=order)).order_by("pk")
        )
        found = _same_request(
            next((entry for entry in known if entry.idempotency_key == key), None),
            key,
            Kind.EARN,
            fingerprint,
        )
        if found is not None:
            return found
        earlier = next((entry for entry in known if entry.kind == Kind.EARN), None)
        if earlier is not None:
            return earlier
        refunded = sum(
            (entry.refunded_amount for entry in known if entry.kind == Kind.REFUND),
            Decimal(0),
        )
        quote = quote_order_points(programme, order, tier=member.tier, refunded=refunded)
        common: dict[str, Any] = {
            "key": key,
            "fingerprint": fingerprint,
            "occurred_at": order.ordered_at,
        }
        if quote.points == 0:
            # Still a qualifying spend when the order is eligible but rounds to no points.
            entry = _record(
                member,
                kind=Kind.EARN,
                points=0,
                spend_amount=quote.spend,
                legs={},
                reason=quote.reason,
                order=order,
                **common,
            )
            if quote.spend:
                evaluate_member_tier(member, as_of, f"order {order.external_id}")
            return entry
        entry = _record(
            member,
            kind=Kind.EARN,
            points=quote.points,
            qualifying_points=quote.points,
            spend_amount=quote.spend,
            legs={Account.MEMBER_PENDING: quote.points, Account.PROGRAMME_ISSUED: -quote.points},
            reason=quote.reason[:500],
            order=order,
            **common,
        )
        lot = _new_lot(
            member,
            entry,
            order.ordered_at,
            available_at=available_from(programme, order.ordered_at),
        )
        if lot.available_at <= as_of:
            # The return window has already passed (an old order, or no pending period).
            activation = _activate_lot(member, lot)
            _repay_debt(member, as_of, activation)
        evaluate_member_tier(member, as_of, f"order {order.external_id}")
        return entry

    return _apply_once(key, Kind.EARN, fingerprint, apply, check_first=False)


def award_points_for_orders(
    orders: Sequence[Order],
    *,
    idempotency_keys: Sequence[str],
    as_of: datetime | None = None,
    programme: Programme | None = None,
) -> list[LedgerTransaction]:
    """Award many paid orders at once (imports, ingest): the same transactions, lots, tier
    changes and balances as :func:`award_points_for_order` on each order in turn, written
    in one database transaction with a handful of statements for the whole batch.

    Returns one transaction per order, in order (the earlier one for a duplicate). Every
    order and key is checked before anything is written; a key already used for another
    request refuses the whole batch. If another writer used one of the keys meanwhile, the
    batch falls back to one order at a time.
    """
    if isinstance(orders, str | bytes) or not isinstance(orders, Sequence):
        raise LoyaltyInputError("orders", "must be a list of orders")
    if isinstance(idempotency_keys, str | bytes) or not isinstance(idempotency_keys, Sequence):
        raise LoyaltyInputError("idempotency_keys", "must be a list of keys")
    if len(orders) != len(idempotency_keys):
        raise LoyaltyInputError(
            "idempotency_keys", f"{len(idempotency_keys)} keys for {len(orders)} orders"
        )
    keys = [_check_key(key) for key in idempotency_keys]
    fingerprints: dict[str, str] = {}
    for index, order in enumerate(orders):
        if not isinstance(order, Order) or order.pk is None:
            raise LoyaltyInputError(f"orders[{index}]", f"must be a saved order, not {order!r}")
        if order.status not in PAID_STATUSES:
            raise LoyaltyInputError(
                f"orders[{index}].status",
                f"order {order.external_id} is {order.status}; only paid orders earn",
            )
        fingerprint = _fingerprint({"action": "award", "order": order.external_id})
        if fingerprints.setdefault(keys[index], fingerprint) != fingerprint:
            raise IdempotencyConflictError(keys[index], "two orders of the batch share it")
    if not orders:
        return []
    as_of = as_of or timezone.now()
    programme = programme or get_programme()
    member_ids = enrol_members(
        [order.customer_id for order in orders], as_of=as_of, programme=programme
    )
    try:
        with transaction.atomic():
            return _award_batch(list(orders), keys, fingerprints, member_ids, as_of, programme)
    except IntegrityError:
        return [
            award_points_for_order(order, idempotency_key=key, as_of=as_of, programme=programme)
            for order, key in zip(orders, keys, strict=True)
        ]


def _award_batch(
    orders: list[Order],
    keys: list[str],
    fingerprints: dict[str, str],
    member_of_customer: dict[int, int],
    as_of: datetime,
    programme: Programme,
) -> list[LedgerTransaction]:
    member_ids = sorted(set(member_of_customer.values()))
    lock_point_balances(member_ids)
    members = {
        member.pk: member
        for member in Member.objects.select_related("programme", "tier").filter(pk__in=member_ids)
    }
    order_ids = [order.pk for order in orders]
    by_key: dict[str, LedgerTransaction] = {}
    earn_of_order: dict[int, LedgerTransaction] = {}
    refunded: dict[int, Decimal] = defaultdict(Decimal)
    for entry in LedgerTransaction.objects.filter(
        Q(idempotency_key__in=keys) | Q(order_id__in=order_ids)
    ).order_by("pk"):
        if entry.idempotency_key in fingerprints:
            _same_request(
                entry, entry.idempotency_key, Kind.EARN, fingerprints[entry.idempotency_key]
            )
            by_key[entry.idempotency_key] = entry
        if entry.kind == Kind.EARN and entry.order_id is not None:
            earn_of_order.setdefault(entry.order_id, entry)
        elif entry.kind == Kind.REFUND and entry.order_id:
            refunded[entry.order_id] += entry.refunded_amount
    rules = earning_rules(programme)
    lines: dict[int, list[tuple[Decimal, int | None]]] = defaultdict(list)
    if rules.category_multipliers:
        for order_id, amount, category_id in OrderLine.objects.filter(
            order_id__in=order_ids
        ).values_list("order_id", "line_total_amount", "product__category_id"):
            lines[order_id].append((amount, category_id))
    tiers = list(Tier.objects.filter(programme=programme).order_by("threshold"))
    values = qualifying_values(member_ids, programme, as_of) if tiers else {}
    spend_metric = programme.tier_metric == TierMetricChoices.SPEND

    results: list[LedgerTransaction] = []
    new: list[tuple[LedgerTransaction, Order]] = []
    for order, key in zip(orders, keys, strict=True):
        if key in by_key:
            results.append(by_key[key])
            continue
        if order.pk in earn_of_order:
            results.append(earn_of_order[order.pk])
            continue
        member = members[member_of_customer[order.customer_id]]
        quote = quote_order_points(
            programme,
            order,
            tier=member.tier,
            refunded=refunded[order.pk],
            rules=rules,
            lines=lines[order.pk],
        )
        entry = LedgerTransaction(
            programme_id=programme.pk,
            member=member,
            kind=Kind.EARN,
            idempotency_key=key,
            request_fingerprint=fingerprints[key],
            points=quote.points,
            qualifying_points=quote.points,
            spend_amount=quote.spend,
            reason=quote.reason[:500],
            order=order,
            occurred_at=order.ordered_at,
        )
        by_key[key] = earn_of_order[order.pk] = entry
        results.append(entry)
        new.append((entry, order))
        if tiers and (quote.points or quote.spend):
            # As one by one: this order's tier change applies to the member's next order.
            if in_window(programme, order.ordered_at, as_of):
                values[member.pk] += quote.spend if spend_metric else quote.points
            evaluate_member_tier(
                member,
                as_of,
                f"order {order.external_id}",
                value=values[member.pk],
                tiers=tiers,
            )
    if not new:
        return results
    now = timezone.now()
    entries = [entry for entry, _ in new]
    ids = insert_models(
        LedgerTransaction,
        {
            "programme_id": [programme.pk] * len(entries),
            "member_id": [entry.member_id for entry in entries],
            "kind": [Kind.EARN.value] * len(entries),
            "idempotency_key": [entry.idempotency_key for entry in entries],
            "request_fingerprint": [entry.request_fingerprint for entry in entries],
            "points": [entry.points for entry in entries],
            "qualifying_points": [entry.qualifying_points for entry in entries],
            "spend_amount": [entry.spend_amount for entry in entries],
            "refunded_amount": [Decimal(0)] * len(entries),
            "reason": [entry.reason for entry in entries],
            "actor": [""] * len(entries),
            "order_id": [entry.order_id for entry in entries],
            "occurred_at": [entry.occurred_at for entry in entries],
            "created_at": [now] * len(entries),
        },
    )
    for entry, pk in zip(entries, ids, strict=True):
        entry.pk = pk
        entry.created_at = now
        entry._state.adding = False
    earning = [(entry, order) for entry, order in new if entry.points > 0]
    _post(
        [
            (entry.pk, entry.member_id, account, points)
            for entry, _ in earning
            for account, points in (
                (Account.MEMBER_PENDING, entry.points),
                (Account.PROGRAMME_ISSUED, -entry.points),
            )
        ]
    )
    available_at = [available_from(programme, order.ordered_at) for _, order in earning]
    lot_ids = insert_models(
        PointLot,
        {
            "member_id": [entry.member_id for entry, _ in earning],
            "earned_by_id": [entry.pk for entry, _ in earning],
            "points": [entry.points for entry, _ in earning],
            "remaining_points": [entry.points for entry, _ in earning],
            "earned_at": [order.ordered_at for _, order in earning],
            "available_at": available_at,
            "expires_at": [expiry_for(programme, order.ordered_at) for _, order in earning],
        },
    )
    earned: dict[int, int] = defaultdict(int)
    for entry, _ in earning:
        earned[entry.member_id] += entry.points
    _add_to_balances(pending=earned, lifetime_earned=earned)
    # Lots whose return window has already passed (old orders, or no pending period) become
    # available at once. Members in debt repay it after each activation, one lot at a time
    # as one by one does; the others' activations are written together.
    due = [
        _NewLot(lot_id, entry, when)
        for lot_id, (entry, _), when in zip(lot_ids, earning, available_at, strict=True)
        if when <= as_of
    ]
    in_debt = set(
        PointBalance.objects.filter(
            member_id__in={lot.entry.member_id for lot in due}, debt__gt=0
        ).values_list("member_id", flat=True)
    )
    _activate_new_lots(programme, [lot for lot in due if lot.entry.member_id not in in_debt])
    for lot in due:
        if lot.entry.member_id in in_debt:
            member = members[lot.entry.member_id]
            activation = _activate_lot(member, PointLot.objects.get(pk=lot.pk))
            _repay_debt(member, as_of, activation)
    return results


@dataclass(frozen=True)
class _NewLot:
    """A lot written by this batch: its key, its earn and when it becomes available."""

    pk: int
    entry: LedgerTransaction
    available_at: datetime


def _post(postings: list[tuple[int, int, str, int]]) -> None:
    """Write postings (transaction id, member id, account, points) set-based."""
    insert_models(
        Posting,
        {
            "transaction_id": [posting[0] for posting in postings],
            "member_id": [posting[1] for posting in postings],
            "account": [posting[2] for posting in postings],
            "points": [posting[3] for posting in postings],
        },
    )


def _add_to_balances(**deltas: dict[int, int]) -> None:
    """Add ``deltas[field][member_id]`` to the members' cached balances, one statement per
    500 members instead of one per member (the rows are locked already)."""
    fields = sorted(deltas)
    member_ids = sorted({member_id for delta in deltas.values() for member_id in delta})
    update_integers(
        PointBalance._meta.db_table,
        "member_id",
        fields,
        [
            [member_id, *(deltas[field].get(member_id, 0) for field in fields)]
            for member_id in member_ids
        ],
        add=True,
    )


def _activate_new_lots(programme: Programme, lots: list[_NewLot]) -> None:
    """The ``activate`` transactions of lots written in this database transaction (nothing
    consumed them yet), set-based: the same rows as :func:`_activate_lot` on each."""
    if not lots:
        return
    now = timezone.now()
    ids = insert_models(
        LedgerTransaction,
        {
            "programme_id": [programme.pk] * len(lots),
            "member_id": [lot.entry.member_id for lot in lots],
            "kind": [Kind.ACTIVATE.value] * len(lots),
            "idempotency_key": [f"activate:lot:{lot.pk}" for lot in lots],
            "request_fingerprint": [
                _fingerprint({"action": "activate", "lot": lot.pk}) for lot in lots
            ],
            "points": [lot.entry.points for lot in lots],
            "qualifying_points": [0] * len(lots),
            "spend_amount": [Decimal(0)] * len(lots),
            "refunded_amount": [Decimal(0)] * len(lots),
            "reason": ["return window passed"] * len(lots),
            "actor": [""] * len(lots),
            "related_transaction_id": [lot.entry.pk for lot in lots],
            "occurred_at": [lot.available_at for lot in lots],
            "created_at": [now] * len(lots),
        },
    )
    _post(
        [
            (pk, lot.entry.member_id, account, points)
            for pk, lot in zip(ids, lots, strict=True)
            for account, points in (
                (Account.MEMBER_PENDING, -lot.entry.points),
                (Account.MEMBER_AVAILABLE, lot.entry.points),
            )
        ]
    )
    update_integers(
        PointLot._meta.db_table,
        "id",
        ["activated_by_id"],
        [[lot.pk, pk] for lot, pk in zip(lots, ids, strict=True)],
    )
    activated: dict[int, int] = defaultdict(int)
    for lot in lots:
        activated[lot.entry.member_id] += lot.entry.points
    _add_to_balances(pending={k: -v for k, v in activated.items()}, available=activated)


def reverse_points_for_refund(
    order: Order,
    refund: Refund,
    *,
    idempotency_key: str,
    as_of: datetime | None = None,
    programme: Programme | None = None,
) -> LedgerTransaction:
    """Take back the points of the refunded part of an order.

    After all refunds so far the order keeps ``floor(earned x (net - refunded) / net)``
    points, so partial refunds add up to the whole and a full refund takes everything back.
    The points come from the order's own lot first, then other pending points, then
    available points (oldest first); what was already spent becomes a recorded debt that
    later earning repays. A refund recorded before the order earned is remembered, and the
    award then earns on the net spend only.

    A refund is applied once; if its amount has grown since (a later import row for the
    order), the call reverses the points of the difference only.
    """
    if not isinstance(order, Order) or order.pk is None:
        raise LoyaltyInputError("order", f"must be a saved order, not {order!r}")
    if not isinstance(refund, Refund) or refund.pk is None:
        raise LoyaltyInputError("refund", f"must be a saved refund, not {refund!r}")
    if refund.order_id != order.pk:
        raise LoyaltyInputError(
            "refund.order", f"refund {refund.external_id} is not of order {order.external_id}"
        )
    if refund.amount <= 0:
        raise LoyaltyInputError("refund.amount", f"must be positive, got {refund.amount}")
    fingerprint = _fingerprint(
        {
            "action": "refund",
            "order": order.external_id,
            "refund": refund.external_id,
            "amount": str(refund.amount),
        }
    )
    return _reverse_order_points(
        order,
        refund,
        key=_check_key(idempotency_key),
        fingerprint=fingerprint,
        as_of=as_of,
        programme=programme,
    )


def reverse_points_for_cancellation(
    order: Order,
    *,
    idempotency_key: str,
    as_of: datetime | None = None,
    programme: Programme | None = None,
) -> LedgerTransaction:
    """Take back every point an order still holds because it was cancelled or returned
    after it earned: the rest of its total beyond the refunds already recorded counts as
    refunded, with the same sources and debt rule as :func:`reverse_points_for_refund`."""
    if not isinstance(order, Order) or order.pk is None:
        raise LoyaltyInputError("order", f"must be a saved order, not {order!r}")
    if order.status not in CANCELLED_STATUSES:
        raise LoyaltyInputError(
            "order.status",
            f"order {order.external_id} is {order.status}; only cancelled or returned orders "
            "give all their points back",
        )
    fingerprint = _fingerprint({"action": "cancel", "order": order.external_id})
    return _reverse_order_points(
        order,
        None,
        key=_check_key(idempotency_key),
        fingerprint=fingerprint,
        as_of=as_of,
        programme=programme,
    )


def _reverse_order_points(
    order: Order,
    refund: Refund | None,
    *,
    key: str,
    fingerprint: str,
    as_of: datetime | None,
    programme: Programme | None,
) -> LedgerTransaction:
    """Reverse the points of ``refund`` (the part not reversed yet) or, without one, of the
    whole order's remaining total (a cancellation)."""
    found = _find(key, Kind.REFUND, fingerprint)
    if found is not None:
        return found
    as_of = as_of or timezone.now()
    programme = programme or get_programme()
    member_id = enrol_member(order.customer, as_of=as_of, programme=programme).pk
    label = (
        f"refund {refund.external_id}"
        if refund is not None
        else f"cancellation of order {order.external_id}"
    )

    def apply() -> LedgerTransaction:
        member, _balance = _locked_member(member_id)
        found = _find(key, Kind.REFUND, fingerprint)
        if found is not None:
            return found
        prior = list(LedgerTransaction.objects.filter(order=order, kind=Kind.REFUND).order_by("pk"))
        prior_amount = sum((entry.refunded_amount for entry in prior), Decimal(0))
        if refund is not None:
            of_refund = [entry for entry in prior if entry.refund_id == refund.pk]
            amount = refund.amount - sum((entry.refunded_amount for entry in of_refund), Decimal(0))
            if of_refund and amount <= 0:
                # Applied before (another key, or the amount did not grow).
                return of_refund[-1]
            if prior_amount + amount > order.total_amount:
                raise LoyaltyInputError(
                    "refund.amount",
                    f"refunds of order {order.external_id} would total "
                    f"{prior_amount + amount}, more than its {order.total_amount}",
                )
        else:
            if any(entry.refund_id is None for entry in prior):
                return next(entry for entry in prior if entry.refund_id is None)
            amount = max(Decimal(0), order.total_amount - prior_amount)
        earn = LedgerTransaction.objects.filter(order=order, kind=Kind.EARN).first()
        common: dict[str, Any] = {
            "key": key,
            "fingerprint": fingerprint,
            "occurred_at": refund.refunded_at if refund is not None else as_of,
            "order": order,
            "refund": refund,
            "refunded_amount": amount,
        }
        if earn is None or earn.spend_amount <= 0:
            reason = (
                f"{label} recorded before the order earned: the award counts the net spend"
                if earn is None
                else f"order {order.external_id} earned no points"
            )
            return _record(
                member,
                kind=Kind.REFUND,
                points=0,
                legs={},
                reason=reason,
                related_transaction=earn,
                **common,
            )
        base = earn.spend_amount
        after_award = [entry for entry in prior if entry.related_transaction_id == earn.pk]
        refunded_before = sum((entry.refunded_amount for entry in after_award), Decimal(0))
        refunded_after = refunded_before + amount
        reversed_before = sum(entry.points for entry in after_award)
        # Exact rational arithmetic: a Decimal quotient a hair below a whole number would
        # floor one point short.
        kept = math.floor(
            Fraction(earn.points)
            * max(Fraction(0), Fraction(base - refunded_after))
            / Fraction(base)
        )
        reverse = max(0, earn.points - kept - reversed_before)
        spend_delta = -min(amount, max(Decimal(0), base - refunded_before))
        own_lot = PointLot.objects.filter(earned_by=earn, remaining_points__gt=0)
        others_pending = [lot for lot in _pending_lots(member.pk) if lot.earned_by_id != earn.pk]
        others_available = [
            lot for lot in _available_lots(member.pk) if lot.earned_by_id != earn.pk
        ]
        plan = _plan([*own_lot, *others_pending, *others_available], reverse)
        from_pending = sum(take for lot, take in plan if lot.activated_by_id is None)
        from_available = sum(take for lot, take in plan if lot.activated_by_id is not None)
        debt = reverse - from_pending - from_available
        reason = f"{label} of {amount}: {reverse} of {earn.points} points"
        if debt:
            reason += f"; {debt} already spent, recorded as debt"
        entry = _record(
            member,
            kind=Kind.REFUND,
            points=reverse,
            qualifying_points=-reverse,
            spend_amount=spend_delta,
            legs={
                Account.MEMBER_PENDING: -from_pending,
                Account.MEMBER_AVAILABLE: -from_available,
                Account.MEMBER_DEBT: -debt,
                Account.PROGRAMME_ISSUED: reverse,
            },
            reason=reason,
            related_transaction=earn,
            **common,
        )
        _consume(entry, plan)
        evaluate_member_tier(member, as_of, label)
        return entry

    return _apply_once(key, Kind.REFUND, fingerprint, apply)


# --------------------------------------------------------------------------- members


def redeem_points(
    member: Member,
    points: int,
    *,
    idempotency_key: str,
    reason: str = "",
    reward: str = "",
    actor: str = "",
    as_of: datetime | None = None,
) -> LedgerTransaction:
    """Spend ``points`` of the member's available points (oldest lots first).

    Raises :class:`InsufficientPointsError` (nothing written) when fewer are available;
    the check and the spend happen under the member's balance lock, so concurrent
    redemptions can never spend more than the balance.
    """
    member = _check_member(member)
    points = _check_points(points)
    key = _check_key(idempotency_key)
    reason = _check_text("reason", reason, required=False)
    reward = _check_text("reward", reward, required=False)
    actor = _check_text("actor", actor, required=False)
    fingerprint = _fingerprint(
        {
            "action": "redeem",
            "member": member.pk,
            "points": points,
            "reason": reason,
            "reward": reward,
        }
    )
    as_of = as_of or timezone.now()
    if connection.vendor == "postgresql":
        return _redeem_in_one_statement(
            member,
            points,
            key=key,
            fingerprint=fingerprint,
            occurred_at=as_of,
            reason=(f"reward {reward}: " if reward else "") + reason,
            actor=actor,
        )

    def apply() -> LedgerTransaction:
        locked_member, balance = _locked_member(member.pk)
        if balance.available < points:
            # A replay of a redemption that spent these points is answered, not refused.
            found = _find(key, Kind.REDEEM, fingerprint)
            if found is not None:
                return found
            raise InsufficientPointsError(points, balance.available)
        plan = _plan(_available_lots(member.pk), points)
        entry = _record(
            locked_member,
            kind=Kind.REDEEM,
            key=key,
            fingerprint=fingerprint,
            points=points,
            occurred_at=as_of,
            legs={Account.MEMBER_AVAILABLE: -points, Account.PROGRAMME_REDEEMED: points},
            reason=(f"reward {reward}: " if reward else "") + reason,
            actor=actor,
        )
        _consume(entry, plan)
        return entry

    # No read of the key first (replays are rare): a replay's insert of the key fails on its
    # unique index, the transaction rolls back and _apply_once answers with the first one.
    return _apply_once(key, Kind.REDEEM, fingerprint, apply, check_first=False)


#: Actors whose adjustments are the programme's own grants (birthday and anniversary points,
#: referral bonuses: ``care.PROGRAMME_ACTOR``), not manual adjustments to audit.
AUTOMATIC_ACTORS = frozenset({"programme"})


def _redeem_in_one_statement(
    member: Member,
    points: int,
    *,
    key: str,
    fingerprint: str,
    occurred_at: datetime,
    reason: str,
    actor: str,
) -> LedgerTransaction:
    """:func:`redeem_points` on PostgreSQL: after the balance lock, one statement writes the
    transaction (or finds its key taken), its postings, the FIFO lot consumptions, the lots'
    and the balance's new figures. Redemption is the API's hot write: this is 2 statements
    where the general path takes 9, and no savepoint (nothing is written before the key is
    claimed, so a taken key needs no rollback). The general path stays the reference: the
    ledger's stateful and concurrency tests run this one on PostgreSQL against the same
    model."""
    entry = LedgerTransaction(
        programme_id=member.programme_id,
        member=member,
        kind=Kind.REDEEM,
        idempotency_key=key,
        request_fingerprint=fingerprint,
        points=points,
        occurred_at=occurred_at,
        reason=reason,
        actor=actor,
    )
    outcome: LedgerTransaction | LoyaltyError
    # Joins the caller's transaction (the API's idempotency record) or opens one; errors are
    # raised after it, since without a savepoint an exception inside would doom the caller's.
    with transaction.atomic(savepoint=False):
        available = _lock_available_points(member.pk)
        if available < points:
            outcome = _replay_or(key, fingerprint, InsufficientPointsError(points, available))
        else:
            written = _write_redemption(entry, member, points)
            outcome = entry if written else _replay_or(key, fingerprint, None)
    if isinstance(outcome, LoyaltyError):
        raise outcome
    return outcome


def _lock_available_points(member_id: int) -> int:
    balance = columns(PointBalance, "b", only=("available",))
    row = fetch_one(
        f"SELECT {balance.column('available')} FROM {balance.table} "
        f"WHERE {balance.column('member_id')} = %s FOR UPDATE",
        [member_id],
    )
    if row is None:
        raise PointBalance.DoesNotExist(f"member #{member_id} has no point balance")
    return int(row[0])


def _replay_or(
    key: str, fingerprint: str, refusal: LoyaltyError | None
) -> LedgerTransaction | LoyaltyError:
    """The redemption recorded under ``key`` if there is one (a replay), else ``refusal``; a
    conflict (the key used for another request) as the error to raise."""
    try:
        found = _find(key, Kind.REDEEM, fingerprint)
    except IdempotencyConflictError as conflict:
        return conflict
    if found is not None:
        return found
    if refusal is None:
        raise AssertionError(f"ledger key {key!r} was taken but no transaction has it")
    return refusal


def _write_redemption(entry: LedgerTransaction, member: Member, points: int) -> bool:
    """Write the redemption ``entry`` of ``points`` (the balance is locked and holds them);
    False, writing nothing, when its idempotency key is already taken."""
    lot, balance = columns(PointLot, "l"), columns(PointBalance, "b")
    insert_transaction, transaction_values, transaction_params = insert_parts([entry])
    member_id = member.pk
    rows = fetch_all(
        f"WITH tx AS ({insert_transaction} {transaction_values} "
        f"ON CONFLICT ({quote('idempotency_key')}) DO NOTHING RETURNING {quote('id')}), "
        f"lots AS (SELECT {lot.column('id')} AS id, {lot.column('remaining_points')} AS remaining, "
        f"SUM({lot.column('remaining_points')}) OVER "
        f"(ORDER BY {lot.column('earned_at')}, {lot.column('id')}) AS running "
        f"FROM {lot.table} WHERE {lot.column('member_id')} = %s "
        f"AND {lot.column('activated_by_id')} IS NOT NULL "
        f"AND {lot.column('remaining_points')} > 0), "
        # FIFO: each lot gives what is still missing once the older lots have given theirs.
        f"plan AS (SELECT id, LEAST(remaining, %s - (running - remaining)) AS take FROM lots "
        f"WHERE running - remaining < %s), "
        f"postings AS (INSERT INTO {quote(Posting._meta.db_table)} "
        f"({quote('transaction_id')}, {quote('member_id')}, {quote('account')}, "
        f"{quote('points')}) SELECT tx.id, %s, legs.account, legs.points FROM tx, "
        f"(VALUES (1, %s, %s::bigint), (2, %s, %s::bigint)) AS legs(leg, account, points) "
        f"ORDER BY legs.leg RETURNING {quote('id')}, {quote('account')}, {quote('points')}), "
        f"consumed AS (INSERT INTO {quote(LotConsumption._meta.db_table)} "
        f"({quote('transaction_id')}, {quote('lot_id')}, {quote('points')}) "
        f"SELECT tx.id, plan.id, plan.take FROM tx, plan), "
        f"spent AS (UPDATE {lot.table} SET {quote('remaining_points')} = "
        f"{lot.column('remaining_points')} - plan.take FROM plan, tx "
        f"WHERE {lot.column('id')} = plan.id), "
        f"balance AS (UPDATE {balance.table} SET "
        f"{quote('available')} = {balance.column('available')} - %s, "
        f"{quote('redeemed')} = {balance.column('redeemed')} + %s FROM tx "
        f"WHERE {balance.column('member_id')} = %s) "
        f"SELECT tx.id, postings.id, postings.account, postings.points "
        f"FROM tx, postings ORDER BY postings.id",
        [
            *transaction_params,
            member_id,
            points,
            points,
            member_id,
            Account.MEMBER_AVAILABLE,
            -points,
            Account.PROGRAMME_REDEEMED,
            points,
            points,
            points,
            member_id,
        ],
    )
    if not rows:
        return False
    mark_saved(entry, rows[0][0])
    postings = []
    for _, posting_id, account, amount in rows:
        written = Posting(transaction=entry, member=member, account=account, points=amount)
        mark_saved(written, posting_id)
        postings.append(written)
    _remember_postings(entry, postings)
    return True


def adjust_points(
    member: Member,
    points: int,
    *,
    reason: str,
    actor: str,
    idempotency_key: str | None = None,
    as_of: datetime | None = None,
) -> LedgerTransaction:
    """Add (positive) or remove (negative) points by hand, available at once.

    ``reason`` is required and ``actor`` names who did it (``user:alice``,
    ``token:shop-api``). Added points form a lot that expires by the programme's policy and
    first repay any debt; removed points must be available (else
    :class:`InsufficientPointsError`). Adjustments do not count towards tiers. Adjustments by
    a person or a token (not the programme's own grants) are written to the audit log.
    """
    member = _check_member(member)
    points = _check_points(points, allow_negative=True)
    reason = _check_text("reason", reason, required=True)
    actor = _check_text("actor", actor, required=True)
    key = (
        _check_key(idempotency_key) if idempotency_key is not None else f"adjust:{uuid.uuid4().hex}"
    )
    fingerprint = _fingerprint(
        {
            "action": "adjust",
            "member": member.pk,
            "points": points,
            "reason": reason,
            "actor": actor,
        }
    )
    as_of = as_of or timezone.now()

    def apply() -> LedgerTransaction:
        locked_member, balance = _locked_member(member.pk)
        found = _find(key, Kind.ADJUST, fingerprint)
        if found is not None:
            return found
        common: dict[str, Any] = {
            "kind": Kind.ADJUST,
            "key": key,
            "fingerprint": fingerprint,
            "points": points,
            "occurred_at": as_of,
            "reason": reason,
            "actor": actor,
        }
        if points > 0:
            entry = _record(
                locked_member,
                legs={Account.MEMBER_AVAILABLE: points, Account.PROGRAMME_ADJUSTMENTS: -points},
                **common,
            )
            _new_lot(locked_member, entry, as_of, available_at=as_of, activated_by=entry)
            _repay_debt(locked_member, as_of, entry)
        else:
            if balance.available < -points:
                raise InsufficientPointsError(-points, balance.available)
            plan = _plan(_available_lots(member.pk), -points)
            entry = _record(
                locked_member,
                legs={Account.MEMBER_AVAILABLE: points, Account.PROGRAMME_ADJUSTMENTS: -points},
                **common,
            )
            _consume(entry, plan)
        if actor not in AUTOMATIC_ACTORS:
            # In the adjustment's transaction: no adjustment without its audit event.
            audit.record(
                AuditActionChoices.POINTS_ADJUSTMENT,
                customer=locked_member.customer,
                details={"points": points, "transaction_id": entry.pk, "actor": actor},
            )
        return entry

    return _apply_once(key, Kind.ADJUST, fingerprint, apply)


# --------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class JobResult:
    """What a points job did: members touched, transactions written, points moved."""

    members: int
    transactions: int
    points: int


def activate_pending_points(
    as_of: datetime | None = None, programme: Programme | None = None
) -> JobResult:
    """Make available every pending lot whose pending period has ended by ``as_of``, then
    repay debts from them. One transaction per member; running it twice changes nothing."""
    as_of = as_of or timezone.now()
    programme = programme or get_programme()
    due = PointLot.objects.filter(
        member__programme=programme, activated_by__isnull=True, available_at__lte=as_of
    )
    member_ids = sorted(set(due.values_list("member_id", flat=True)))
    transactions = points = 0
    for member_id in member_ids:
        with transaction.atomic():
            member, _balance = _locked_member(member_id)
            lots = list(due.filter(member_id=member_id).order_by("available_at", "pk"))
            last: LedgerTransaction | None = None
            for lot in lots:
                last = _activate_lot(member, lot)
                transactions += 1
                points += last.points
            if last is not None and _repay_debt(member, as_of, last) is not None:
                transactions += 1
    return JobResult(len(member_ids), transactions, points)


def expire_points(as_of: datetime | None = None, programme: Programme | None = None) -> JobResult:
    """Expire what is left of available lots whose expiry date has come (first in, first
    out: spent points were taken from the lots already, so they are never expired)."""
    as_of = as_of or timezone.now()
    programme = programme or get_programme()
    due = PointLot.objects.filter(
        member__programme=programme,
        activated_by__isnull=False,
        remaining_points__gt=0,
        expires_at__lte=as_of,
    )
    member_ids = sorted(set(due.values_list("member_id", flat=True)))
    transactions = points = 0
    for member_id in member_ids:
        with transaction.atomic():
            member, _balance = _locked_member(member_id)
            for lot in due.filter(member_id=member_id).order_by("expires_at", "pk"):
                remaining = lot.remaining_points
                entry = _record(
                    member,
                    kind=Kind.EXPIRE,
                    key=f"expire:lot:{lot.pk}",
                    fingerprint=_fingerprint({"action": "expire", "lot": lot.pk}),
                    points=remaining,
                    occurred_at=lot.expires_at or as_of,
                    legs={
                        Account.MEMBER_AVAILABLE: -remaining,
                        Account.PROGRAMME_EXPIRED: remaining,
                    },
                    related_transaction_id=lot.earned_by_id,
                    reason=f"points earned {timezone.localtime(lot.earned_at):%Y-%m-%d} expired",
                )
                _consume(entry, [(lot, remaining)])
                transactions += 1
                points += remaining
    return JobResult(len(member_ids), transactions, points)
