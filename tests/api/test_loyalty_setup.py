"""Setting the programme up over HTTP: tiers, promotions, category multipliers, the reward
catalogue, coupon templates and their codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client

from patron.catalog.models import Category
from patron.loyalty.coupons import create_coupon_template
from patron.loyalty.models import (
    CategoryMultiplier,
    Coupon,
    CouponTemplate,
    Promotion,
    Reward,
    Tier,
)
from patron.loyalty.programme import add_promotion, get_programme, set_category_multiplier
from patron.loyalty.rewards import create_reward
from patron.loyalty.tiers import define_tier

pytestmark = pytest.mark.django_db


def call(
    client: Client, method: str, url: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    if method == "get":
        response = client.get(url, headers=headers)
    else:
        response = getattr(client, method)(
            url, json.dumps(body), content_type="application/json", headers=headers
        )
    return response.status_code, response.json()


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def field_error(field: str, message: str) -> dict[str, Any]:
    """The 422 body that names one field."""
    return {
        "code": "invalid_request",
        "message": f"{field}: {message}",
        "errors": [{"location": "body", "field": field, "message": message, "type": "value_error"}],
    }


# --- tiers -------------------------------------------------------------------------------


def test_tiers_are_listed_lowest_threshold_first(
    client: Client, manager_bearer: dict[str, str]
) -> None:
    # given
    define_tier("Gold", 5000, earn_multiplier=Decimal("1.5"), birthday_bonus_points=200)
    define_tier("Member", 0)
    # when
    status, tiers = call(client, "get", "/api/v1/loyalty/tiers", manager_bearer)
    # then
    assert status == 200
    assert tiers == [
        {
            "name": "Member",
            "threshold": "0",
            "earn_multiplier": "1",
            "birthday_bonus_points": 0,
            "has_free_shipping": False,
        },
        {
            "name": "Gold",
            "threshold": "5000",
            "earn_multiplier": "1.5",
            "birthday_bonus_points": 200,
            "has_free_shipping": False,
        },
    ]


def test_a_tier_is_created_then_changed_by_name(
    client: Client, manager_bearer: dict[str, str]
) -> None:
    # when
    status, created = call(
        client,
        "post",
        "/api/v1/loyalty/tiers",
        manager_bearer,
        {"name": "Gold", "threshold": "5000", "earn_multiplier": "1.5", "has_free_shipping": True},
    )
    # then
    assert status == 201
    assert created == {
        "name": "Gold",
        "threshold": "5000",
        "earn_multiplier": "1.5",
        "birthday_bonus_points": 0,
        "has_free_shipping": True,
    }
    # when the same name comes again
    status, changed = call(
        client,
        "post",
        "/api/v1/loyalty/tiers",
        manager_bearer,
        {"name": "Gold", "threshold": "6000"},
    )
    # then it is the same tier, changed
    assert status == 200
    assert (changed["threshold"], changed["earn_multiplier"]) == ("6000", "1")
    assert list(Tier.objects.values_list("name", "threshold")) == [("Gold", Decimal(6000))]
    assert call(client, "get", "/api/v1/loyalty/programme", manager_bearer)[1]["tiers"] == [changed]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": "Gold", "threshold": "-1"}, "threshold", "must be at least 0, got -1"),
        ({"name": "Silver", "threshold": "0"}, "threshold", "tier Member already has 0.0000"),
        (
            {"name": "Gold", "threshold": "9", "birthday_bonus_points": -5},
            "birthday_bonus_points",
            "must be >= 0, got -5",
        ),
        ({"name": "  ", "threshold": "9"}, "name", "must be a non-empty text"),
    ],
)
def test_a_bad_tier_is_a_422_naming_the_field_and_changes_nothing(
    client: Client, manager_bearer: dict[str, str], body: dict[str, Any], field: str, message: str
) -> None:
    # given
    define_tier("Member", 0)
    # when
    status, answer = call(client, "post", "/api/v1/loyalty/tiers", manager_bearer, body)
    # then
    assert (status, answer) == (422, field_error(field, message))
    assert list(Tier.objects.values_list("name", "threshold")) == [("Member", Decimal(0))]


# --- promotions --------------------------------------------------------------------------

DOUBLE_ELEVEN = {
    "name": "11.11 double points",
    "multiplier": "2",
    "starts_at": "2024-11-11T00:00:00+08:00",
    "ends_at": "2024-11-12T00:00:00+08:00",
}


def test_promotions_are_listed_earliest_first(
    client: Client, manager_bearer: dict[str, str]
) -> None:
    # given
    add_promotion(
        "Double 12",
        Decimal(2),
        datetime(2024, 12, 11, 16, tzinfo=UTC),
        datetime(2024, 12, 12, 16, tzinfo=UTC),
    )
    add_promotion(
        "618",
        Decimal("1.5"),
        datetime(2024, 6, 17, 16, tzinfo=UTC),
        datetime(2024, 6, 18, 16, tzinfo=UTC),
    )
    # when
    status, promotions = call(client, "get", "/api/v1/loyalty/promotions", manager_bearer)
    # then
    assert status == 200
    assert promotions == [
        {
            "name": "618",
            "multiplier": "1.5",
            "starts_at": "2024-06-18T00:00:00+08:00",
            "ends_at": "2024-06-19T00:00:00+08:00",
            "is_active": True,
        },
        {
            "name": "Double 12",
            "multiplier": "2",
            "starts_at": "2024-12-12T00:00:00+08:00",
            "ends_at": "2024-12-13T00:00:00+08:00",
            "is_active": True,
        },
    ]


def test_a_promotion_is_added_once_whatever_the_retries(
    client: Client, manager_bearer: dict[str, str]
) -> None:
    # when
    status, added = call(
        client, "post", "/api/v1/loyalty/promotions", keyed(manager_bearer, "p-1"), DOUBLE_ELEVEN
    )
    again = call(
        client, "post", "/api/v1/loyalty/promotions", keyed(manager_bearer, "p-1"), DOUBLE_ELEVEN
    )
    # then
    assert status == 201
    assert added == {**DOUBLE_ELEVEN, "is_active": True}
    assert again == (201, added)
    promotion = Promotion.objects.get()
    assert (promotion.programme, promotion.multiplier) == (get_programme(), Decimal(2))
    assert promotion.starts_at == datetime(2024, 11, 10, 16, tzinfo=UTC)


def test_adding_a_promotion_needs_an_idempotency_key(
    client: Client, manager_bearer: dict[str, str]
) -> None:
    # when
    status, answer = call(
        client, "post", "/api/v1/loyalty/promotions", manager_bearer, DOUBLE_ELEVEN
    )
    # then
    assert (status, answer["code"]) == (422, "idempotency_key_required")
    assert not Promotion.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"ends_at": "2024-11-10T00:00:00+08:00"}, "ends_at", "must be after starts_at"),
        ({"multiplier": "-1"}, "multiplier", "must be at least 0, got -1"),
    ],
)
def test_a_bad_promotion_is_a_422_naming_the_field_and_adds_nothing(
    client: Client,
    manager_bearer: dict[str, str],
    changes: dict[str, str],
    field: str,
    message: str,
) -> None:
    # when
    status, answer = call(
        client,
        "post",
        "/api/v1/loyalty/promotions",
        keyed(manager_bearer, "p"),
        {**DOUBLE_ELEVEN, **changes},
    )
    # then
    assert (status, answer) == (422, field_error(field, message))
    assert not Promotion.objects.exists()


def test_a_promotion_without_a_time_zone_is_refused(
    client: Client, manager_bearer: dict[str, str]
) -> None:
    # when
    status, answer = call(
        client,
        "post",
        "/api/v1/loyalty/promotions",
        keyed(manager_bearer, "p"),
        {**DOUBLE_ELEVEN, "starts_at": "2024-11-11T00:00:00"},
    )
    # then
    assert status == 422
    assert [(error["field"], error["type"]) for error in answer["errors"]] == [
        ("body.starts_at", "timezone_aware")
    ]
    assert not Promotion.objects.exists()


# --- category multipliers ----------------------------------------------------------------


@pytest.fixture
def green_tea() -> Category:
    """Category 茶 > 绿茶 (tea > green tea) under 茶."""
    tea = Category.objects.create(name="茶", path="茶")
    return Category.objects.create(name="绿茶", parent=tea, path="茶 > 绿茶")


def test_a_category_multiplier_is_set_then_replaced(
    client: Client, manager_bearer: dict[str, str], green_tea: Category
) -> None:
    # given
    url = f"/api/v1/loyalty/category-multipliers/{quote(green_tea.path)}"
    # when
    first = call(client, "put", url, manager_bearer, {"multiplier": "2"})
    second = call(client, "put", url, manager_bearer, {"multiplier": "1.25"})
    # then
    assert first == (200, {"category": "茶 > 绿茶", "multiplier": "2"})
    assert second == (200, {"category": "茶 > 绿茶", "multiplier": "1.25"})
    row = CategoryMultiplier.objects.get()
    assert (row.category, row.multiplier) == (green_tea, Decimal("1.25"))


def test_category_multipliers_are_listed_by_path(
    client: Client, manager_bearer: dict[str, str], green_tea: Category
) -> None:
    # given
    set_category_multiplier(green_tea, Decimal(3))
    set_category_multiplier(Category.objects.get(path="茶"), Decimal("0.5"))
    # when
    status, rows = call(client, "get", "/api/v1/loyalty/category-multipliers", manager_bearer)
    # then
    assert status == 200
    assert rows == [
        {"category": "茶", "multiplier": "0.5"},
        {"category": "茶 > 绿茶", "multiplier": "3"},
    ]


def test_a_multiplier_of_an_unknown_category_or_below_zero_is_refused(
    client: Client, manager_bearer: dict[str, str], green_tea: Category
) -> None:
    # when
    unknown = call(
        client,
        "put",
        "/api/v1/loyalty/category-multipliers/Coffee",
        manager_bearer,
        {"multiplier": "2"},
    )
    negative = call(
        client,
        "put",
        f"/api/v1/loyalty/category-multipliers/{quote(green_tea.path)}",
        manager_bearer,
        {"multiplier": "-2"},
    )
    # then
    assert unknown == (
        404,
        {"code": "category_not_found", "message": "No category with path 'Coffee'."},
    )
    assert negative == (422, field_error("multiplier", "must be at least 0, got -2"))
    assert not CategoryMultiplier.objects.exists()


# --- rewards -----------------------------------------------------------------------------


@pytest.fixture
def twenty_off() -> CouponTemplate:
    """A ¥20-off coupon template."""
    return create_coupon_template(name="¥20 off", kind="fixed_amount", value=Decimal(20))


def test_the_catalogue_lists_every_reward(
    client: Client, manager_bearer: dict[str, str], twenty_off: CouponTemplate
) -> None:
    # given
    gold = define_tier("Gold", 5000)
    coupon = create_reward(
        name="¥20 coupon",
        kind="coupon",
        points_cost=2000,
        coupon_template=twenty_off,
        per_member_limit=1,
        eligible_tiers=[gold],
    )
    mug = create_reward(name="Mug", kind="gift", points_cost=800, stock=5, is_active=False)
    # when
    status, rewards = call(client, "get", "/api/v1/loyalty/rewards", manager_bearer)
    # then
    assert status == 200
    assert rewards == [
        {
            "id": coupon.pk,
            "name": "¥20 coupon",
            "kind": "coupon",
            "points_cost": 2000,
            "stock": None,
            "description": "",
            "coupon_template_id": twenty_off.pk,
            "per_member_limit": 1,
            "valid_from": None,
            "valid_until": None,
            "eligible_tiers": ["Gold"],
            "segmentation": "",
            "segment_codes": [],
            "is_active": True,
        },
        {
            "id": mug.pk,
            "name": "Mug",
            "kind": "gift",
            "points_cost": 800,
            "stock": 5,
            "description": "",
            "coupon_template_id": None,
            "per_member_limit": None,
            "valid_from": None,
            "valid_until": None,
            "eligible_tiers": [],
            "segmentation": "",
            "segment_codes": [],
            "is_active": False,
        },
    ]


def test_a_reward_is_added_to_the_catalogue(
    client: Client, manager_bearer: dict[str, str], twenty_off: CouponTemplate
) -> None:
    # given
    define_tier("Gold", 5000)
    body = {
        "name": "¥20 coupon",
        "kind": "coupon",
        "points_cost": 2000,
        "coupon_template_id": twenty_off.pk,
        "stock": 100,
        "valid_from": "2025-01-01T00:00:00+08:00",
        "eligible_tiers": ["Gold"],
    }
    # when
    status, added = call(
        client, "post", "/api/v1/loyalty/rewards", keyed(manager_bearer, "r-1"), body
    )
    # then
    reward = Reward.objects.get()
    assert status == 201
    assert added == {
        "id": reward.pk,
        "name": "¥20 coupon",
        "kind": "coupon",
        "points_cost": 2000,
        "stock": 100,
        "description": "",
        "coupon_template_id": twenty_off.pk,
        "per_member_limit": None,
        "valid_from": "2025-01-01T00:00:00+08:00",
        "valid_until": None,
        "eligible_tiers": ["Gold"],
        "segmentation": "",
        "segment_codes": [],
        "is_active": True,
    }
    assert reward.programme == get_programme()
    assert [tier.name for tier in reward.eligible_tiers.all()] == ["Gold"]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"kind": "coupon"}, "coupon_template_id", "a coupon reward needs a coupon template"),
        ({"coupon_template_id": 999_999}, "coupon_template_id", "no coupon template #999999"),
        ({"eligible_tiers": ["Gold", "Platinum"]}, "eligible_tiers", "no tier named Platinum"),
        (
            {"valid_from": "2025-02-01T00:00:00+08:00", "valid_until": "2025-01-01T00:00:00+08:00"},
            "valid_until",
            "the end of the validity must come after its start",
        ),
        ({"points_cost": 0}, "points_cost", "a reward costs at least 1 point"),
        ({"kind": "cash"}, "kind", "Value 'cash' is not a valid choice."),
    ],
)
def test_a_bad_reward_is_a_422_naming_the_field_and_adds_nothing(
    client: Client,
    manager_bearer: dict[str, str],
    changes: dict[str, Any],
    field: str,
    message: str,
) -> None:
    # given
    define_tier("Gold", 5000)
    body = {"name": "Mug", "kind": "gift", "points_cost": 800, **changes}
    # when
    status, answer = call(
        client, "post", "/api/v1/loyalty/rewards", keyed(manager_bearer, "r"), body
    )
    # then
    assert (status, answer) == (422, field_error(field, message))
    assert not Reward.objects.exists()


# --- coupon templates and codes ----------------------------------------------------------


def test_a_coupon_template_is_created(
    client: Client, manager_bearer: dict[str, str], green_tea: Category
) -> None:
    # given
    body = {
        "name": "15% off green tea",
        "kind": "percentage",
        "value": "15",
        "minimum_spend_amount": "99",
        "categories": ["茶 > 绿茶"],
        "valid_until": "2025-01-01T00:00:00+08:00",
        "per_customer_use_limit": 1,
    }
    # when
    status, created = call(
        client, "post", "/api/v1/coupons/templates", keyed(manager_bearer, "t"), body
    )
    # then
    template = CouponTemplate.objects.get()
    assert status == 201
    assert created == {
        "id": template.pk,
        "name": "15% off green tea",
        "kind": "percentage",
        "value": "15",
        "currency": "CNY",
        "minimum_spend_amount": "99.00",
        "categories": ["茶 > 绿茶"],
        "valid_from": None,
        "valid_until": "2025-01-01T00:00:00+08:00",
        "total_use_limit": None,
        "per_customer_use_limit": 1,
        "is_stackable": False,
        "is_active": True,
        "times_used": 0,
    }
    assert list(template.categories.all()) == [green_tea]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"value": "150"}, "value", "a percentage coupon needs a value above 0 and at most 100"),
        ({"categories": ["茶", "咖啡"]}, "categories", "no category with path 咖啡"),
        ({"total_use_limit": 0}, "total_use_limit", "the total use limit must be at least 1"),
    ],
)
def test_a_bad_coupon_template_is_a_422_naming_the_field_and_adds_nothing(
    client: Client,
    manager_bearer: dict[str, str],
    green_tea: Category,
    changes: dict[str, Any],
    field: str,
    message: str,
) -> None:
    # given
    body = {"name": "10% off", "kind": "percentage", "value": "10", **changes}
    # when
    status, answer = call(
        client, "post", "/api/v1/coupons/templates", keyed(manager_bearer, "t"), body
    )
    # then
    assert (status, answer) == (422, field_error(field, message))
    assert not CouponTemplate.objects.exists()


def test_codes_are_made_once_and_returned_once(
    client: Client, manager_bearer: dict[str, str], twenty_off: CouponTemplate
) -> None:
    # given
    url = f"/api/v1/coupons/templates/{twenty_off.pk}/codes"
    body = {"count": 3, "prefix": "vip-"}
    # when
    status, made = call(client, "post", url, keyed(manager_bearer, "c-1"), body)
    retried = call(client, "post", url, keyed(manager_bearer, "c-1"), body)
    # then
    assert status == 201
    assert (made["template_id"], made["count"]) == (twenty_off.pk, 3)
    assert len(set(made["codes"])) == 3
    assert all(code.startswith("VIP-") and len(code) == 16 for code in made["codes"])
    assert retried == (201, made)
    stored = Coupon.objects.filter(template=twenty_off)
    assert sorted(stored.values_list("code", flat=True)) == sorted(made["codes"])
    assert set(stored.values_list("use_limit", flat=True)) == {1}


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"count": 10_001},
            "count",
            "give 1 to 10,000 codes per request, not 10,001; make more with further requests",
        ),
        (
            {"count": 0},
            "count",
            "give 1 to 10,000 codes per request, not 0; make more with further requests",
        ),
        (
            {"count": 5, "prefix": "-x"},
            "prefix",
            "'-X': use 1-20 letters, digits or '-', starting with a letter or digit",
        ),
        ({"count": 5, "use_limit": 0}, "use_limit", "at least 1 (or None for no limit), not 0"),
    ],
)
def test_bad_code_requests_are_a_422_naming_the_field_and_make_nothing(
    client: Client,
    manager_bearer: dict[str, str],
    twenty_off: CouponTemplate,
    body: dict[str, Any],
    field: str,
    message: str,
) -> None:
    # when
    status, answer = call(
        client,
        "post",
        f"/api/v1/coupons/templates/{twenty_off.pk}/codes",
        keyed(manager_bearer, "c"),
        body,
    )
    # then
    assert (status, answer) == (422, field_error(field, message))
    assert not Coupon.objects.exists()


def test_codes_of_an_unknown_template_or_without_a_key_are_refused(
    client: Client, manager_bearer: dict[str, str], twenty_off: CouponTemplate
) -> None:
    # when
    unknown = call(
        client,
        "post",
        "/api/v1/coupons/templates/999999/codes",
        keyed(manager_bearer, "c"),
        {"count": 1},
    )
    keyless = call(
        client,
        "post",
        f"/api/v1/coupons/templates/{twenty_off.pk}/codes",
        manager_bearer,
        {"count": 1},
    )
    # then
    assert unknown == (
        404,
        {"code": "coupon_template_not_found", "message": "No coupon template #999999."},
    )
    assert (keyless[0], keyless[1]["code"]) == (422, "idempotency_key_required")
    assert not Coupon.objects.exists()


def test_a_caller_who_is_no_loyalty_manager_may_look_but_not_set_up(
    client: Client, bearer: dict[str, str], twenty_off: CouponTemplate
) -> None:
    # given: the token of a user in no staff role (a shop's order sync)
    define_tier("Member", 0)
    # when
    listed = call(client, "get", "/api/v1/loyalty/tiers", bearer)
    tier = call(client, "post", "/api/v1/loyalty/tiers", bearer, {"name": "Gold", "threshold": "9"})
    codes = call(
        client,
        "post",
        f"/api/v1/coupons/templates/{twenty_off.pk}/codes",
        keyed(bearer, "c"),
        {"count": 5},
    )
    # then
    assert (listed[0], [row["name"] for row in listed[1]]) == (200, ["Member"])

    def refusal(method_path: str, permission: str, roles: list[str]) -> dict[str, object]:
        return {
            "code": "forbidden",
            "message": (
                f"{method_path} needs the '{permission}' permission, which these roles have: "
                f"{', '.join(roles)} (this caller is: integration). Use a token or session of "
                "a user in one of those groups (docs/privacy.md, API permissions)."
            ),
            "required_permission": permission,
            "allowed_roles": roles,
        }

    assert tier == (
        403,
        refusal("POST /api/v1/loyalty/tiers", "loyalty.configure", ["admin", "loyalty_manager"]),
    )
    assert codes == (
        403,
        refusal(
            f"POST /api/v1/coupons/templates/{twenty_off.pk}/codes",
            "coupons.configure",
            ["admin", "loyalty_manager", "marketer"],
        ),
    )
    assert list(Tier.objects.values_list("name", flat=True)) == ["Member"]
    assert not Coupon.objects.exists()
