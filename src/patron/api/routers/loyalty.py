"""``/api/v1/loyalty``: the programme and its set-up (tiers, promotions, category multipliers,
the reward catalogue); members, their points and ledger, adjustments and redemptions.

Writes that move points, and writes that add something each time they run (a promotion, a
reward), require an ``Idempotency-Key`` header (see ``patron.api.idempotency``): a retry with
the same key gets the first answer, never a second posting or a second row. Writes that set a
value by name (a tier, a category multiplier, the programme's settings) may carry one.

Every caller may read; only loyalty managers and administrators change the programme and its
set-up (``patron.api.permissions``).
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Body, Field, Query, Router, Schema, Status

from patron.api.auth import requires_permission, requires_scope
from patron.api.choices import ScopeChoices
from patron.api.errors import ApiError, ErrorOut, ValidationErrorOut
from patron.api.idempotency import require_idempotency_key
from patron.api.schemas import MAX_PAGE_NUMBER, ApiDateTime, ShopDateTime
from patron.api.shortcuts import (
    get_customer_or_404,
    input_error,
    invalid_request,
    model_validation_error,
)
from patron.catalog.models import Category
from patron.core.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from patron.core.roles import ApiPermissionChoices
from patron.loyalty.errors import (
    IdempotencyConflictError,
    InsufficientPointsError,
    LoyaltyError,
    LoyaltyInputError,
    MemberNotFoundError,
)
from patron.loyalty.ledger import adjust_points, redeem_points
from patron.loyalty.members import enrol_member, get_member
from patron.loyalty.models import (
    CategoryMultiplier,
    CouponTemplate,
    LedgerTransaction,
    Member,
    Programme,
    Promotion,
    Referral,
    Reward,
    Tier,
)
from patron.loyalty.models.programme import MULTIPLIER_DECIMAL_PLACES, MULTIPLIER_MAX_DIGITS
from patron.loyalty.programme import (
    add_promotion,
    configure_programme,
    get_programme,
    set_category_multiplier,
)
from patron.loyalty.referrals import UNKNOWN_CODE, ReferralRefusedError, record_referral
from patron.loyalty.rewards import RewardRefusedError, create_reward, redeem_reward, reward_offers
from patron.loyalty.selectors import (
    cached_balances,
    ledger_entries,
    next_expiry,
    programme_category_multipliers,
    programme_rewards,
)
from patron.loyalty.tiers import define_tier

router = Router(tags=["loyalty"])

_ERRORS: dict[int, type[Schema]] = {
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    422: ValidationErrorOut,
}
MAX_LEDGER_PAGE = 200
#: The largest birthday bonus of a tier (the column is a 32-bit integer on PostgreSQL).
MAX_BONUS_POINTS = 10**9


class MemberIn(Schema):
    """The customer to enrol, by the shop's external id."""

    customer_external_id: str = Field(min_length=1, max_length=100, examples=["00042"])


class PointsOut(Schema):
    """A member's points: ``pending + available - debt = lifetime_earned - redeemed - expired``."""

    pending: int = Field(description="Earned, waiting for the return window to pass")
    available: int = Field(description="Spendable now")
    expired: int
    redeemed: int
    lifetime_earned: int = Field(description="Earned net of refunds, plus adjustments")
    debt: int = Field(description="Points owed after a refund of spent points; earning repays it")


class ExpiryOut(Schema):
    """The next points to expire."""

    points: int
    expires_at: ShopDateTime


class MemberOut(Schema):
    """A loyalty member: tier, points, next expiry and referral code."""

    customer_external_id: str
    tier: str | None = Field(description="Name of the current tier")
    points: PointsOut
    next_expiry: ExpiryOut | None
    referral_code: str


class AdjustmentIn(Schema):
    """A manual change of points, available at once (negative to take points away)."""

    points: int = Field(description="Nonzero; negative takes points away", examples=[200])
    reason: str = Field(min_length=1, max_length=500, examples=["goodwill: late delivery"])


class RedemptionIn(Schema):
    """Points spent by the member: a number of points, or a reward of the catalogue."""

    points: int | None = Field(None, gt=0, examples=[500])
    reward_id: int | None = Field(None, gt=0, description="A reward of the catalogue")
    reason: str = Field("", max_length=500, examples=["checkout discount"])


class RewardOut(Schema):
    """A reward of the catalogue."""

    id: int
    name: str
    kind: str = Field(examples=["coupon", "free_shipping", "gift"])
    points_cost: int
    stock: int | None = Field(description="Left in stock; null: unlimited")


class RewardOfferOut(Schema):
    """A reward as the member sees it: can they have it now, and if not, why."""

    reward: RewardOut
    is_eligible: bool
    refusal_code: str
    message: str


class RewardRedemptionOut(Schema):
    """What a reward redemption gave the member."""

    reward: RewardOut
    coupon_code: str | None = Field(description="The personal code of a coupon reward")


class PostingOut(Schema):
    """One posting of a ledger transaction: points moved into (+) or out of (-) an account."""

    account: str
    points: int


class LedgerEntryOut(Schema):
    """One ledger transaction of the member; its postings sum to zero."""

    id: int
    kind: str = Field(examples=["earn"])
    occurred_at: ShopDateTime
    reason: str
    actor: str = Field(description="Who made it: the staff user or API token, or empty")
    order_id: str | None = Field(description="External id of the order it comes from")
    postings: list[PostingOut]

    @staticmethod
    def resolve_order_id(obj: LedgerTransaction) -> str | None:
        return None if obj.order is None else obj.order.external_id

    @staticmethod
    def resolve_postings(obj: LedgerTransaction) -> list[PostingOut]:
        return [
            PostingOut(account=posting.account, points=posting.points)
            for posting in sorted(obj.postings.all(), key=lambda posting: posting.pk)
        ]


class LedgerPageOut(Schema):
    """The member's ledger, newest first."""

    count: int
    page: int
    page_size: int
    entries: list[LedgerEntryOut]


class TransactionOut(Schema):
    """The ledger transaction a write made, and the member's points after it."""

    entry: LedgerEntryOut | None = Field(description="Null for a reward that costs no points")
    points: PointsOut
    reward: RewardRedemptionOut | None = None


class TierOut(Schema):
    """A tier: reached when the programme's tier metric over its window reaches ``threshold``."""

    name: str
    threshold: str = Field(description="Points, or money in the programme's currency")
    earn_multiplier: str
    birthday_bonus_points: int
    has_free_shipping: bool


class PromotionOut(Schema):
    """A time-boxed points multiplier (``starts_at <= t < ends_at``)."""

    name: str
    multiplier: str
    starts_at: ShopDateTime
    ends_at: ShopDateTime
    is_active: bool


class ProgrammeOut(Schema):
    """The programme's earning, pending, expiry and tier rules, its tiers and promotions."""

    name: str
    is_active: bool
    currency: str
    points_per_unit: str = Field(description="Points per currency unit of net spend")
    rounding: str = Field(examples=["floor"])
    minimum_order_amount: str
    earning_channels: list[str] = Field(description="Empty: every channel earns")
    pending_days: int = Field(description="Days points stay pending (the return window)")
    expiry_policy: str = Field(
        examples=["never", "months_after_earning", "end_of_year_after_earning"]
    )
    expiry_months: int | None
    point_value_amount: str = Field(description="Money value of one point when redeemed")
    tier_metric: str = Field(examples=["points", "spend"])
    tier_window: str = Field(examples=["rolling_12_months", "calendar_year", "lifetime"])
    downgrade_grace_days: int
    earns_from: ShopDateTime | None = Field(
        description="Orders placed before this moment earn nothing (null: every order)"
    )
    tiers: list[TierOut]
    promotions: list[PromotionOut]


class TierIn(Schema):
    """A tier to create, or to change when the programme has one of that name."""

    name: str = Field(min_length=1, max_length=100, examples=["Gold"])
    threshold: Decimal = Field(
        max_digits=MONEY_MAX_DIGITS,
        decimal_places=MONEY_DECIMAL_PLACES,
        description="Qualifying points, or spend in the programme's currency, as its tier "
        "metric says; the entry tier has 0",
        examples=["5000"],
    )
    earn_multiplier: Decimal = Field(
        Decimal(1),
        max_digits=MULTIPLIER_MAX_DIGITS,
        decimal_places=MULTIPLIER_DECIMAL_PLACES,
        examples=["1.5"],
    )
    birthday_bonus_points: int = Field(0, le=MAX_BONUS_POINTS, examples=[200])
    has_free_shipping: bool = False


class PromotionIn(Schema):
    """A time-boxed multiplier on orders placed in ``[starts_at, ends_at)``."""

    name: str = Field(min_length=1, max_length=200, examples=["11.11 double points"])
    multiplier: Decimal = Field(
        max_digits=MULTIPLIER_MAX_DIGITS, decimal_places=MULTIPLIER_DECIMAL_PLACES, examples=["2"]
    )
    starts_at: ApiDateTime = Field(examples=["2024-11-11T00:00:00+08:00"])
    ends_at: ApiDateTime = Field(examples=["2024-11-12T00:00:00+08:00"])


class CategoryMultiplierIn(Schema):
    """How many times the base rate lines of the category earn."""

    multiplier: Decimal = Field(
        max_digits=MULTIPLIER_MAX_DIGITS, decimal_places=MULTIPLIER_DECIMAL_PLACES, examples=["2"]
    )


class CategoryMultiplierOut(Schema):
    """Lines of ``category`` (and of its sub-categories without one of their own) earn
    ``multiplier`` times the base rate."""

    category: str = Field(description="The category's path", examples=["Tea > Green tea"])
    multiplier: str


class RewardIn(Schema):
    """A reward of the catalogue: a coupon (issues a personal code of ``coupon_template_id``),
    free shipping or a gift, bought with ``points_cost`` points."""

    name: str = Field(min_length=1, max_length=200, examples=["¥20 coupon"])
    kind: str = Field(examples=["coupon", "free_shipping", "gift"])
    points_cost: int = Field(examples=[2000])
    description: str = Field("", max_length=2000)
    coupon_template_id: int | None = Field(None, description="Required for a coupon reward")
    stock: int | None = Field(None, description="Null: unlimited")
    per_member_limit: int | None = Field(None, description="Null: no limit")
    valid_from: ApiDateTime | None = None
    valid_until: ApiDateTime | None = None
    eligible_tiers: list[str] = Field(
        default_factory=list, description="Names of the tiers that may have it; empty: all"
    )
    segmentation: str = Field("", examples=["rfm"], description="Empty: every segment")
    segment_codes: list[str] = Field(default_factory=list, examples=[["champions", "loyal"]])
    is_active: bool = True


class CatalogueRewardOut(RewardOut):
    """A reward of the catalogue with its rules."""

    description: str
    coupon_template_id: int | None
    per_member_limit: int | None
    valid_from: ShopDateTime | None
    valid_until: ShopDateTime | None
    eligible_tiers: list[str] = Field(description="Tier names; empty: every tier")
    segmentation: str
    segment_codes: list[str]
    is_active: bool


_PROGRAMME_SETTINGS = (
    "name",
    "is_active",
    "currency",
    "points_per_unit",
    "rounding",
    "minimum_order_amount",
    "earning_channels",
    "pending_days",
    "expiry_policy",
    "expiry_months",
    "point_value_amount",
    "tier_metric",
    "tier_window",
    "downgrade_grace_days",
    "earns_from",
)
_PROGRAMME_BODY = Body(
    ...,
    description="The settings to change, by name (any of those GET returns but tiers and "
    "promotions); amounts as decimal strings",
    examples=[{"points_per_unit": "2", "pending_days": 7}],
)


def _programme_out(programme: Programme) -> dict[str, Any]:
    # Read back, so that amounts show the stored precision whatever the caller's instance holds.
    programme = Programme.objects.get(pk=programme.pk)
    out: dict[str, Any] = {}
    for name in _PROGRAMME_SETTINGS:
        value = getattr(programme, name)
        out[name] = str(value) if isinstance(value, Decimal) else value
    out["tiers"] = [_tier_out(tier) for tier in programme.tiers.order_by("threshold")]
    out["promotions"] = [
        _promotion_out(promotion) for promotion in programme.promotions.order_by("starts_at")
    ]
    return out


def _number(value: Decimal) -> str:
    """A threshold or multiplier without trailing zeros and never in exponent form
    (``1000``, ``1.5``; ``str(Decimal("1000").normalize())`` would give ``1E+3``)."""
    return format(value.normalize(), "f")


def _tier_out(tier: Tier) -> dict[str, Any]:
    return {
        "name": tier.name,
        "threshold": _number(tier.threshold),
        "earn_multiplier": _number(tier.earn_multiplier),
        "birthday_bonus_points": tier.birthday_bonus_points,
        "has_free_shipping": tier.has_free_shipping,
    }


def _promotion_out(promotion: Promotion) -> dict[str, Any]:
    return {
        "name": promotion.name,
        "multiplier": _number(promotion.multiplier),
        "starts_at": promotion.starts_at,
        "ends_at": promotion.ends_at,
        "is_active": promotion.is_active,
    }


class ReferralIn(Schema):
    """A new customer who came through a member's referral code."""

    referral_code: str = Field(min_length=1, max_length=32, examples=["K7QM2XRA"])
    customer_external_id: str = Field(min_length=1, max_length=100, examples=["00077"])


class ReferralOut(Schema):
    """A referral: pending until the new customer's first order has passed the return
    window, then rewarded (both get their points) or refused with the reason."""

    id: int
    referral_code: str
    referrer: str = Field(description="External id of the referring member's customer")
    customer_external_id: str = Field(description="The new customer")
    status: str = Field(examples=["pending"])
    reason_code: str
    reason: str
    referred_at: ShopDateTime

    @staticmethod
    def resolve_referrer(obj: Referral) -> str:
        return obj.referrer.customer.external_id

    @staticmethod
    def resolve_customer_external_id(obj: Referral) -> str:
        return obj.referee.customer.external_id


def _member_out(member: Member) -> dict[str, Any]:
    expiry = next_expiry(member)
    return {
        "customer_external_id": member.customer.external_id,
        "tier": None if member.tier is None else member.tier.name,
        # The cached row: always equal to the postings' sums (the tests check it after every
        # step), one indexed read instead of a sum over the member's whole history.
        "points": cached_balances(member).__dict__,
        "next_expiry": (
            None if expiry is None else {"points": expiry.points, "expires_at": expiry.expires_at}
        ),
        "referral_code": member.referral_code,
    }


def _member(customer_external_id: str) -> Member:
    try:
        return get_member(customer_external_id)
    except MemberNotFoundError as error:
        raise ApiError(404, error.code, str(error)) from error


def _api_error(error: LoyaltyError) -> ApiError:
    """The HTTP answer to a refused loyalty action."""
    if isinstance(error, InsufficientPointsError):
        return ApiError(
            409,
            error.code,
            str(error),
            requested=error.requested,
            available=error.available,
        )
    if isinstance(error, IdempotencyConflictError):
        return ApiError(409, error.code, str(error))
    if isinstance(error, MemberNotFoundError):
        return ApiError(404, error.code, str(error))
    if isinstance(error, LoyaltyInputError):
        return input_error(error)
    return ApiError(422, error.code, str(error))


def _actor(request: HttpRequest) -> str:
    """Who is acting: the API token (its first characters) and its user, or the staff user."""
    user = getattr(request, "auth", None) or request.user
    authorization = request.headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token:
        return f"api token {token.strip()[:8]}… ({user})"
    return f"staff {user}"


def _ledger_key(request: HttpRequest, action: str, member: Member) -> str:
    """The ledger's idempotency key for a write: the client's key, scoped to its credential
    (two clients may choose the same key) and to the action and member."""
    key = require_idempotency_key(request)
    credential = hashlib.sha256(request.headers.get("Authorization", "").encode()).hexdigest()
    return f"api:{action}:{member.pk}:{credential[:16]}:{key}"


@router.get("/programme", response={200: ProgrammeOut, **_ERRORS}, summary="The programme")
@requires_permission(ApiPermissionChoices.LOYALTY_READ)
def read_programme(request: HttpRequest) -> dict[str, Any]:
    """The programme's rules, tiers and promotions (created with the defaults on first use)."""
    return _programme_out(get_programme())


@router.put("/programme", response={200: ProgrammeOut, **_ERRORS}, summary="Change the programme")
@requires_scope(ScopeChoices.ADMIN)
@requires_permission(ApiPermissionChoices.LOYALTY_CONFIGURE)
def change_programme(
    request: HttpRequest, changes: dict[str, Any] = _PROGRAMME_BODY
) -> dict[str, Any]:
    """Change some of the programme's settings; every value is checked first and a bad one
    is a 422 naming it, with nothing changed. Tiers and promotions are not changed here."""
    try:
        programme = configure_programme(**changes)
    except LoyaltyError as error:
        raise _api_error(error) from error
    return _programme_out(programme)


@router.get("/tiers", response={200: list[TierOut], **_ERRORS}, summary="The tiers")
@requires_permission(ApiPermissionChoices.LOYALTY_READ)
def list_tiers(request: HttpRequest) -> list[dict[str, Any]]:
    """The programme's tiers, lowest threshold first."""
    return [_tier_out(tier) for tier in get_programme().tiers.order_by("threshold")]


@router.post(
    "/tiers",
    response={200: TierOut, 201: TierOut, **_ERRORS},
    summary="Create or change a tier",
)
@requires_scope(ScopeChoices.ADMIN)
@requires_permission(ApiPermissionChoices.LOYALTY_CONFIGURE)
def save_tier(request: HttpRequest, body: TierIn) -> Status[dict[str, Any]]:
    """Create the tier called ``name`` (201), or change the one of that name (200). Members
    move to their new tier at their next qualifying change or the periodic tier review. A
    threshold another tier has is a 422 naming it, with nothing changed."""
    programme = get_programme()
    existed = programme.tiers.filter(name=body.name.strip()).exists()
    try:
        tier = define_tier(
            body.name,
            body.threshold,
            earn_multiplier=body.earn_multiplier,
            birthday_bonus_points=body.birthday_bonus_points,
            has_free_shipping=body.has_free_shipping,
            programme=programme,
        )
    except LoyaltyInputError as error:
        raise input_error(error) from error
    return Status(200 if existed else 201, _tier_out(tier))


@router.get("/promotions", response={200: list[PromotionOut], **_ERRORS}, summary="The promotions")
@requires_permission(ApiPermissionChoices.LOYALTY_READ)
def list_promotions(request: HttpRequest) -> list[dict[str, Any]]:
    """The programme's promotions, earliest start first."""
    programme = get_programme()
    return [_promotion_out(promotion) for promotion in programme.promotions.order_by("starts_at")]


@router.post("/promotions", response={201: PromotionOut, **_ERRORS}, summary="Add a promotion")
@requires_scope(ScopeChoices.ADMIN)
@requires_permission(ApiPermissionChoices.LOYALTY_CONFIGURE)
def create_promotion(request: HttpRequest, body: PromotionIn) -> Status[dict[str, Any]]:
    """Add a time-boxed multiplier (double points during 11.11); where promotions overlap an
    order gets the largest, they do not stack. Needs an ``Idempotency-Key``."""
    require_idempotency_key(request)
    try:
        promotion = add_promotion(body.name, body.multiplier, body.starts_at, body.ends_at)
    except LoyaltyInputError as error:
        raise input_error(error) from error
    return Status(201, _promotion_out(promotion))


@router.get(
    "/category-multipliers",
    response={200: list[CategoryMultiplierOut], **_ERRORS},
    summary="The category multipliers",
)
@requires_permission(ApiPermissionChoices.LOYALTY_READ)
def list_category_multipliers(request: HttpRequest) -> list[dict[str, Any]]:
    """The programme's multipliers per category, by category path."""
    rows = programme_category_multipliers(get_programme())
    return [_category_multiplier_out(row) for row in rows]


@router.put(
    "/category-multipliers/{path:category_path}",
    response={200: CategoryMultiplierOut, **_ERRORS},
    summary="Set a category multiplier",
)
@requires_scope(ScopeChoices.ADMIN)
@requires_permission(ApiPermissionChoices.LOYALTY_CONFIGURE)
def put_category_multiplier(
    request: HttpRequest, category_path: str, body: CategoryMultiplierIn
) -> dict[str, Any]:
    """Make lines of the category (its path, ``Tea > Green tea``, URL-encoded) and of its
    sub-categories without a multiplier of their own earn ``multiplier`` times the base rate;
    setting it again replaces it. ``404 category_not_found`` for an unknown path."""
    category = Category.objects.filter(path=category_path).first()
    if category is None:
        raise ApiError(404, "category_not_found", f"No category with path {category_path!r}.")
    try:
        row = set_category_multiplier(category, body.multiplier)
    except LoyaltyInputError as error:
        raise input_error(error) from error
    return _category_multiplier_out(row)


@router.get("/rewards", response={200: list[CatalogueRewardOut], **_ERRORS}, summary="The rewards")
@requires_permission(ApiPermissionChoices.LOYALTY_READ)
def list_rewards(request: HttpRequest) -> list[dict[str, Any]]:
    """Every reward of the catalogue, switched off ones too: active ones first, then by
    points cost."""
    rewards = programme_rewards(get_programme())
    return [_catalogue_reward_out(reward) for reward in rewards]


@router.post("/rewards", response={201: CatalogueRewardOut, **_ERRORS}, summary="Add a reward")
@requires_scope(ScopeChoices.ADMIN)
@requires_permission(ApiPermissionChoices.LOYALTY_CONFIGURE)
def add_reward(request: HttpRequest, body: RewardIn) -> Status[dict[str, Any]]:
    """Add a reward to the catalogue. Every field is checked first; a bad one (an unknown
    tier or coupon template, a coupon reward without a template, a validity that ends before
    it starts ...) is a 422 naming it, and nothing is written. Needs an ``Idempotency-Key``."""
    require_idempotency_key(request)
    programme = get_programme()
    tiers = list(programme.tiers.filter(name__in=body.eligible_tiers))
    unknown_tiers = sorted(set(body.eligible_tiers) - {tier.name for tier in tiers})
    if unknown_tiers:
        raise invalid_request([("eligible_tiers", f"no tier named {', '.join(unknown_tiers)}")])
    template = None
    if body.coupon_template_id is not None:
        template = CouponTemplate.objects.filter(pk=body.coupon_template_id).first()
        if template is None:
            raise invalid_request(
                [("coupon_template_id", f"no coupon template #{body.coupon_template_id}")]
            )
    try:
        reward = create_reward(
            name=body.name,
            kind=body.kind,
            points_cost=body.points_cost,
            programme=programme,
            description=body.description,
            coupon_template=template,
            stock=body.stock,
            per_member_limit=body.per_member_limit,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
            eligible_tiers=tiers,
            segmentation=body.segmentation,
            segment_codes=body.segment_codes,
            is_active=body.is_active,
        )
    except ValidationError as error:
        raise model_validation_error(error, {"coupon_template": "coupon_template_id"}) from error
    return Status(201, _catalogue_reward_out(reward))


def _category_multiplier_out(row: CategoryMultiplier) -> dict[str, Any]:
    return {"category": row.category.path, "multiplier": _number(row.multiplier)}


def _catalogue_reward_out(reward: Reward) -> dict[str, Any]:
    return {
        **_reward_out(reward),
        "description": reward.description,
        "coupon_template_id": reward.coupon_template_id,
        "per_member_limit": reward.per_member_limit,
        "valid_from": reward.valid_from,
        "valid_until": reward.valid_until,
        "eligible_tiers": sorted(tier.name for tier in reward.eligible_tiers.all()),
        "segmentation": reward.segmentation,
        "segment_codes": reward.segment_codes,
        "is_active": reward.is_active,
    }


@router.post(
    "/members", response={200: MemberOut, 201: MemberOut, **_ERRORS}, summary="Enrol a customer"
)
@requires_scope(ScopeChoices.LOYALTY)
@requires_permission(ApiPermissionChoices.LOYALTY_OPERATE)
def enrol(request: HttpRequest, body: MemberIn) -> Status[dict[str, Any]]:
    """Enrol the customer in the programme (201); an existing member is returned as is (200)."""
    customer = get_customer_or_404(body.customer_external_id)
    existed = Member.objects.filter(customer=customer).exists()
    try:
        member = enrol_member(customer)
    except LoyaltyError as error:
        raise _api_error(error) from error
    return Status(200 if existed else 201, _member_out(member))


@router.get(
    "/members/{customer_external_id}",
    response={200: MemberOut, **_ERRORS},
    summary="A member's tier and points",
)
@requires_permission(ApiPermissionChoices.LOYALTY_READ)
def retrieve_member(request: HttpRequest, customer_external_id: str) -> dict[str, Any]:
    """Tier, points (pending, available, expired, redeemed, lifetime earned, debt), the next
    expiry and the referral code; 404 for a customer who is not a member."""
    return _member_out(_member(customer_external_id))


@router.get(
    "/members/{customer_external_id}/ledger",
    response={200: LedgerPageOut, **_ERRORS},
    summary="A member's points ledger",
)
@requires_permission(ApiPermissionChoices.LOYALTY_READ)
def member_ledger(
    request: HttpRequest,
    customer_external_id: str,
    page: int = Query(1, ge=1, le=MAX_PAGE_NUMBER),
    page_size: int = Query(50, ge=1, le=MAX_LEDGER_PAGE),
) -> dict[str, Any]:
    """Every ledger transaction of the member, newest first, with its postings."""
    entries = ledger_entries(_member(customer_external_id))
    start = (page - 1) * page_size
    return {
        "count": entries.count(),
        "page": page,
        "page_size": page_size,
        "entries": list(entries[start : start + page_size]),
    }


@router.post(
    "/members/{customer_external_id}/adjustments",
    response={201: TransactionOut, **_ERRORS},
    summary="Adjust a member's points",
)
@requires_scope(ScopeChoices.LOYALTY)
@requires_permission(ApiPermissionChoices.LOYALTY_OPERATE)
def adjust(
    request: HttpRequest, customer_external_id: str, body: AdjustmentIn
) -> Status[dict[str, Any]]:
    """Add (or take away) points at once, with a reason; the token or staff user is recorded.
    Needs an ``Idempotency-Key``."""
    member = _member(customer_external_id)
    try:
        entry = adjust_points(
            member,
            body.points,
            reason=body.reason,
            actor=_actor(request),
            idempotency_key=_ledger_key(request, "adjust", member),
        )
    except LoyaltyError as error:
        raise _api_error(error) from error
    return Status(201, _transaction_out(entry, member))


@router.get(
    "/members/{customer_external_id}/rewards",
    response={200: list[RewardOfferOut], **_ERRORS},
    summary="Rewards a member may redeem",
)
@requires_permission(ApiPermissionChoices.LOYALTY_READ)
def member_rewards(request: HttpRequest, customer_external_id: str) -> list[dict[str, Any]]:
    """Every active reward of the catalogue with whether the member may have it now (tier,
    segment, validity, stock, their limit) and, if not, why."""
    return [
        {
            "reward": _reward_out(offer.reward),
            "is_eligible": offer.is_eligible,
            "refusal_code": offer.refusal_code,
            "message": offer.message,
        }
        for offer in reward_offers(_member(customer_external_id))
    ]


@router.post(
    "/members/{customer_external_id}/redemptions",
    response={201: TransactionOut, **_ERRORS},
    summary="Redeem a member's points",
)
@requires_scope(ScopeChoices.LOYALTY)
@requires_permission(ApiPermissionChoices.LOYALTY_OPERATE)
def redeem(
    request: HttpRequest, customer_external_id: str, body: RedemptionIn
) -> Status[dict[str, Any]]:
    """Spend available points, either ``points`` or the cost of ``reward_id`` (one of the
    two). 409 ``insufficient_points`` (with ``requested`` and ``available``) when the balance
    is short; a reward the member may not have is 409 (stock, limit) or 422 (tier, segment,
    validity) with the reason as ``code``. Needs an ``Idempotency-Key``."""
    if (body.points is None) == (body.reward_id is None):
        # Neither field alone is at fault: the body as a whole names the error.
        raise invalid_request([("", "Send either points or reward_id (exactly one of them).")])
    member = _member(customer_external_id)
    key = _ledger_key(request, "redeem", member)
    try:
        if body.reward_id is not None:
            reward = Reward.objects.filter(pk=body.reward_id, programme=member.programme).first()
            if reward is None:
                raise ApiError(404, "reward_not_found", f"No reward #{body.reward_id}.")
            redemption = redeem_reward(member, reward, idempotency_key=key, actor=_actor(request))
            out = _transaction_out(redemption.ledger_transaction, member)
            out["reward"] = {
                "reward": _reward_out(reward),
                "coupon_code": None if redemption.coupon is None else redemption.coupon.code,
            }
            return Status(201, out)
        assert body.points is not None
        entry = redeem_points(
            member, body.points, idempotency_key=key, reason=body.reason, actor=_actor(request)
        )
    except RewardRefusedError as error:
        raise ApiError(409 if error.is_conflict else 422, error.code, error.message) from error
    except LoyaltyError as error:
        raise _api_error(error) from error
    return Status(201, _transaction_out(entry, member))


def _reward_out(reward: Reward) -> dict[str, Any]:
    return {
        "id": reward.pk,
        "name": reward.name,
        "kind": reward.kind,
        "points_cost": reward.points_cost,
        "stock": reward.stock,
    }


def _transaction_out(entry: LedgerTransaction | None, member: Member) -> dict[str, Any]:
    # The entry as the ledger returned it: its postings come along (a replayed one reads them).
    return {"entry": entry, "points": cached_balances(member).__dict__}


@router.post("/referrals", response={201: ReferralOut, **_ERRORS}, summary="Record a referral")
@requires_scope(ScopeChoices.LOYALTY)
@requires_permission(ApiPermissionChoices.LOYALTY_OPERATE)
def refer(request: HttpRequest, body: ReferralIn) -> Status[Referral]:
    """Record that the customer came through the member's referral code (the customer is
    enrolled if needed). Refused with the reason as ``code``: ``404 unknown_referral_code``;
    ``409`` for a self-referral (the same customer, or a shared phone, e-mail or device),
    a customer referred before or who already ordered, or a referrer over the cap. Nothing
    is written when refused. Needs an ``Idempotency-Key``."""
    require_idempotency_key(request)
    customer = get_customer_or_404(body.customer_external_id)
    try:
        referral = record_referral(body.referral_code, customer)
    except ReferralRefusedError as error:
        status = 404 if error.code == UNKNOWN_CODE else 409
        raise ApiError(status, error.code, error.message) from error
    except LoyaltyError as error:
        raise _api_error(error) from error
    referral = Referral.objects.select_related("referrer__customer", "referee__customer").get(
        pk=referral.pk
    )
    return Status(201, referral)
