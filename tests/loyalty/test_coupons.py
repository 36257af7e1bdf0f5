"""Coupons: template validation, code generation, every refusal, amounts, stacking, redemption
and release. Amounts are checked against figures worked out by hand in each test."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from patron.catalog.models import Category, Product
from patron.customers.models import Customer
from patron.loyalty.coupons import (
    CODE_ALPHABET,
    REFUSAL_CODES,
    CouponInputError,
    CouponLine,
    CouponRefusedError,
    code_entropy_bits,
    coupon_lines_for_order,
    create_coupon_template,
    create_shared_coupon,
    generate_coupon_codes,
    new_coupon_code,
    redeem_coupon,
    release_coupon_use,
    validate_coupon,
)
from patron.loyalty.models import Coupon, CouponRedemption, CouponTemplate
from patron.loyalty.models.coupons import CouponKindChoices
from tests.loyalty.points_helpers import make_order

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 11, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def alice() -> Customer:
    return Customer.objects.create(external_id="alice")


@pytest.fixture
def bob() -> Customer:
    return Customer.objects.create(external_id="bob")


@pytest.fixture
def kitchen() -> Category:
    home = Category.objects.create(name="Home", path="Home")
    return Category.objects.create(name="Kitchen", parent=home, path="Home > Kitchen")


def template(**fields: object) -> CouponTemplate:
    values: dict[str, object] = {"name": "Ten off", "kind": "fixed_amount", "value": Decimal(10)}
    values.update(fields)
    return create_coupon_template(**values)  # type: ignore[arg-type]


def shared(code: str = "SHARED10", **fields: object) -> Coupon:
    return create_shared_coupon(template(**fields), code)


def refusal(code: str, customer: Customer, total: str, **kwargs: object) -> str:
    """The refusal code of redeeming ``code``, after checking validate_coupon agrees."""
    check = validate_coupon(code, customer, Decimal(total), at=NOW, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(CouponRefusedError) as raised:
        redeem_coupon(code, customer, "order-x", Decimal(total), at=NOW, **kwargs)  # type: ignore[arg-type]
    assert raised.value.code == check.refusal_code
    assert raised.value.message == check.message
    assert raised.value.code in REFUSAL_CODES
    return raised.value.code


# --- templates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "wrong_field"),
    [
        ({"kind": "percentage", "value": Decimal(0)}, "value"),
        ({"kind": "percentage", "value": Decimal("100.01")}, "value"),
        ({"kind": "percentage", "value": Decimal(-5)}, "value"),
        ({"kind": "fixed_amount", "value": Decimal(0)}, "value"),
        ({"kind": "free_shipping", "value": Decimal(5)}, "value"),
        ({"kind": "voucher"}, "kind"),
        ({"name": ""}, "name"),
        ({"minimum_spend_amount": Decimal("-0.01")}, "minimum_spend_amount"),
        ({"valid_from": NOW, "valid_until": NOW}, "valid_until"),
        ({"total_use_limit": 0}, "total_use_limit"),
        ({"per_customer_use_limit": 0}, "per_customer_use_limit"),
        ({"total_use_limit": 2, "per_customer_use_limit": 3}, "per_customer_use_limit"),
    ],
)
def test_template_field_errors_name_the_field(fields: dict[str, object], wrong_field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        template(**fields)
    assert wrong_field in raised.value.message_dict
    assert CouponTemplate.objects.count() == 0


def test_valid_templates_of_each_kind_are_stored() -> None:
    percentage = template(kind="percentage", value=Decimal(100))
    free = template(kind="free_shipping", value=Decimal(0))
    assert (percentage.value, free.kind) == (Decimal(100), CouponKindChoices.FREE_SHIPPING)
    assert CouponTemplate.objects.count() == 2


def test_database_refuses_a_counter_past_its_limit() -> None:
    capped = template(total_use_limit=1)
    coupon = create_shared_coupon(capped, "CAP1", use_limit=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        CouponTemplate.objects.filter(pk=capped.pk).update(times_used=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Coupon.objects.filter(pk=coupon.pk).update(times_used=2)


# --- codes --------------------------------------------------------------------------------


def test_alphabet_has_no_look_alikes_and_codes_carry_60_bits() -> None:
    assert len(set(CODE_ALPHABET)) == len(CODE_ALPHABET) == 32
    assert not set("0O1I") & set(CODE_ALPHABET)
    assert code_entropy_bits(12) == pytest.approx(12 * math.log2(32)) == pytest.approx(60)
    assert len(new_coupon_code()) == 12


def test_ten_thousand_codes_in_one_call_are_unique_stored_and_well_formed() -> None:
    given = template()
    codes = generate_coupon_codes(given, 10_000, prefix="vip-")
    assert len(codes) == len(set(codes)) == 10_000
    pattern = re.compile(f"VIP-[{CODE_ALPHABET}]{{12}}")
    assert all(pattern.fullmatch(code) for code in codes)
    stored = set(Coupon.objects.filter(template=given).values_list("code", flat=True))
    assert stored == set(codes)
    assert set(Coupon.objects.values_list("use_limit", flat=True)) == {1}
    # Every symbol is used, about evenly: 120,000 draws, 3,750 expected per symbol.
    counts = {symbol: 0 for symbol in CODE_ALPHABET}
    for code in codes:
        for symbol in code[4:]:
            counts[symbol] += 1
    assert min(counts.values()) > 3_400
    assert max(counts.values()) < 4_100


def test_colliding_codes_are_drawn_again() -> None:
    given = template()
    create_shared_coupon(given, "TAKEN-AAAAAAAAAAAA")
    draws: Iterator[str] = iter(
        ["TAKEN-AAAAAAAAAAAA", "NEW-1", "NEW-1", "NEW-2", "TAKEN-AAAAAAAAAAAA", "NEW-3"]
    )
    codes = generate_coupon_codes(given, 3, code_factory=lambda: next(draws))
    assert sorted(codes) == ["NEW-1", "NEW-2", "NEW-3"]
    assert Coupon.objects.filter(template=given).count() == 4


def test_personal_codes_one_per_customer(alice: Customer, bob: Customer) -> None:
    codes = generate_coupon_codes(template(), customers=[alice, bob])
    owners = dict(Coupon.objects.values_list("code", "customer__external_id"))
    assert owners == {codes[0]: "alice", codes[1]: "bob"}


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"count": 0}, "count"),
        ({"count": 100_001}, "count"),
        ({"count": 5, "length": 11}, "length"),
        ({"count": 5, "prefix": "bad prefix"}, "prefix"),
        ({"count": 5, "use_limit": 0}, "use_limit"),
    ],
)
def test_bad_generation_requests_are_refused(kwargs: dict[str, object], named: str) -> None:
    given = template()
    with pytest.raises(CouponInputError, match=f"^{named}:"):
        generate_coupon_codes(given, **kwargs)  # type: ignore[arg-type]
    assert Coupon.objects.count() == 0


def test_shared_code_is_normalised_and_unique() -> None:
    given = template()
    assert create_shared_coupon(given, " summer-25 ").code == "SUMMER-25"
    with pytest.raises(CouponInputError, match="exists"):
        create_shared_coupon(given, "SUMMER-25")
    random_code = create_shared_coupon(given, prefix="S")
    assert random_code.code.startswith("S")
    assert len(random_code.code) == 13


# --- refusals -----------------------------------------------------------------------------


def test_unknown_code(alice: Customer) -> None:
    assert refusal("NOPE", alice, "100") == "unknown_code"


def test_inactive(alice: Customer) -> None:
    shared(is_active=False)
    assert refusal("SHARED10", alice, "100") == "inactive"


def test_not_yet_valid_and_expired(alice: Customer) -> None:
    shared("EARLY", valid_from=NOW + dt.timedelta(seconds=1))
    shared("LATE", valid_until=NOW)
    assert refusal("EARLY", alice, "100") == "not_yet_valid"
    assert refusal("LATE", alice, "100") == "expired"


@pytest.mark.parametrize("total", ["0", "-5", "NaN"])
def test_zero_negative_and_nan_totals(alice: Customer, total: str) -> None:
    shared()
    assert refusal("SHARED10", alice, total) == "invalid_amount"


def test_minimum_spend(alice: Customer) -> None:
    shared(minimum_spend_amount=Decimal("100.00"))
    assert refusal("SHARED10", alice, "99.99") == "minimum_spend"
    assert validate_coupon("SHARED10", alice, Decimal("100.00"), at=NOW).is_valid


def test_out_of_scope(alice: Customer, kitchen: Category) -> None:
    garden = Category.objects.create(name="Garden", path="Garden")
    shared(categories=[kitchen])
    assert refusal("SHARED10", alice, "50", order_lines=[CouponLine(Decimal(50), garden.pk)]) == (
        "out_of_scope"
    )
    # Without lines a category-scoped coupon cannot be priced.
    assert refusal("SHARED10", alice, "50") == "out_of_scope"


def test_total_limit_of_the_template_across_codes(alice: Customer, bob: Customer) -> None:
    capped = template(total_use_limit=1)
    create_shared_coupon(capped, "FIRST")
    create_shared_coupon(capped, "SECOND")
    redeem_coupon("FIRST", alice, "order-1", Decimal(50), at=NOW)
    assert refusal("SECOND", bob, "50") == "total_limit_reached"


def test_total_limit_of_a_single_use_code(alice: Customer) -> None:
    (code,) = generate_coupon_codes(template(), customers=[alice])
    redeem_coupon(code, alice, "order-1", Decimal(50), at=NOW)
    assert refusal(code, alice, "50") == "total_limit_reached"


def test_per_customer_limit(alice: Customer, bob: Customer) -> None:
    shared(per_customer_use_limit=1)
    redeem_coupon("SHARED10", alice, "order-1", Decimal(50), at=NOW)
    assert refusal("SHARED10", alice, "50") == "customer_limit_reached"
    assert redeem_coupon("SHARED10", bob, "order-2", Decimal(50), at=NOW).customer == bob


def test_assigned_to_another_customer(alice: Customer, bob: Customer) -> None:
    (code,) = generate_coupon_codes(template(), customers=[alice])
    assert refusal(code, bob, "50") == "assigned_to_another_customer"


def test_not_stackable_either_way(alice: Customer) -> None:
    shared("SOLO", is_stackable=False)
    shared("TEAM", is_stackable=True)
    shared("TEAM2", is_stackable=True)
    assert refusal("SOLO", alice, "50", other_codes=["team"]) == "not_stackable"
    assert refusal("TEAM", alice, "50", other_codes=["SOLO"]) == "not_stackable"
    assert validate_coupon("TEAM", alice, Decimal(50), other_codes=["TEAM2"], at=NOW).is_valid
    # The code itself among the others is not another code, nor is a code that does not exist.
    assert validate_coupon("SOLO", alice, Decimal(50), other_codes=["SOLO"], at=NOW).is_valid
    assert validate_coupon("SOLO", alice, Decimal(50), other_codes=["TYPO"], at=NOW).is_valid


def test_a_non_stackable_code_already_redeemed_by_the_order_blocks_another(
    alice: Customer,
) -> None:
    shared("SOLO", is_stackable=False)
    shared("TEAM", is_stackable=True)
    redeem_coupon("SOLO", alice, "order-1", Decimal(50), at=NOW)
    with pytest.raises(CouponRefusedError) as raised:
        redeem_coupon("TEAM", alice, "order-1", Decimal(50), at=NOW)
    assert raised.value.code == "not_stackable"
    assert raised.value.is_conflict


def test_refusals_leave_nothing_behind(alice: Customer, bob: Customer) -> None:
    capped = template(total_use_limit=5, per_customer_use_limit=1, minimum_spend_amount=Decimal(20))
    create_shared_coupon(capped, "KEEP")
    redeem_coupon("KEEP", alice, "order-1", Decimal(50), at=NOW)
    before = (
        list(CouponRedemption.objects.values_list("pk", "order_id", "released_at")),
        list(Coupon.objects.values_list("pk", "times_used")),
        list(CouponTemplate.objects.values_list("pk", "times_used")),
    )
    for customer, total in [(alice, "50"), (bob, "10"), (bob, "-1")]:
        with pytest.raises(CouponRefusedError):
            redeem_coupon("KEEP", customer, "order-2", Decimal(total), at=NOW)
    after = (
        list(CouponRedemption.objects.values_list("pk", "order_id", "released_at")),
        list(Coupon.objects.values_list("pk", "times_used")),
        list(CouponTemplate.objects.values_list("pk", "times_used")),
    )
    assert after == before


# --- amounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "total", "discount"),
    [
        # 15% of 199.99 = 29.9985, half up to the cent.
        ("percentage", "15", "199.99", "30.00"),
        # 12.5% of 0.04 = 0.005 -> 0.01 (half up, not banker's rounding).
        ("percentage", "12.5", "0.04", "0.01"),
        ("percentage", "100", "88.88", "88.88"),
        ("fixed_amount", "10", "199.99", "10.00"),
        # A fixed amount never exceeds what it applies to.
        ("fixed_amount", "50", "30.10", "30.10"),
        ("free_shipping", "0", "30", "0.00"),
    ],
)
def test_discount_amounts_are_exact(
    alice: Customer, kind: str, value: str, total: str, discount: str
) -> None:
    shared(kind=kind, value=Decimal(value))
    quote = validate_coupon("SHARED10", alice, Decimal(total), at=NOW).quote
    assert quote is not None
    assert quote.discount_amount == Decimal(discount)
    assert str(quote.discount_amount) == discount
    assert quote.is_free_shipping == (kind == "free_shipping")
    redemption = redeem_coupon("SHARED10", alice, "order-1", Decimal(total), at=NOW)
    redemption.refresh_from_db()
    assert redemption.discount_amount == Decimal(discount)
    assert redemption.is_free_shipping == (kind == "free_shipping")


def test_scope_discounts_only_the_in_scope_lines_of_the_category_tree(
    alice: Customer, kitchen: Category
) -> None:
    home = kitchen.parent
    assert home is not None
    pots = Category.objects.create(name="Pots", parent=kitchen, path="Home > Kitchen > Pots")
    garden = Category.objects.create(name="Garden", path="Garden")
    # "Home > Kitchenware" shares a prefix with "Home > Kitchen" but is not inside it.
    kitchenware = Category.objects.create(name="Kw", parent=home, path="Home > Kitchenware")
    shared(kind="percentage", value=Decimal(20), categories=[kitchen])
    lines = [
        CouponLine(Decimal("40.00"), kitchen.pk),
        CouponLine(Decimal("25.55"), pots.pk),
        CouponLine(Decimal("100.00"), garden.pk),
        CouponLine(Decimal("70.00"), kitchenware.pk),
        CouponLine(Decimal("5.00"), None),
    ]
    quote = validate_coupon("SHARED10", alice, Decimal("240.55"), lines, at=NOW).quote
    assert quote is not None
    # 20% of (40.00 + 25.55) = 13.11
    assert (quote.eligible_amount, quote.discount_amount) == (Decimal("65.55"), Decimal("13.11"))


def test_fixed_amount_in_scope_is_capped_by_the_in_scope_part(
    alice: Customer, kitchen: Category
) -> None:
    garden = Category.objects.create(name="Garden", path="Garden")
    shared(kind="fixed_amount", value=Decimal(30), categories=[kitchen])
    lines = [CouponLine(Decimal("12.34"), kitchen.pk), CouponLine(Decimal(100), garden.pk)]
    quote = validate_coupon("SHARED10", alice, Decimal("112.34"), lines, at=NOW).quote
    assert quote is not None
    assert quote.discount_amount == Decimal("12.34")


# --- redemption and release ---------------------------------------------------------------


def test_redeeming_twice_for_one_order_returns_the_earlier_redemption(alice: Customer) -> None:
    shared(total_use_limit=1)
    first = redeem_coupon("shared10", alice, "order-1", Decimal(50), at=NOW)
    again = redeem_coupon("SHARED10", alice, "order-1", Decimal(80), at=NOW + dt.timedelta(1))
    assert again.pk == first.pk
    assert again.order_total_amount == Decimal(50)
    assert CouponRedemption.objects.count() == 1
    assert CouponTemplate.objects.get().times_used == 1
    assert Coupon.objects.get().times_used == 1


def test_another_customer_on_the_same_order_is_a_conflict(alice: Customer, bob: Customer) -> None:
    shared()
    redeem_coupon("SHARED10", alice, "order-1", Decimal(50), at=NOW)
    with pytest.raises(CouponRefusedError) as raised:
        redeem_coupon("SHARED10", bob, "order-1", Decimal(50), at=NOW)
    assert raised.value.code == "order_conflict"
    assert CouponRedemption.objects.count() == 1


def test_release_frees_the_use_once_and_the_code_can_be_used_again(
    alice: Customer, bob: Customer
) -> None:
    (code,) = generate_coupon_codes(template(total_use_limit=1), 1)
    redeem_coupon(code, alice, "order-1", Decimal(50), at=NOW)
    released = release_coupon_use(code, "order-1", at=NOW + dt.timedelta(hours=1))
    assert released is not None
    assert released.released_at == NOW + dt.timedelta(hours=1)
    again = release_coupon_use(code, "order-1", at=NOW + dt.timedelta(hours=2))
    assert again is not None
    assert again.released_at == NOW + dt.timedelta(hours=1)
    assert (Coupon.objects.get().times_used, CouponTemplate.objects.get().times_used) == (0, 0)

    second = redeem_coupon(code, bob, "order-2", Decimal(60), at=NOW)
    assert second.is_active
    assert second.customer == bob
    assert (Coupon.objects.get().times_used, CouponTemplate.objects.get().times_used) == (1, 1)
    assert release_coupon_use(code, "order-never") is None


def test_a_released_order_can_take_its_use_back(alice: Customer) -> None:
    (code,) = generate_coupon_codes(template(), customers=[alice])
    first = redeem_coupon(code, alice, "order-1", Decimal(50), at=NOW)
    release_coupon_use(code, "order-1", at=NOW)
    back = redeem_coupon(code, alice, "order-1", Decimal(50), at=NOW + dt.timedelta(1))
    assert back.pk == first.pk
    assert back.is_active
    assert CouponRedemption.objects.count() == 1
    assert Coupon.objects.get().times_used == 1


def test_release_frees_the_per_customer_limit(alice: Customer) -> None:
    shared(per_customer_use_limit=1)
    redeem_coupon("SHARED10", alice, "order-1", Decimal(50), at=NOW)
    release_coupon_use("SHARED10", "order-1")
    assert redeem_coupon("SHARED10", alice, "order-2", Decimal(50), at=NOW).is_active


def test_release_of_an_unknown_code_is_refused() -> None:
    with pytest.raises(CouponRefusedError) as raised:
        release_coupon_use("NOPE", "order-1")
    assert raised.value.code == "unknown_code"


def test_bad_order_id_is_refused(alice: Customer) -> None:
    shared()
    with pytest.raises(CouponInputError, match="order_id"):
        redeem_coupon("SHARED10", alice, "  ", Decimal(50), at=NOW)
    assert CouponRedemption.objects.count() == 0


def test_lines_of_a_stored_order_price_a_scoped_coupon(alice: Customer, kitchen: Category) -> None:
    pot = Product.objects.create(external_id="pot", category=kitchen)
    chair = Product.objects.create(external_id="chair")
    order = make_order(
        alice, "150.00", NOW, lines=[(pot, Decimal("80.00")), (chair, Decimal("70.00"))]
    )
    shared(kind="percentage", value=Decimal(10), categories=[kitchen])
    lines = coupon_lines_for_order(order)
    assert sorted((line.amount, line.category_id) for line in lines) == [
        (Decimal("70.00"), None),
        (Decimal("80.00"), kitchen.pk),
    ]
    quote = validate_coupon("SHARED10", alice, order.total_amount, lines, at=NOW).quote
    assert quote is not None
    assert quote.discount_amount == Decimal("8.00")


def test_generation_that_cannot_draw_fresh_codes_writes_nothing() -> None:
    given = template()
    create_shared_coupon(given, "ALWAYS-THE-SAME")
    with pytest.raises(CouponInputError, match=r"^length:"):
        generate_coupon_codes(given, 2, code_factory=lambda: "ALWAYS-THE-SAME")
    assert list(Coupon.objects.values_list("code", flat=True)) == ["ALWAYS-THE-SAME"]
