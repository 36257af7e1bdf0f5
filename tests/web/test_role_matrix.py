"""Every dashboard page × every role (and anonymous visitors, staff in no role, signed-in
users who are not staff): the status each gets, and masked or plain personal data on the
customer pages. The pages are listed from ``web/urls.py``, so a new page without an expected
row fails here."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from patron.analytics.models import ModelRun
from patron.core.roles import PAGE_AREAS, PageAreaChoices, StaffRoleChoices
from patron.customers.models import Customer
from patron.loyalty.coupons import create_coupon_template
from patron.privacy.choices import AuditActionChoices
from patron.privacy.models import AuditEvent
from patron.privacy.pii.masking import mask_email, mask_name, mask_phone
from patron.web import urls
from tests.web.conftest import AnalysedShop

#: The area of each page (``PAGE_AREAS`` says which roles open it).
PAGE_AREA_OF: dict[str, str] = {
    "overview": PageAreaChoices.OVERVIEW,
    "customer_list": PageAreaChoices.CUSTOMERS,
    "customer_detail": PageAreaChoices.CUSTOMERS,
    "consent_decision": PageAreaChoices.CUSTOMERS,
    "customer_correction": PageAreaChoices.CUSTOMERS,
    "customer_export": PageAreaChoices.CUSTOMERS,
    "customer_erasure": PageAreaChoices.CUSTOMERS,
    "analytics_segments": PageAreaChoices.ANALYTICS,
    "analytics_segment_customers": PageAreaChoices.ANALYTICS,
    "analytics_segment_export": PageAreaChoices.ANALYTICS,
    "analytics_cohorts": PageAreaChoices.ANALYTICS,
    "analytics_kpis": PageAreaChoices.ANALYTICS,
    "analytics_migration": PageAreaChoices.ANALYTICS,
    "analytics_clv": PageAreaChoices.ANALYTICS,
    "analytics_churn": PageAreaChoices.ANALYTICS,
    "analytics_churn_export": PageAreaChoices.ANALYTICS,
    "analytics_models": PageAreaChoices.ANALYTICS,
    "analytics_model_detail": PageAreaChoices.ANALYTICS,
    "recommendations": PageAreaChoices.RECOMMENDATIONS,
    "loyalty_overview": PageAreaChoices.LOYALTY,
    "loyalty_programme": PageAreaChoices.LOYALTY,
    "loyalty_tiers": PageAreaChoices.LOYALTY,
    "loyalty_rules": PageAreaChoices.LOYALTY,
    "loyalty_promotion_add": PageAreaChoices.LOYALTY,
    "loyalty_category_multiplier_set": PageAreaChoices.LOYALTY,
    "loyalty_rewards": PageAreaChoices.LOYALTY,
    "loyalty_coupons": PageAreaChoices.LOYALTY,
    "loyalty_coupon_template": PageAreaChoices.LOYALTY,
    "loyalty_coupon_codes_export": PageAreaChoices.LOYALTY,
    "audit_log": PageAreaChoices.PRIVACY,
    "privacy_requests": PageAreaChoices.PRIVACY,
    "privacy_request_status": PageAreaChoices.PRIVACY,
}
#: Pages outside the role matrix: signing in and out are for everyone.
PUBLIC_PAGES = {"login", "logout"}
#: What an allowed GET answers where it is not 200: the consent, correction, export,
#: erasure and request status forms only take a POST; the two rule forms send a GET back to
#: the rules page. (Who may POST them: tests/web/test_privacy_request_pages.py.)
ALLOWED_STATUS = {
    "consent_decision": 405,
    "customer_correction": 405,
    "customer_export": 405,
    "customer_erasure": 405,
    "privacy_request_status": 405,
    "loyalty_promotion_add": 302,
    "loyalty_category_multiplier_set": 302,
}
CALLERS = [*StaffRoleChoices.values, "no_role", "not_staff", "anonymous"]


def test_every_dashboard_page_has_an_area() -> None:
    names = {pattern.name for pattern in urls.urlpatterns}
    assert names - PUBLIC_PAGES == set(PAGE_AREA_OF)


def caller_client(caller: str) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    if caller == "anonymous":
        return client
    user = User.objects.create_user(f"user-{caller}", password="x", is_staff=caller != "not_staff")
    if caller in StaffRoleChoices.values:
        user.groups.add(Group.objects.get(name=caller))
    client.force_login(user)
    return client


def page_addresses(shop: AnalysedShop) -> dict[str, str]:
    customer = Customer.objects.order_by("pk").first()
    assert customer is not None
    template = create_coupon_template(name="5 off", kind="fixed_amount", value=Decimal(5))
    model_run = ModelRun.objects.order_by("pk").first()
    assert model_run is not None
    args: dict[str, list[object]] = {
        "customer_detail": [customer.external_id],
        "consent_decision": [customer.external_id],
        "customer_correction": [customer.external_id],
        "customer_export": [customer.external_id],
        "customer_erasure": [customer.external_id],
        "privacy_request_status": [1],
        "analytics_segment_customers": ["rfm", "champions"],
        "analytics_segment_export": ["rfm", "champions"],
        "analytics_model_detail": [model_run.pk],
        "loyalty_coupon_template": [template.pk],
        "loyalty_coupon_codes_export": [template.pk],
    }
    return {name: reverse(f"web:{name}", args=args.get(name, [])) for name in PAGE_AREA_OF}


def expected_status(caller: str, name: str) -> int:
    if caller == "anonymous":
        return 302
    if caller == "not_staff":
        return 403
    if caller not in PAGE_AREAS[PAGE_AREA_OF[name]]:
        return 403
    return ALLOWED_STATUS.get(name, 200)


@pytest.mark.parametrize("caller", CALLERS)
def test_each_caller_gets_the_expected_status_on_every_page(
    analysed_shop: AnalysedShop, caller: str
) -> None:
    # given
    addresses = page_addresses(analysed_shop)
    client = caller_client(caller)
    # when
    got = {name: client.get(address).status_code for name, address in addresses.items()}
    # then
    assert got == {name: expected_status(caller, name) for name in addresses}
    if caller == "anonymous":
        response = client.get(addresses["customer_list"])
        assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize(
    ("role", "unmasked"),
    [
        (StaffRoleChoices.ADMIN, True),
        (StaffRoleChoices.SERVICE_AGENT, True),
        (StaffRoleChoices.LOYALTY_MANAGER, False),
        (StaffRoleChoices.MARKETER, False),
        (StaffRoleChoices.ANALYST, False),
    ],
)
def test_customer_pages_show_masked_or_plain_personal_data_by_role(
    db: None, role: str, unmasked: bool
) -> None:
    # given
    customer = Customer.objects.create(
        external_id="C-0042",
        name="张伟",
        email="zhang.wei@qq.com",
        phone="+8613812345678",
        address="上海市浦东新区世纪大道100号",
    )
    client = caller_client(role)
    plain = ["张伟", "zhang.wei@qq.com", "13812345678", "世纪大道"]
    masked = [mask_name("张伟"), mask_email("zhang.wei@qq.com"), mask_phone("+8613812345678")]
    # when
    pages = [
        client.get("/customers/").content.decode(),
        client.get(f"/customers/{customer.external_id}/").content.decode(),
    ]
    # then
    for page in pages:
        for value in plain[:3]:
            assert (value in page) is unmasked, value
        for value in masked:
            assert (value in page) is not unmasked, value
    assert ("世纪大道" in pages[1]) is unmasked
    events = AuditEvent.objects.filter(action=AuditActionChoices.PII_READ)
    if unmasked:
        assert [event.details["purpose"] for event in events.order_by("id")] == [
            "customer list page",
            "customer page",
        ]
        assert events.get(details__purpose="customer page").customer_pk == customer.pk
    else:
        assert not events.exists()


def test_analysis_lists_show_masked_names_even_to_administrators(
    staff_client: Client, analysed_shop: AnalysedShop
) -> None:
    # given
    names = [customer.name for customer in Customer.objects.all() if len(customer.name) > 1]
    assert names
    # when
    pages = [
        staff_client.get(address).content.decode()
        for address in (
            "/analytics/clv/",
            "/analytics/churn/",
            "/analytics/segments/rfm/champions/",
        )
    ]
    # then
    for page in pages:
        assert [name for name in names if name in page] == []
        assert any(mask_name(name) in page for name in names)
