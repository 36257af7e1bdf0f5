"""Reward catalogue: field validation, eligibility (tier, segment of the latest analysis,
validity, stock, per-member limit), redemption through the ledger, idempotency, and refusals
that leave nothing behind."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from patron.analytics.choices import (
    AnalysisRunStatusChoices,
    LifecycleStageChoices,
    ValueClassChoices,
    ValueTierChoices,
)
from patron.analytics.models import AnalysisRun, CustomerAnalysis
from patron.customers.models import Customer
from patron.loyalty.coupons import create_coupon_template, redeem_coupon
from patron.loyalty.errors import IdempotencyConflictError, InsufficientPointsError
from patron.loyalty.ledger import adjust_points
from patron.loyalty.members import enrol_member
from patron.loyalty.models import (
    Coupon,
    CouponTemplate,
    LedgerTransaction,
    Member,
    Programme,
    Reward,
    RewardRedemption,
    Tier,
)
from patron.loyalty.programme import get_programme
from patron.loyalty.rewards import (
    REWARD_REFUSAL_CODES,
    RewardRefusedError,
    create_reward,
    redeem_reward,
    reward_offers,
)
from patron.loyalty.selectors import member_balances
from patron.loyalty.tiers import define_tier

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 11, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def programme() -> Programme:
    return get_programme()


@pytest.fixture
def gold(programme: Programme) -> Tier:
    define_tier("Silver", 0)
    return define_tier("Gold", 1000)


@pytest.fixture
def member(programme: Programme, gold: Tier) -> Member:
    customer = Customer.objects.create(external_id="alice")
    enrolled = enrol_member(customer, as_of=NOW - dt.timedelta(days=30))
    adjust_points(enrolled, 500, reason="welcome", actor="user:test", as_of=NOW)
    return enrolled


@pytest.fixture
def ten_off() -> CouponTemplate:
    return create_coupon_template(name="Ten off", kind="fixed_amount", value=Decimal(10))


def available(member: Member) -> int:
    return member_balances(member).available


def snapshot() -> tuple[object, ...]:
    """Everything a redemption could write."""
    return (
        list(RewardRedemption.objects.values_list("pk", flat=True)),
        list(LedgerTransaction.objects.values_list("pk", flat=True)),
        list(Reward.objects.order_by("pk").values_list("pk", "stock")),
        list(Coupon.objects.values_list("pk", flat=True)),
    )


def refused(member: Member, reward: Reward, at: dt.datetime = NOW) -> str:
    before = snapshot()
    with pytest.raises(RewardRefusedError) as raised:
        redeem_reward(member, reward, idempotency_key="refused", at=at)
    assert snapshot() == before
    assert raised.value.code in REWARD_REFUSAL_CODES
    offer = next(offer for offer in reward_offers(member, at=at) if offer.reward == reward)
    assert (offer.is_eligible, offer.refusal_code) == (False, raised.value.code)
    return raised.value.code


def analysis(customer: Customer, started_at: dt.datetime, rfm_segment: str) -> CustomerAnalysis:
    run = AnalysisRun.objects.create(
        as_of=started_at.date(), status=AnalysisRunStatusChoices.SUCCEEDED, started_at=started_at
    )
    return CustomerAnalysis.objects.create(
        run=run,
        customer=customer,
        recency_days=3,
        tenure_days=300,
        frequency=4,
        monetary=Decimal(400),
        average_order_value=Decimal(100),
        r_score=5,
        f_score=4,
        m_score=4,
        rfm_segment=rfm_segment,
        value_class=ValueClassChoices.values[0],
        lifecycle_stage=LifecycleStageChoices.values[0],
        value_score=80.0,
        value_tier=ValueTierChoices.values[0],
        behaviour_segment=1,
        behaviour_segment_name="Big spenders",
    )


# --- catalogue ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "wrong_field"),
    [
        ({"points_cost": 0}, "points_cost"),
        ({"kind": "coupon", "coupon_template": None}, "coupon_template"),
        ({"kind": "prize"}, "kind"),
        ({"name": ""}, "name"),
        ({"per_member_limit": 0}, "per_member_limit"),
        ({"valid_from": NOW, "valid_until": NOW - dt.timedelta(1)}, "valid_until"),
        ({"segmentation": "rfm"}, "segment_codes"),
        ({"segment_codes": ["champions"]}, "segmentation"),
        ({"segmentation": "rfm", "segment_codes": ["heroes"]}, "segment_codes"),
        ({"segmentation": "behaviour", "segment_codes": ["big"]}, "segment_codes"),
        ({"segmentation": "mood", "segment_codes": ["happy"]}, "segmentation"),
    ],
)
def test_reward_field_errors_name_the_field(
    programme: Programme, ten_off: CouponTemplate, fields: dict[str, object], wrong_field: str
) -> None:
    values: dict[str, object] = {
        "name": "Ten off",
        "kind": "coupon",
        "points_cost": 100,
        "coupon_template": ten_off,
    }
    values.update(fields)
    with pytest.raises(ValidationError) as raised:
        create_reward(**values)  # type: ignore[arg-type]
    assert wrong_field in raised.value.message_dict
    assert Reward.objects.count() == 0


def test_gift_has_no_template_and_free_shipping_needs_a_free_shipping_template(
    programme: Programme, ten_off: CouponTemplate
) -> None:
    with pytest.raises(ValidationError) as gift:
        create_reward(name="Mug", kind="gift", points_cost=50, coupon_template=ten_off)
    with pytest.raises(ValidationError) as shipping:
        create_reward(name="Ship", kind="free_shipping", points_cost=50, coupon_template=ten_off)
    assert "coupon_template" in gift.value.message_dict
    assert "coupon_template" in shipping.value.message_dict


def test_tiers_of_another_programme_are_refused(programme: Programme) -> None:
    other = Programme.objects.create(name="Other", is_active=False)
    foreign = define_tier("Elsewhere", 0, programme=other)
    with pytest.raises(ValidationError) as raised:
        create_reward(name="Mug", kind="gift", points_cost=50, eligible_tiers=[foreign])
    assert "eligible_tiers" in raised.value.message_dict


# --- redemption ---------------------------------------------------------------------------


def test_coupon_reward_spends_points_takes_stock_and_issues_a_personal_code(
    member: Member, ten_off: CouponTemplate
) -> None:
    reward = create_reward(
        name="Ten off", kind="coupon", points_cost=120, coupon_template=ten_off, stock=3
    )
    redemption = redeem_reward(member, reward, idempotency_key="k1", actor="user:alice", at=NOW)

    assert available(member) == 500 - 120
    reward.refresh_from_db()
    assert reward.stock == 2
    assert redemption.points == 120
    assert redemption.ledger_transaction is not None
    assert redemption.ledger_transaction.points == 120
    coupon = redemption.coupon
    assert coupon is not None
    assert (coupon.customer_id, coupon.use_limit, coupon.template_id) == (
        member.customer_id,
        1,
        ten_off.pk,
    )
    # The issued code works once, for its owner.
    used = redeem_coupon(coupon.code, member.customer, "order-1", Decimal(50), at=NOW)
    assert used.discount_amount == Decimal("10.00")


def test_gift_reward_issues_no_code(member: Member) -> None:
    reward = create_reward(name="Mug", kind="gift", points_cost=500)
    redemption = redeem_reward(member, reward, idempotency_key="k1", at=NOW)
    assert redemption.coupon is None
    assert available(member) == 0


def test_same_key_returns_the_first_redemption_and_spends_once(member: Member) -> None:
    reward = create_reward(name="Mug", kind="gift", points_cost=100, stock=5)
    first = redeem_reward(member, reward, idempotency_key="k1", at=NOW)
    again = redeem_reward(member, reward, idempotency_key="k1", at=NOW + dt.timedelta(1))
    assert again.pk == first.pk
    assert available(member) == 400
    reward.refresh_from_db()
    assert reward.stock == 4
    other = create_reward(name="Pen", kind="gift", points_cost=10)
    with pytest.raises(IdempotencyConflictError):
        redeem_reward(member, other, idempotency_key="k1", at=NOW)
    assert RewardRedemption.objects.count() == 1


def test_short_balance_is_refused_by_the_ledger_and_leaves_nothing(
    member: Member, ten_off: CouponTemplate
) -> None:
    reward = create_reward(
        name="Big", kind="coupon", points_cost=501, coupon_template=ten_off, stock=1
    )
    before = snapshot()
    with pytest.raises(InsufficientPointsError):
        redeem_reward(member, reward, idempotency_key="k1", at=NOW)
    assert snapshot() == before
    assert available(member) == 500


def test_out_of_stock(member: Member) -> None:
    reward = create_reward(name="Mug", kind="gift", points_cost=10, stock=1)
    redeem_reward(member, reward, idempotency_key="k1", at=NOW)
    assert refused(member, reward) == "out_of_stock"


def test_member_limit(member: Member) -> None:
    reward = create_reward(name="Mug", kind="gift", points_cost=10, per_member_limit=2)
    redeem_reward(member, reward, idempotency_key="k1", at=NOW)
    redeem_reward(member, reward, idempotency_key="k2", at=NOW)
    assert refused(member, reward) == "member_limit_reached"
    assert available(member) == 480


def test_inactive_and_validity(member: Member) -> None:
    off = create_reward(name="Off", kind="gift", points_cost=10, is_active=False)
    early = create_reward(
        name="Early", kind="gift", points_cost=10, valid_from=NOW + dt.timedelta(1)
    )
    late = create_reward(name="Late", kind="gift", points_cost=10, valid_until=NOW)
    with pytest.raises(RewardRefusedError) as raised:
        redeem_reward(member, off, idempotency_key="k1", at=NOW)
    assert raised.value.code == "inactive"
    assert refused(member, early) == "not_yet_valid"
    assert refused(member, late) == "expired"


def test_tier_eligibility(member: Member, gold: Tier) -> None:
    member.refresh_from_db()
    assert member.tier is not None
    assert member.tier.name == "Silver"
    reward = create_reward(name="Lounge", kind="gift", points_cost=10, eligible_tiers=[gold])
    assert refused(member, reward) == "tier_not_eligible"
    Member.objects.filter(pk=member.pk).update(tier=gold)
    member.refresh_from_db()
    assert redeem_reward(member, reward, idempotency_key="k1", at=NOW).points == 10


def test_segment_of_the_latest_analysis(member: Member) -> None:
    reward = create_reward(
        name="For champions",
        kind="gift",
        points_cost=10,
        segmentation="rfm",
        segment_codes=["champions"],
    )
    assert refused(member, reward) == "segment_not_eligible"  # no analysis yet
    analysis(member.customer, NOW - dt.timedelta(days=60), "champions")
    analysis(member.customer, NOW - dt.timedelta(days=1), "at_risk")
    # The latest run says at_risk; the older champions row does not count.
    assert refused(member, reward) == "segment_not_eligible"
    analysis(member.customer, NOW, "champions")
    assert redeem_reward(member, reward, idempotency_key="k1", at=NOW).points == 10


def test_offers_list_the_catalogue_cheapest_first(member: Member) -> None:
    create_reward(name="Mug", kind="gift", points_cost=300)
    create_reward(name="Pen", kind="gift", points_cost=20, stock=0)
    create_reward(name="Hidden", kind="gift", points_cost=1, is_active=False)
    offers = reward_offers(member, at=NOW)
    assert [(offer.reward.name, offer.is_eligible, offer.refusal_code) for offer in offers] == [
        ("Pen", False, "out_of_stock"),
        ("Mug", True, ""),
    ]
