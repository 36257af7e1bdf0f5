"""The reward catalogue: defining rewards, who may have them, and buying one with points.

:func:`redeem_reward` is one transaction. It takes the locks in the order of
``patron.loyalty.locks`` (the member's point balance first, then the reward row), checks the
reward's rules under those locks (validity, tier, segment, stock, per-member limit), spends the
points through the ledger's :func:`~patron.loyalty.ledger.redeem_points` (which refuses a short
balance), takes one unit of stock with ``F()`` and, for coupon rewards, issues a personal
single-use code. Any refusal rolls the whole of it back: no points spent, no stock taken, no code.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from patron.analytics.choices import SegmentationChoices
from patron.analytics.models import AnalysisRun
from patron.analytics.selectors import (
    customer_analysis,
    latest_run,
    segmentation_field,
)
from patron.analytics.selectors import (
    segment_codes as analytics_segment_codes,
)
from patron.loyalty.coupons import generate_coupon_codes
from patron.loyalty.errors import IdempotencyConflictError, LoyaltyError, LoyaltyInputError
from patron.loyalty.ledger import redeem_points
from patron.loyalty.locks import lock_point_balances, lock_rows
from patron.loyalty.models import Coupon, CouponTemplate, Member, Programme, Tier
from patron.loyalty.models.rewards import Reward, RewardRedemption
from patron.loyalty.programme import get_programme

#: Longest idempotency key of a reward redemption (the ledger's key adds a prefix to it).
MAX_IDEMPOTENCY_KEY_LENGTH = 180
#: Prefix of the ledger idempotency key of a reward's points, so that it cannot meet another
#: event's key.
LEDGER_KEY_PREFIX = "reward-redemption:"

#: Machine codes of refusals, with what they mean.
REWARD_REFUSAL_CODES: dict[str, str] = {
    "other_programme": "the reward belongs to another programme than the member",
    "inactive": "the reward is switched off",
    "not_yet_valid": "the reward's validity has not started",
    "expired": "the reward's validity has ended",
    "tier_not_eligible": "the member's tier may not have this reward",
    "segment_not_eligible": "the member's segment in the latest analysis may not have it",
    "out_of_stock": "no stock left",
    "member_limit_reached": "the member has had this reward as often as allowed",
}


class RewardRefusedError(LoyaltyError):
    """A reward cannot be redeemed; ``code`` is a key of :data:`REWARD_REFUSAL_CODES`.

    A short balance is the ledger's ``InsufficientPointsError`` instead. Stock and limits are
    conflicts (HTTP 409, :attr:`is_conflict`); the rest mean the member may not have it (422).
    """

    CONFLICT_CODES = frozenset({"out_of_stock", "member_limit_reached"})

    def __init__(self, code: str, message: str) -> None:
        if code not in REWARD_REFUSAL_CODES:
            raise ValueError(f"unknown refusal code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def is_conflict(self) -> bool:
        """Whether the refusal comes from the reward's state rather than from who asks."""
        return self.code in self.CONFLICT_CODES


# --- catalogue ---------------------------------------------------------------------------


def create_reward(
    *,
    name: str,
    kind: str,
    points_cost: int,
    programme: Programme | None = None,
    description: str = "",
    coupon_template: CouponTemplate | None = None,
    stock: int | None = None,
    per_member_limit: int | None = None,
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    eligible_tiers: Iterable[Tier] = (),
    segmentation: str = "",
    segment_codes: Sequence[str] = (),
    is_active: bool = True,
) -> Reward:
    """Add a reward to the catalogue (the shop's programme by default) after checking every field.

    Raises ``django.core.exceptions.ValidationError`` whose ``message_dict`` names each wrong
    field; nothing is written then. ``segment_codes`` are codes of ``segmentation``
    (``champions`` of ``rfm``; a behaviour segment's number).
    """
    programme = programme or get_programme()
    tiers = list(eligible_tiers)
    reward = Reward(
        programme=programme,
        name=name,
        description=description,
        kind=kind,
        coupon_template=coupon_template,
        points_cost=points_cost,
        stock=stock,
        per_member_limit=per_member_limit,
        valid_from=valid_from,
        valid_until=valid_until,
        segmentation=segmentation,
        segment_codes=list(segment_codes),
        is_active=is_active,
    )
    errors: dict[str, list[str]] = {}
    try:
        reward.full_clean()
    except ValidationError as error:
        errors.update(error.message_dict)
    foreign = [tier.name for tier in tiers if tier.programme_id != programme.pk]
    if foreign:
        errors.setdefault("eligible_tiers", []).append(
            f"tiers of another programme: {', '.join(foreign)}"
        )
    if "segmentation" not in errors and "segment_codes" not in errors and segmentation:
        unknown = _unknown_segment_codes(segmentation, list(segment_codes))
        if unknown:
            errors.setdefault("segment_codes", []).append(
                f"not segments of {segmentation}: {', '.join(unknown)}"
            )
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        reward.save()
        reward.eligible_tiers.set(tiers)
    return reward


def _unknown_segment_codes(segmentation: str, codes: list[str]) -> list[str]:
    if segmentation == SegmentationChoices.BEHAVIOUR:
        # Behaviour segments are numbered by each run; any run may have segment n.
        return [code for code in codes if not code.isdigit()]
    # The coded segmentations list the same codes whatever the run.
    known = {
        code
        for code, _label in analytics_segment_codes(latest_run() or AnalysisRun(), segmentation)
    }
    return [code for code in codes if code not in known]


# --- eligibility -------------------------------------------------------------------------


def member_segment(member: Member, segmentation: str) -> str | None:
    """The member's segment code of ``segmentation`` in the latest analysis; None without one."""
    analysis = customer_analysis(member.customer)
    if analysis is None:
        return None
    return str(getattr(analysis, segmentation_field(segmentation)))


def check_reward_eligibility(
    reward: Reward, member: Member, *, at: dt.datetime | None = None
) -> None:
    """Raise :class:`RewardRefusedError` with the first rule ``member`` fails; points aside.

    Rules in order: same programme, active, validity, tier, segment, stock, per-member limit.
    """
    at = at or timezone.now()
    if reward.programme_id != member.programme_id:
        raise RewardRefusedError(
            "other_programme", f"reward {reward.name!r} is not in the member's programme"
        )
    if not reward.is_active:
        raise RewardRefusedError("inactive", f"reward {reward.name!r} is no longer offered")
    if reward.valid_from is not None and at < reward.valid_from:
        raise RewardRefusedError(
            "not_yet_valid",
            f"reward {reward.name!r} is offered from {reward.valid_from.isoformat()}",
        )
    if reward.valid_until is not None and at >= reward.valid_until:
        raise RewardRefusedError(
            "expired", f"reward {reward.name!r} was offered until {reward.valid_until.isoformat()}"
        )
    tier_names = dict(reward.eligible_tiers.values_list("pk", "name"))
    if tier_names and member.tier_id not in tier_names:
        raise RewardRefusedError(
            "tier_not_eligible",
            f"reward {reward.name!r} is for the tiers {', '.join(sorted(tier_names.values()))}",
        )
    if reward.segmentation:
        segment = member_segment(member, reward.segmentation)
        if segment not in reward.segment_codes:
            found = "no analysis of the member" if segment is None else f"the member is {segment}"
            raise RewardRefusedError(
                "segment_not_eligible",
                f"reward {reward.name!r} is for the {reward.segmentation} segments "
                f"{', '.join(reward.segment_codes)} ({found})",
            )
    if reward.stock is not None and reward.stock < 1:
        raise RewardRefusedError("out_of_stock", f"reward {reward.name!r} is out of stock")
    if reward.per_member_limit is not None:
        had = RewardRedemption.objects.filter(reward=reward, member=member).count()
        if had >= reward.per_member_limit:
            raise RewardRefusedError(
                "member_limit_reached",
                f"the member has had reward {reward.name!r} {had} of "
                f"{reward.per_member_limit} times",
            )


@dataclass(frozen=True)
class RewardOffer:
    """A reward of the catalogue as one member sees it: can they have it now, and if not, why."""

    reward: Reward
    is_eligible: bool
    refusal_code: str = ""
    message: str = ""


def reward_offers(member: Member, *, at: dt.datetime | None = None) -> list[RewardOffer]:
    """The active rewards of the member's programme, cheapest first, each with whether the
    member may redeem it now (points aside: the balance is checked when redeeming)."""
    offers = []
    rewards = Reward.objects.filter(programme_id=member.programme_id, is_active=True).order_by(
        "points_cost", "pk"
    )
    for reward in rewards:
        try:
            check_reward_eligibility(reward, member, at=at)
        except RewardRefusedError as refusal:
            offers.append(RewardOffer(reward, False, refusal.code, refusal.message))
        else:
            offers.append(RewardOffer(reward, True))
    return offers


# --- redemption --------------------------------------------------------------------------


def redeem_reward(
    member: Member,
    reward: Reward,
    *,
    idempotency_key: str,
    actor: str = "",
    at: dt.datetime | None = None,
) -> RewardRedemption:
    """Buy ``reward`` for ``member`` with points; once per ``idempotency_key``.

    The same key again returns the first redemption (another member or reward under the same
    key is an ``IdempotencyConflictError``). Refusals: :class:`RewardRefusedError` for the
    reward's rules, the ledger's ``InsufficientPointsError`` for a short balance; either way
    nothing is written.
    """
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise LoyaltyInputError("idempotency_key", "is required")
    key = idempotency_key.strip()
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise LoyaltyInputError(
            "idempotency_key", f"must be at most {MAX_IDEMPOTENCY_KEY_LENGTH} characters"
        )
    at = at or timezone.now()
    earlier = _earlier_redemption(key, member, reward)
    if earlier is not None:
        return earlier
    with transaction.atomic():
        # Lock order of locks.py: the member's balance, then the reward.
        lock_point_balances([member.pk])
        (locked,) = lock_rows(Reward.objects.filter(pk=reward.pk))
        # A concurrent delivery of the same key may have finished while this one waited.
        earlier = _earlier_redemption(key, member, reward)
        if earlier is not None:
            return earlier
        check_reward_eligibility(locked, member, at=at)
        entry = redeem_points(
            member,
            locked.points_cost,
            idempotency_key=f"{LEDGER_KEY_PREFIX}{key}",
            reward=f"#{locked.pk} {locked.name}",
            actor=actor,
            as_of=at,
        )
        if locked.stock is not None:
            Reward.objects.filter(pk=locked.pk).update(stock=F("stock") - 1)
        coupon = None
        if locked.coupon_template_id is not None:
            (code,) = generate_coupon_codes(
                CouponTemplate.objects.get(pk=locked.coupon_template_id),
                customers=[member.customer],
                use_limit=1,
            )
            coupon = Coupon.objects.get(code=code)
        return RewardRedemption.objects.create(
            reward=locked,
            member=member,
            points=locked.points_cost,
            idempotency_key=key,
            ledger_transaction=entry,
            coupon=coupon,
            redeemed_at=at,
        )


def _earlier_redemption(key: str, member: Member, reward: Reward) -> RewardRedemption | None:
    earlier = RewardRedemption.objects.filter(idempotency_key=key).first()
    if earlier is None:
        return None
    if earlier.member_id != member.pk or earlier.reward_id != reward.pk:
        raise IdempotencyConflictError(key, "it redeemed another reward or member")
    return earlier
