"""The dashboard's pages, rendered for a staff user on a small shop with known figures."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from patron.customers.models import Customer
from patron.ingest.services import ImportOptions, RecordKind, import_records
from patron.orders.models import Order
from tests.web.conftest import SHANGHAI, STAFF_PASSWORD, SmallShop

pytestmark = pytest.mark.django_db


def _text(html: bytes) -> str:
    """The page's text with tags removed and white space collapsed, for exact assertions."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode())).strip()


def _kpi(html: bytes, name: str) -> str:
    match = re.search(
        rf'data-kpi="{name}">.*?class="kpi-value"[^>]*>([^<]*)<', html.decode(), re.DOTALL
    )
    assert match, f"no KPI card {name}"
    return match.group(1).strip()


@pytest.mark.parametrize(
    "url",
    ["/", "/customers/", "/customers/C-0001/"],
)
def test_anonymous_visitor_is_sent_to_the_login_page(client: Client, url: str) -> None:
    # when
    response = client.get(url)
    # then
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


def test_signed_in_user_who_is_not_staff_is_refused(client: Client) -> None:
    # given
    user = User.objects.create_user("visitor", password=STAFF_PASSWORD)
    client.force_login(user)
    # when
    response = client.get("/")
    # then
    assert response.status_code == 403


def test_staff_user_logs_in_with_the_form_and_lands_on_the_overview(
    client: Client, staff_user: User
) -> None:
    # when
    response = client.post(
        "/login/", {"username": "mei", "password": STAFF_PASSWORD}, HTTP_ACCEPT_LANGUAGE="en"
    )
    # then
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").status_code == 200


def test_wrong_password_shows_an_error_on_the_login_page(client: Client, staff_user: User) -> None:
    # when
    response = client.post(
        "/login/", {"username": "mei", "password": "wrong"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    # then
    assert response.status_code == 200
    assert "Please enter a correct username and password" in _text(response.content)


def test_overview_shows_the_headline_figures_of_the_shop(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    response = staff_client.get("/")
    # then
    assert response.status_code == 200
    assert _kpi(response.content, "customers") == "3"
    assert _kpi(response.content, "orders") == "4"
    assert _kpi(response.content, "revenue") == "¥1,874.40"
    assert _kpi(response.content, "repeat_rate") == "100.0%"
    assert _kpi(response.content, "active") == "3"
    assert "2 have ordered" in _text(response.content)


def test_overview_embeds_the_weekly_chart_and_serves_plotly_itself(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    html = staff_client.get("/").content.decode()
    # then
    assert 'data-plotly-figure="weekly-orders-revenue-figure"' in html
    assert '<script src="/static/vendor/plotly/plotly.min.js"></script>' in html
    assert "cdn" not in html.lower()
    assert "onclick" not in html.lower()


def test_overview_of_an_empty_shop_says_what_to_do_next(staff_client: Client) -> None:
    # when
    response = staff_client.get("/")
    # then
    text = _text(response.content)
    assert "No orders yet" in text
    assert "patron demo" in text
    assert "patron import customers FILE" in text
    assert _kpi(response.content, "repeat_rate") == "–"


def test_customer_list_pages_through_customers_newest_first(staff_client: Client) -> None:
    # given 30 customers: 25 on the first page, 5 on the second
    Customer.objects.bulk_create(
        Customer(external_id=f"C-{number:03d}", name=f"Customer {number:03d}")
        for number in range(1, 31)
    )
    # when
    first = _text(staff_client.get("/customers/").content)
    second = _text(staff_client.get("/customers/?page=2").content)
    # then
    assert "30 customers" in first
    assert "1–25 of 30" in first
    assert "Customer 030" in first
    assert "Customer 006" in first
    assert "Customer 005" not in first
    assert "26–30 of 30" in second
    assert "Customer 005" in second
    assert "Customer 001" in second
    assert "Customer 006" not in second


def test_customer_list_finds_a_phone_number_written_in_another_format(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    response = staff_client.get("/customers/", {"q": "138 1234 5678"})
    # then
    text = _text(response.content)
    assert "1 customer" in text
    assert "李娜" in text
    assert "Zhang Wei" not in text


@pytest.mark.parametrize(
    ("query", "found"),
    # names are encrypted: a whole name matches (case and spacing ignored), a part does not
    [("zhang  WEI", "Zhang Wei"), ("zw@example.com", "Zhang Wei"), ("C-0003", "Emma Clark")],
)
def test_customer_list_searches_name_email_and_external_id(
    staff_client: Client, small_shop: SmallShop, query: str, found: str
) -> None:
    # when
    text = _text(staff_client.get("/customers/", {"q": query}).content)
    # then
    assert "1 customer" in text
    assert found in text


def test_customer_list_shows_order_statistics_per_customer(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    html = staff_client.get("/customers/", {"q": "C-0001"}).content.decode()
    # then: 2 counted orders, 258.00 + 99.90 - 20.00 refunded
    assert re.search(r'<td class="num">2</td>\s*<td class="num">¥337.90</td>', html)


def test_customer_list_with_no_match_says_so(staff_client: Client, small_shop: SmallShop) -> None:
    # when
    text = _text(staff_client.get("/customers/", {"q": "nobody-like-this"}).content)
    # then
    assert "No customer matches “nobody-like-this”" in text


def test_customer_page_shows_profile_identities_orders_lines_and_events(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    response = staff_client.get("/customers/C-0001/")
    # then
    assert response.status_code == 200
    text = _text(response.content)
    assert "李娜" in text
    assert "浙江 杭州" in text
    assert "+8613812345678" in text
    assert "li.na@example.cn" in text
    # lifetime totals: the cancelled O-1003 does not count
    assert re.search(r'data-field="orders_count">2<', response.content.decode())
    assert re.search(r'data-field="total_spent">¥337.90<', response.content.decode())
    # orders with their lines, newest first, and the refund
    assert text.index("O-1003") < text.index("O-1002") < text.index("O-1001")
    assert "西湖龙井 Longjing tea SKU-TEA 2 ¥129.00 ¥258.00" in text
    assert "Celadon cup SKU-CUP 1 ¥99.90 ¥99.90" in text
    assert "Cancelled" in text
    assert "chipped -¥20.00" in text
    # the event timeline, newest first
    assert text.index("Purchase") < text.index("Add to cart") < text.index("View 西湖龙井")


def test_customer_page_dates_are_in_the_shop_time_zone(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # given O-1001 was ordered 30 days before "now"; the shop is in Asia/Shanghai (UTC+8)
    ordered_at = (small_shop.now - timedelta(days=30)).astimezone(SHANGHAI)
    # when
    text = _text(staff_client.get("/customers/C-0001/").content)
    # then
    assert f"O-1001 {ordered_at:%Y-%m-%d %H:%M}" in text


def test_customer_page_of_an_unknown_customer_is_404(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    response = staff_client.get("/customers/NO-SUCH-ID/")
    # then
    assert response.status_code == 404


def test_customer_link_in_the_list_opens_the_customer_page(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    html = staff_client.get("/customers/").content.decode()
    # then
    assert f'href="{reverse("web:customer_detail", args=["C-0002"])}"' in html
    assert reverse("web:customer_detail", args=["C-0002"]) == "/customers/C-0002/"


def test_customer_page_without_orders_says_how_orders_arrive(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    text = _text(staff_client.get("/customers/C-0003/").content)
    # then
    assert "Emma Clark" in text
    assert "No orders yet. Orders appear here once imported with patron import orders FILE" in text
    assert "View Celadon cup" in text


def test_imported_shop_is_shown_with_resolved_identities(staff_client: Client) -> None:
    # given customers and orders imported as the shop's API would send them
    options = ImportOptions(source="test", strict=True)
    customers = import_records(
        RecordKind.CUSTOMERS,
        [
            {"customer_id": "00042", "name": "王芳", "phone": "139-0000-1234", "city": "成都"},
            {"customer_id": "00043", "name": "Liu Yang", "email": "Liu.Yang@Example.com"},
        ],
        options=options,
    )
    orders = import_records(
        RecordKind.ORDERS,
        [
            {
                "order_id": "T-1",
                "customer_id": "00042",
                "ordered_at": "2026-03-01T10:00:00",
                "product_id": "SKU-1",
                "quantity": 3,
                "unit_price": "19.90",
            },
        ],
        options=options,
    )
    assert (customers.inserted, orders.inserted, orders.rejected) == (2, 1, 0)
    # when staff search by phone in another format, and open the customer
    listing = _text(staff_client.get("/customers/", {"q": "+86 139 0000 1234"}).content)
    page = _text(staff_client.get("/customers/00042/").content)
    # then
    assert "1 customer" in listing
    assert "王芳" in listing
    assert "T-1 2026-03-01 10:00" in page
    assert "SKU-1 3 ¥19.90 ¥59.70" in page
    assert "+8613900001234" in page


def test_customer_list_queries_do_not_grow_with_the_page(
    staff_client: Client, django_assert_num_queries: Any
) -> None:
    # given a full page of customers, each with an order
    customers = Customer.objects.bulk_create(
        Customer(external_id=f"C-{number:03d}", name=f"Customer {number:03d}")
        for number in range(1, 31)
    )
    Order.objects.bulk_create(
        Order(
            external_id=f"O-{customer.external_id}",
            customer=customer,
            ordered_at=datetime(2026, 5, 1, tzinfo=SHANGHAI),
        )
        for customer in Customer.objects.filter(pk__in=[c.pk for c in customers])
    )
    # when / then: session, user, count, page, the page's order statistics, the user's roles
    # and the one audit event of the page's unmasked read
    with django_assert_num_queries(7):
        assert staff_client.get("/customers/").status_code == 200


def test_customer_page_queries_do_not_grow_with_orders_and_lines(
    staff_client: Client, small_shop: SmallShop, django_assert_num_queries: Any
) -> None:
    # when / then: session, user, customer, orders, lines with products, refunds, lifetime
    # totals, the latest analysis run, events, identities, the loyalty programme, the
    # personalisation consent and the latest recommendation training with the stored list,
    # the consent state and history, the customer's data subject requests, the user's roles
    # and the audit event of the unmasked read: the same eighteen however many orders and
    # lines there are
    with django_assert_num_queries(18):
        assert staff_client.get("/customers/C-0001/").status_code == 200


def test_overview_compares_the_last_30_days_with_the_30_before(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    html = staff_client.get("/").content.decode()
    # then
    orders_card = html[html.index('data-kpi="orders"') : html.index('data-kpi="revenue"')]
    revenue_card = html[html.index('data-kpi="revenue"') : html.index('data-kpi="repeat_rate"')]
    assert "Last 30 days: 2" in _text(orders_card.encode())
    assert "▲ +100.0%" in _text(orders_card.encode())
    assert "Last 30 days: ¥116.40" in _text(revenue_card.encode())
    assert "▼ -54.9%" in _text(revenue_card.encode())
