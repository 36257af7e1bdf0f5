"""The loyalty pages: the programme overview, the member panel of the customer page and the
configuration pages of a loyalty manager.

Data is built through the loyalty functions (enrolment by earning, redemption, adjustment,
expiry); forms are posted as a browser would and the result is read back from the store.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone

from patron.catalog.models import Category
from patron.loyalty.coupons import create_coupon_template, generate_coupon_codes
from patron.loyalty.ledger import (
    adjust_points,
    award_points_for_order,
    expire_points,
    redeem_points,
)
from patron.loyalty.models import (
    CategoryMultiplier,
    Coupon,
    CouponTemplate,
    Member,
    Programme,
    Promotion,
    Reward,
    Tier,
)
from patron.loyalty.programme import add_months, configure_programme, get_programme
from patron.loyalty.selectors import points_by_month, tier_summaries
from patron.loyalty.tiers import define_tier
from patron.web.loyalty_charts import members_per_tier_figure, points_by_month_figure
from tests.loyalty.points_helpers import make_customer, make_order

pytestmark = pytest.mark.django_db

EDITORS = ["admin", "loyalty_manager"]
READERS = ["marketer", "analyst", "service_agent"]
PAGES = [
    "/loyalty/",
    "/loyalty/programme/",
    "/loyalty/tiers/",
    "/loyalty/rules/",
    "/loyalty/rewards/",
    "/loyalty/coupons/",
]


def _client(role: str) -> Client:
    """A client logged in as a staff user in the group ``role``, reading English pages."""
    user = User.objects.create_user(f"user-{role}", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


@pytest.fixture
def manager() -> Client:
    return _client("loyalty_manager")


@pytest.fixture
def marketer() -> Client:
    return _client("marketer")


@pytest.fixture
def programme() -> Programme:
    """1 point per yuan, 15 pending days, points expire 12 months after earning, 1 point =
    ¥0.01; Silver from 0 points, Gold from 1,000 qualifying points."""
    programme = configure_programme(
        get_programme(),
        name="Tea Club",
        points_per_unit=1,
        pending_days=15,
        expiry_policy="months_after_earning",
        expiry_months=12,
        point_value_amount=Decimal("0.01"),
    )
    define_tier("Silver", 0, programme=programme)
    define_tier("Gold", 1000, earn_multiplier=Decimal("1.5"), has_free_shipping=True)
    return programme


def _earn(customer_id: str, total: str, days_ago: int, now: datetime) -> Member:
    customer = make_customer(customer_id)
    order = make_order(customer, total, now - timedelta(days=days_ago))
    award_points_for_order(order, idempotency_key=f"paid:{order.external_id}", as_of=now)
    return Member.objects.get(customer=customer)


def _members(now: datetime) -> tuple[Member, Member, Member]:
    """Li Na: 1,500 earned 30 days ago (available), 500 redeemed, Gold. Wang: 200 earned 2
    days ago (pending), Silver. Zhao: 300 earned 400 days ago, expired. Issued 2,000, redeemed
    500, expired 300, outstanding 1,200 points = ¥12.00."""
    li_na = _earn("C-LI", "1500", 30, now)
    redeem_points(li_na, 500, idempotency_key="redeem-1", reason="tea set", as_of=now)
    wang = _earn("C-WANG", "200", 2, now)
    zhao = _earn("C-ZHAO", "300", 400, now)
    expire_points(as_of=now)
    return li_na, wang, zhao


def _kpi(html: str, key: str) -> str:
    match = re.search(rf'data-kpi="{key}">.*?<div class="kpi-value"[^>]*>(.*?)</div>', html, re.S)
    assert match, key
    return match.group(1).strip()


def _rows(html: str, table: str) -> list[list[str]]:
    """The cells' texts of a table's body rows, tags stripped."""
    body = re.search(rf'data-table="{table}">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, table
    return [
        [
            re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    ]


def _form_errors(response: Any, name: str = "form") -> dict[str, list[str]]:
    return {field: list(errors) for field, errors in response.context[name].errors.items()}


# --- overview ------------------------------------------------------------------------------


def test_overview_shows_members_per_tier_points_liability_and_redemption_rate(
    manager: Client, programme: Programme
) -> None:
    # given
    _members(timezone.now())
    # when
    response = manager.get("/loyalty/")
    html = response.content.decode()
    # then
    assert response.status_code == 200
    assert {
        key: _kpi(html, key)
        for key in ("members", "liability", "redemption_rate", "issued", "redeemed", "expired")
    } == {
        "members": "3",
        "liability": "¥12.00",
        "redemption_rate": "25.0%",
        "issued": "2,000",
        "redeemed": "500",
        "expired": "300",
    }
    assert "1,200 points outstanding" in html
    assert _rows(html, "members-per-tier") == [["Silver", "2", "66.7%"], ["Gold", "1", "33.3%"]]
    assert 'data-plotly-figure="loyalty-points-month-figure"' in html
    assert 'data-plotly-figure="loyalty-tiers-figure"' in html


def test_overview_before_any_programme_says_how_to_set_one_up(manager: Client) -> None:
    # when
    html = manager.get("/loyalty/").content.decode()
    # then
    assert 'data-empty="no-programme"' in html
    assert Programme.objects.count() == 0


def test_overview_without_members_says_how_customers_join(
    manager: Client, programme: Programme
) -> None:
    # when
    html = manager.get("/loyalty/").content.decode()
    # then
    assert 'data-empty="no-members"' in html
    assert _kpi(html, "redemption_rate") == "–"


def test_points_per_month_count_issued_redeemed_and_expired_in_the_month_they_happened(
    programme: Programme,
) -> None:
    # given
    now = timezone.now()
    _members(now)
    # when
    months = points_by_month(programme, months=12, as_of=now)
    # then: the 12 months up to now; Zhao's order is older, but its expiry is recent
    assert len(months) == 12
    assert months[-1].month == timezone.localtime(now).date().replace(day=1)
    assert sum(month.issued for month in months) == 1700
    assert sum(month.redeemed for month in months) == 500
    assert sum(month.expired for month in months) == 300


def test_overview_charts_explain_themselves() -> None:
    # given
    tiers = tier_summaries(get_programme())
    # when
    tiers_figure = members_per_tier_figure(tiers)
    months_figure = points_by_month_figure([])
    # then
    assert tiers_figure["layout"]["xaxis"]["title"]["text"] == "Members"
    assert [trace["name"] for trace in months_figure["data"]] == ["Issued", "Redeemed", "Expired"]
    assert months_figure["layout"]["yaxis"]["title"]["text"] == "Points per month"


# --- member panel --------------------------------------------------------------------------


def test_customer_page_shows_the_member_panel(manager: Client, programme: Programme) -> None:
    # given
    now = timezone.now()
    li_na, _wang, _zhao = _members(now)
    adjust_points(li_na, 20, reason="apology for a late parcel", actor="user:mei", as_of=now)
    order = li_na.customer.orders.get()
    expiry = timezone.localtime(add_months(order.ordered_at, 12)).date()
    # when
    html = manager.get("/customers/C-LI/").content.decode()
    # then
    balances = dict(
        re.findall(
            r'data-balance="(\w+)"><div class="score-label">[^<]*</div>'
            r'<div class="score-value[^"]*">([^<]*)</div>',
            html,
        )
    )
    assert balances == {
        "available": "1,020",
        "pending": "0",
        "lifetime_earned": "1,520",
        "redeemed": "500",
        "expired": "0",
        "debt": "0",
    }
    assert re.search(r'data-field="tier"><span class="tag tag-segment">Gold</span>', html)
    next_expiry = re.search(r'data-field="next_expiry">(.*?)</dd>', html, re.S)
    assert next_expiry is not None
    assert next_expiry.group(1) == f"1,000 points on {expiry:%Y-%m-%d}"
    rows = _rows(html, "ledger")
    assert [row[1:5] for row in rows] == [
        ["Manual adjustment", "", "+20", ""],
        ["Redeemed", "", "-500", ""],
        ["Pending points became available", "-1,500", "+1,500", ""],
        [f"Earned on an order {order.external_id}", "+1,500", "", ""],
    ]
    assert rows[0][5] == "apology for a late parcel · user:mei"
    assert rows[1][5] == "tea set"


def test_customer_page_of_a_customer_who_is_not_a_member_shows_the_empty_state(
    manager: Client, programme: Programme
) -> None:
    # given
    make_customer("C-NEW")
    # when
    html = manager.get("/customers/C-NEW/").content.decode()
    # then
    assert 'data-empty="not-a-member"' in html
    assert "data-balance=" not in html


# --- who may do what -----------------------------------------------------------------------


@pytest.mark.parametrize("role", EDITORS + READERS)
@pytest.mark.parametrize("address", PAGES)
def test_every_staff_role_may_read_the_loyalty_pages(
    programme: Programme, role: str, address: str
) -> None:
    # given
    client = _client(role)
    # when
    response = client.get(address)
    # then
    assert response.status_code == 200
    html = response.content.decode()
    forms = re.findall(r'data-form="([\w-]+)"', html)
    if role in EDITORS or (role, address) == ("marketer", "/loyalty/coupons/"):
        assert "data-read-only" not in html
    else:
        assert forms == []
        assert ("data-read-only" in html) == (address != "/loyalty/")


@pytest.mark.parametrize("role", EDITORS)
def test_editors_see_the_forms(programme: Programme, role: str) -> None:
    # given
    client = _client(role)
    Category.objects.create(name="Tea", path="Tea")
    # when
    forms = {
        address: re.findall(r'data-form="([\w-]+)"', client.get(address).content.decode())
        for address in PAGES
    }
    # then
    assert forms == {
        "/loyalty/": [],
        "/loyalty/programme/": ["programme"],
        "/loyalty/tiers/": ["tier"],
        "/loyalty/rules/": ["promotion", "category-multiplier"],
        "/loyalty/rewards/": ["reward"],
        "/loyalty/coupons/": ["coupon-template"],
    }


def test_a_superuser_may_change_the_programme(programme: Programme) -> None:
    # given
    user = User.objects.create_superuser("root", password="x")
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    # when
    response = client.post("/loyalty/tiers/", _tier_data(name="Bronze", threshold="500"))
    # then
    assert response.status_code == 302
    assert Tier.objects.get(programme=programme, threshold=500).name == "Bronze"


#: Posts a read-only role may not make: every set-up form; marketers make coupons
#: (``coupons.configure``), see test_a_marketer_makes_coupons_but_not_the_programme.
READ_ONLY_POSTS = [
    (role, address)
    for role in READERS
    for address in (
        "/loyalty/programme/",
        "/loyalty/tiers/",
        "/loyalty/rules/promotions/",
        "/loyalty/rules/categories/",
        "/loyalty/rewards/",
        "/loyalty/coupons/",
    )
    if (role, address) != ("marketer", "/loyalty/coupons/")
]


@pytest.mark.parametrize(("role", "address"), READ_ONLY_POSTS)
def test_read_only_roles_cannot_post(programme: Programme, role: str, address: str) -> None:
    # given
    client = _client(role)
    before = _programme_state(programme)
    # when
    response = client.post(address, {**_programme_data(), **_tier_data(name="Diamond")})
    # then
    assert response.status_code == 403
    assert _programme_state(programme) == before


def test_a_marketer_makes_coupons_but_not_the_programme(
    marketer: Client, programme: Programme
) -> None:
    # given
    template = _template()
    before = _programme_state(programme)
    # when
    codes = marketer.post(
        f"/loyalty/coupons/{template.pk}/", {"count": "5", "use_limit": "1", "confirmed": "1"}
    )
    tier = marketer.post("/loyalty/tiers/", _tier_data(name="Diamond"))
    # then: coupons.configure is the marketers' too (core.roles.API_PERMISSIONS)
    assert codes.status_code == 302
    assert Coupon.objects.filter(template=template).count() == 5
    assert tier.status_code == 403
    assert _programme_state(programme) == before


@pytest.mark.parametrize("role", ["analyst", "service_agent"])
def test_analysts_and_service_agents_cannot_generate_codes(programme: Programme, role: str) -> None:
    # given
    template = _template()
    # when
    response = _client(role).post(
        f"/loyalty/coupons/{template.pk}/", {"count": "5", "use_limit": "1", "confirmed": "1"}
    )
    # then
    assert response.status_code == 403
    assert Coupon.objects.count() == 0


@pytest.mark.parametrize("address", [*PAGES, "/customers/C-1/"])
def test_anonymous_visitors_are_sent_to_log_in(db: None, address: str) -> None:
    # when
    response = Client().get(address)
    # then
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def _programme_state(programme: Programme) -> tuple[Any, ...]:
    programme.refresh_from_db()
    return (
        programme.name,
        programme.points_per_unit,
        programme.expiry_policy,
        list(Tier.objects.order_by("threshold").values_list("name", "threshold")),
        Promotion.objects.count(),
        CategoryMultiplier.objects.count(),
        Reward.objects.count(),
        CouponTemplate.objects.count(),
    )


# --- programme settings --------------------------------------------------------------------


def _programme_data(**changes: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Tea Club",
        "currency": "CNY",
        "points_per_unit": "1",
        "rounding": "floor",
        "minimum_order_amount": "0",
        "earning_channels": [],
        "pending_days": "15",
        "expiry_policy": "months_after_earning",
        "expiry_months": "12",
        "point_value_amount": "0.01",
        "tier_metric": "points",
        "tier_window": "rolling_12_months",
        "downgrade_grace_days": "30",
        "earns_from": "",
    }
    data.update(changes)
    return data


def test_programme_settings_are_saved_through_configure_programme(
    manager: Client, programme: Programme
) -> None:
    # when
    response = manager.post(
        "/loyalty/programme/",
        _programme_data(
            name="茶友会",
            points_per_unit="2.5",
            rounding="half_up",
            earning_channels=["web", "mini_program"],
            expiry_policy="end_of_year_after_earning",
            expiry_months="",
            point_value_amount="0.02",
            earns_from="2026-07-01T00:00",
        ),
    )
    # then
    assert response.status_code == 302
    assert response["Location"] == "/loyalty/programme/"
    programme.refresh_from_db()
    assert (
        programme.name,
        programme.points_per_unit,
        programme.rounding,
        programme.earning_channels,
        programme.expiry_policy,
        programme.point_value_amount,
        timezone.localtime(programme.earns_from).isoformat(),
    ) == (
        "茶友会",
        Decimal("2.5000"),
        "half_up",
        ["mini_program", "web"],
        "end_of_year_after_earning",
        Decimal("0.02"),
        "2026-07-01T00:00:00+08:00",
    )
    page = manager.get("/loyalty/programme/").content.decode()
    assert "The programme&#x27;s settings were saved." in page


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"points_per_unit": "-1"}, {"points_per_unit": ["must be at least 0, got -1"]}),
        (
            {"expiry_months": ""},
            {"expiry_months": ["is required when points expire N months after earning"]},
        ),
        ({"currency": "12X"}, {"currency": ["must be a 3-letter ISO 4217 code, got '12X'"]}),
        ({"pending_days": "400"}, {"pending_days": ["must be between 0 and 366, got 400"]}),
    ],
)
def test_a_bad_setting_shows_the_named_fields_error_and_changes_nothing(
    manager: Client, programme: Programme, changes: dict[str, str], errors: dict[str, list[str]]
) -> None:
    # given
    before = _programme_state(programme)
    # when
    response = manager.post("/loyalty/programme/", _programme_data(name="Changed", **changes))
    # then
    assert response.status_code == 400
    assert _form_errors(response) == errors
    field = next(iter(errors))
    assert f'data-error-for="{field}"' in response.content.decode()
    assert _programme_state(programme) == before


# --- tiers ---------------------------------------------------------------------------------


def _tier_data(**changes: str) -> dict[str, str]:
    data = {
        "name": "Platinum",
        "threshold": "5000",
        "earn_multiplier": "2",
        "birthday_bonus_points": "800",
        "has_free_shipping": "on",
    }
    data.update(changes)
    return data


def test_a_tier_is_defined_through_define_tier(manager: Client, programme: Programme) -> None:
    # when
    response = manager.post("/loyalty/tiers/", _tier_data())
    # then
    assert response.status_code == 302
    tier = Tier.objects.get(programme=programme, name="Platinum")
    assert (tier.threshold, tier.earn_multiplier, tier.birthday_bonus_points) == (
        Decimal("5000"),
        Decimal("2"),
        800,
    )
    assert tier.has_free_shipping is True
    rows = _rows(manager.get("/loyalty/tiers/").content.decode(), "tiers")
    assert [row[:6] for row in rows] == [
        ["Silver", "0 points", "×1.00", "0", "No", "0"],
        ["Gold", "1,000 points", "×1.50", "0", "Yes", "0"],
        ["Platinum", "5,000 points", "×2.00", "800", "Yes", "0"],
    ]


def test_editing_a_tier_fills_the_form_and_saves_under_its_name(
    manager: Client, programme: Programme
) -> None:
    # given
    gold = Tier.objects.get(name="Gold")
    # when
    form = manager.get(f"/loyalty/tiers/?edit={gold.pk}").context["form"]
    response = manager.post("/loyalty/tiers/", _tier_data(name="Gold", threshold="1200"))
    # then
    assert form.initial["name"] == "Gold"
    assert str(form.initial["threshold"]) == "1000"
    assert response.status_code == 302
    gold.refresh_from_db()
    assert gold.threshold == Decimal("1200")
    assert Tier.objects.count() == 2


def test_a_tier_on_another_tiers_threshold_is_refused_on_the_threshold_field(
    manager: Client, programme: Programme
) -> None:
    # given
    before = _programme_state(programme)
    # when
    response = manager.post("/loyalty/tiers/", _tier_data(threshold="1000"))
    # then
    assert response.status_code == 400
    assert _form_errors(response) == {"threshold": ["tier Gold already has 1000.0000"]}
    assert _programme_state(programme) == before


# --- earning rules -------------------------------------------------------------------------


def test_a_promotion_is_added_through_add_promotion(manager: Client, programme: Programme) -> None:
    # when
    response = manager.post(
        "/loyalty/rules/promotions/",
        {
            "name": "11.11 double points",
            "multiplier": "2",
            "starts_at": "2026-11-11T00:00",
            "ends_at": "2026-11-12T00:00",
        },
    )
    # then
    assert response.status_code == 302
    assert response["Location"] == "/loyalty/rules/"
    promotion = Promotion.objects.get(programme=programme)
    assert promotion.name == "11.11 double points"
    assert promotion.multiplier == Decimal("2")
    assert timezone.localtime(promotion.starts_at).isoformat() == "2026-11-11T00:00:00+08:00"
    assert timezone.localtime(promotion.ends_at).isoformat() == "2026-11-12T00:00:00+08:00"


def test_a_promotion_that_ends_before_it_starts_is_refused_on_ends_at(
    manager: Client, programme: Programme
) -> None:
    # when
    response = manager.post(
        "/loyalty/rules/promotions/",
        {
            "name": "618",
            "multiplier": "2",
            "starts_at": "2026-06-18T00:00",
            "ends_at": "2026-06-17T00:00",
        },
    )
    # then
    assert response.status_code == 400
    assert _form_errors(response, "promotion_form") == {"ends_at": ["must be after starts_at"]}
    assert Promotion.objects.count() == 0


def test_a_category_multiplier_is_set_through_set_category_multiplier(
    manager: Client, programme: Programme
) -> None:
    # given
    tea = Category.objects.create(name="Tea", path="Tea")
    # when
    response = manager.post("/loyalty/rules/categories/", {"category": tea.pk, "multiplier": "3"})
    bad = manager.post("/loyalty/rules/categories/", {"category": tea.pk, "multiplier": "-2"})
    # then
    assert response.status_code == 302
    assert bad.status_code == 400
    assert _form_errors(bad, "category_form") == {"multiplier": ["must be at least 0, got -2"]}
    assert list(
        CategoryMultiplier.objects.values_list("programme_id", "category__path", "multiplier")
    ) == [(programme.pk, "Tea", Decimal("3"))]


# --- rewards -------------------------------------------------------------------------------


def test_a_reward_is_created_through_create_reward(manager: Client, programme: Programme) -> None:
    # given
    template = _template()
    gold = Tier.objects.get(name="Gold")
    # when
    response = manager.post(
        "/loyalty/rewards/",
        {
            "name": "¥20 off",
            "kind": "coupon",
            "points_cost": "2000",
            "coupon_template": template.pk,
            "stock": "100",
            "per_member_limit": "2",
            "eligible_tiers": [gold.pk],
            "segmentation": "rfm",
            "segment_codes": "champions, loyal",
            "is_active": "on",
        },
    )
    # then
    assert response.status_code == 302
    reward = Reward.objects.get()
    assert (
        reward.programme_id,
        reward.kind,
        reward.points_cost,
        reward.coupon_template_id,
        reward.stock,
        reward.per_member_limit,
        list(reward.eligible_tiers.values_list("name", flat=True)),
        reward.segmentation,
        reward.segment_codes,
        reward.is_active,
    ) == (
        programme.pk,
        "coupon",
        2000,
        template.pk,
        100,
        2,
        ["Gold"],
        "rfm",
        ["champions", "loyal"],
        True,
    )


def test_a_coupon_reward_without_a_template_is_refused_on_that_field(
    manager: Client, programme: Programme
) -> None:
    # when
    response = manager.post(
        "/loyalty/rewards/", {"name": "¥20 off", "kind": "coupon", "points_cost": "2000"}
    )
    # then
    assert response.status_code == 400
    assert _form_errors(response) == {
        "coupon_template": ["a coupon reward needs a coupon template"]
    }
    assert Reward.objects.count() == 0


# --- coupons -------------------------------------------------------------------------------


def _template(**fields: Any) -> CouponTemplate:
    values: dict[str, Any] = {"name": "¥20 off ¥200", "kind": "fixed_amount", "value": Decimal(20)}
    values.update(fields)
    return create_coupon_template(**values)


def test_a_coupon_template_is_created_and_opens_its_page(
    manager: Client, programme: Programme
) -> None:
    # given
    tea = Category.objects.create(name="Tea", path="Tea")
    # when
    response = manager.post(
        "/loyalty/coupons/",
        {
            "name": "10% off tea",
            "kind": "percentage",
            "value": "10",
            "minimum_spend_amount": "100",
            "categories": [tea.pk],
            "valid_from": "2026-01-01T00:00",
            "valid_until": "2027-01-01T00:00",
            "total_use_limit": "1000",
            "per_customer_use_limit": "1",
            "is_active": "on",
        },
    )
    # then
    template = CouponTemplate.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/loyalty/coupons/{template.pk}/"
    assert (
        template.kind,
        template.value,
        template.currency,
        template.minimum_spend_amount,
        list(template.categories.values_list("path", flat=True)),
        template.total_use_limit,
        template.per_customer_use_limit,
        template.is_stackable,
        template.is_active,
    ) == ("percentage", Decimal("10"), "CNY", Decimal("100"), ["Tea"], 1000, 1, False, True)


def test_a_percentage_over_100_is_refused_on_the_value_field(
    manager: Client, programme: Programme
) -> None:
    # when
    response = manager.post(
        "/loyalty/coupons/",
        {"name": "Too good", "kind": "percentage", "value": "150", "minimum_spend_amount": "0"},
    )
    # then
    assert response.status_code == 400
    assert _form_errors(response) == {
        "value": ["a percentage coupon needs a value above 0 and at most 100"]
    }
    assert CouponTemplate.objects.count() == 0


def test_generating_codes_asks_for_confirmation_first(
    manager: Client, programme: Programme
) -> None:
    # given
    template = _template()
    # when
    response = manager.post(
        f"/loyalty/coupons/{template.pk}/", {"count": "25", "prefix": "VIP-", "use_limit": "1"}
    )
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-confirm="generate"' in html
    assert "Generate 25 codes" in html
    assert '<input type="hidden" name="confirmed" value="1">' in html
    assert Coupon.objects.count() == 0


def test_confirmed_generation_makes_the_codes_and_offers_the_batch_as_csv(
    manager: Client, programme: Programme
) -> None:
    # given: an earlier batch, which the new batch's download leaves out
    template = _template()
    earlier = generate_coupon_codes(template, 3)
    # when
    response = manager.post(
        f"/loyalty/coupons/{template.pk}/",
        {"count": "25", "prefix": "vip-", "use_limit": "1", "confirmed": "1"},
    )
    # then
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == f"/loyalty/coupons/{template.pk}/"
    assert parse_qs(location.query)["made"] == ["25"]
    new_codes = set(
        Coupon.objects.filter(template=template)
        .exclude(code__in=earlier)
        .values_list("code", flat=True)
    )
    assert len(new_codes) == 25
    assert all(re.fullmatch(r"VIP-[2-9A-HJ-NP-Z]{12}", code) for code in new_codes)
    page = manager.get(response["Location"]).content.decode()
    assert "25 codes were generated." in page
    batch_link = re.search(r'href="([^"]+)" data-action="export-batch"', page)
    assert batch_link is not None
    download = manager.get(batch_link.group(1).replace("&amp;", "&"))
    assert download["Content-Type"] == "text/csv; charset=utf-8"
    assert download.content.startswith(b"\xef\xbb\xbf")
    records = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert records[0] == [
        "code",
        "template",
        "kind",
        "value",
        "currency",
        "assigned_to",
        "use_limit",
        "times_used",
        "created_at",
    ]
    assert {record[0] for record in records[1:]} == new_codes
    assert {tuple(record[1:8]) for record in records[1:]} == {
        ("¥20 off ¥200", "fixed_amount", "20", "CNY", "", "1", "0")
    }
    everything = manager.get(f"/loyalty/coupons/{template.pk}/codes.csv")
    assert len(everything.content.decode("utf-8-sig").splitlines()) == 1 + 28


def test_a_bad_prefix_is_refused_on_its_field_and_makes_no_codes(
    manager: Client, programme: Programme
) -> None:
    # given
    template = _template()
    # when
    response = manager.post(
        f"/loyalty/coupons/{template.pk}/",
        {"count": "5", "prefix": "VIP!", "use_limit": "1", "confirmed": "1"},
    )
    # then
    assert response.status_code == 400
    assert _form_errors(response) == {
        "prefix": ["'VIP!': use 1-20 letters, digits or '-', starting with a letter or digit"]
    }
    assert Coupon.objects.count() == 0


def test_the_chinese_pages_speak_chinese(manager: Client, programme: Programme) -> None:
    # given
    _members(timezone.now())
    # when
    overview = manager.get("/loyalty/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    panel = manager.get("/customers/C-LI/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    # then
    assert '<h1 class="page-title">积分计划概览</h1>' in overview
    assert _kpi(overview, "liability") == "¥12.00"
    assert '<h2 class="card-title">会员积分</h2>' in panel


def test_member_panel_queries_do_not_grow_with_the_ledger(
    manager: Client, programme: Programme, django_assert_num_queries: Any
) -> None:
    # given: a member with 40 ledger transactions (20 shown)
    now = timezone.now()
    li_na = _earn("C-LI", "100", 30, now)
    for number in range(38):
        adjust_points(li_na, 1, reason=f"gift {number}", actor="user:mei", as_of=now)
    # when / then: the customer page's 15 queries, the programme's among them (the
    # recommendation panel reads the personalisation consent, then the serving run with
    # the stored list: no training here), and 7 for the member (member, balances, next
    # expiry, ledger, postings, count, tier change), and the user's roles (a loyalty manager
    # reads masked data: no audit event, and sees no data subject request panel)
    with django_assert_num_queries(23):
        html = manager.get("/customers/C-LI/").content.decode()
    assert len(_rows(html, "ledger")) == 20
    assert "Latest 20 of 40 entries" in html
