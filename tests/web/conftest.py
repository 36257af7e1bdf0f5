"""Fixtures of the dashboard tests: a staff user and a small shop with known figures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from pytest_django.fixtures import Settings

from patron.analytics.models import AnalysisRun
from patron.analytics.services import run_analysis
from patron.catalog.models import Product
from patron.core.roles import StaffRoleChoices
from patron.customers.choices import IdentityKindChoices
from patron.customers.models import Customer, CustomerIdentity
from patron.demo.generator import DemoConfig, DemoWorld, generate_world
from patron.ingest.services import ImportOptions, RecordKind, import_frames
from patron.orders.choices import EventTypeChoices, OrderStatusChoices
from patron.orders.models import Event, Order, OrderLine, Refund

SHANGHAI = ZoneInfo("Asia/Shanghai")
STAFF_PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def plain_static_storage(settings: Settings) -> None:
    """Tests render pages without running collectstatic: use unhashed static URLs."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def staff_user(db: None) -> User:
    """An active staff user (not a superuser) in the admin role: every page, personal data
    unmasked (tests/web/test_role_matrix.py covers the other roles)."""
    user = User.objects.create_user("mei", password=STAFF_PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=StaffRoleChoices.ADMIN))
    return user


@pytest.fixture
def staff_client(staff_user: User) -> Client:
    """A test client logged in as the staff user, reading English pages."""
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff_user)
    return client


@dataclass(frozen=True)
class SmallShop:
    """What :func:`make_small_shop` created, with the figures a reader can check by hand."""

    now: datetime
    li_na: Customer
    zhang_wei: Customer
    emma: Customer


def _order(
    customer: Customer,
    external_id: str,
    ordered_at: datetime,
    lines: list[tuple[Product, int, str]],
    status: str = OrderStatusChoices.PAID,
    discount: str = "0",
) -> Order:
    subtotal = sum((Decimal(price) * quantity for _, quantity, price in lines), Decimal(0))
    order = Order.objects.create(
        external_id=external_id,
        customer=customer,
        ordered_at=ordered_at,
        status=status,
        subtotal_amount=subtotal,
        discount_amount=Decimal(discount),
        total_amount=subtotal - Decimal(discount),
    )
    for number, (product, quantity, price) in enumerate(lines, start=1):
        OrderLine.objects.create(
            order=order,
            line_key=str(number),
            line_number=number,
            product=product,
            quantity=quantity,
            unit_price_amount=Decimal(price),
            line_total_amount=Decimal(price) * quantity,
        )
    return order


def make_small_shop(now: datetime) -> SmallShop:
    """Three customers, five orders (one cancelled, one refunded in part) and four events.

    Counted orders: O-1001 ¥258.00, O-1002 ¥99.90 (refund ¥20.00), O-2001 ¥1,500.00 (ordered
    200 days ago), O-2002 ¥36.50; O-1003 ¥500.00 is cancelled. Revenue = 1,874.40.
    Buyers: 李娜 (2 orders), Zhang Wei (2 orders, the first 200 days ago); Emma has none.
    Active in 90 days: 李娜 (orders), Zhang Wei (an order 10 days ago), Emma (a view event).
    """
    tea = Product.objects.create(external_id="SKU-TEA", name="西湖龙井 Longjing tea")
    cup = Product.objects.create(external_id="SKU-CUP", name="Celadon cup")
    li_na = Customer.objects.create(
        external_id="C-0001",
        name="李娜",
        email="li.na@example.cn",
        phone="+8613812345678",
        province="浙江",
        city="杭州",
        signup_channel="mini_program",
        tags=["vip"],
    )
    CustomerIdentity.objects.create(
        customer=li_na, kind=IdentityKindChoices.PHONE, value="+8613812345678"
    )
    CustomerIdentity.objects.create(
        customer=li_na, kind=IdentityKindChoices.EMAIL, value="li.na@example.cn"
    )
    zhang_wei = Customer.objects.create(
        external_id="C-0002", name="Zhang Wei", email="zw@example.com", phone="+8613900001111"
    )
    emma = Customer.objects.create(external_id="C-0003", name="Emma Clark")
    _order(li_na, "O-1001", now - timedelta(days=30), [(tea, 2, "129.00")])
    second = _order(li_na, "O-1002", now - timedelta(days=3), [(cup, 1, "99.90")])
    Refund.objects.create(
        external_id="R-1",
        order=second,
        amount=Decimal("20.00"),
        refunded_at=now - timedelta(days=2),
        reason="chipped",
    )
    _order(
        li_na,
        "O-1003",
        now - timedelta(days=1),
        [(tea, 4, "125.00")],
        status=OrderStatusChoices.CANCELLED,
    )
    _order(zhang_wei, "O-2001", now - timedelta(days=200), [(tea, 10, "150.00")])
    _order(
        zhang_wei,
        "O-2002",
        now - timedelta(days=10),
        [(cup, 1, "40.00")],
        discount="3.50",
    )
    for number, (customer, kind, product, days) in enumerate(
        [
            (li_na, EventTypeChoices.VIEW, tea, 31),
            (li_na, EventTypeChoices.ADD_TO_CART, tea, 30),
            (li_na, EventTypeChoices.PURCHASE, tea, 30),
            (emma, EventTypeChoices.VIEW, cup, 5),
        ],
        start=1,
    ):
        Event.objects.create(
            external_id=f"E-{number}",
            customer=customer,
            event_type=kind,
            product=product,
            occurred_at=now - timedelta(days=days),
        )
    return SmallShop(now=now, li_na=li_na, zhang_wei=zhang_wei, emma=emma)


@pytest.fixture
def small_shop(db: None) -> SmallShop:
    """The small shop of :func:`make_small_shop`, as of now."""
    return make_small_shop(timezone.now())


#: The demo world of the analytics pages ends on this day; its first analysis is three months
#: earlier, so that the migration page has two runs to compare.
ANALYSIS_WORLD_END = date(2025, 6, 1)
EARLIER_AS_OF = date(2025, 3, 1)


@pytest.fixture(scope="session")
def analytics_world() -> DemoWorld:
    """150 customers of the demo world (every kind of order), generated once."""
    return generate_world(DemoConfig(customers=150, seed=5, as_of=ANALYSIS_WORLD_END))


@dataclass(frozen=True)
class AnalysedShop:
    """A demo shop in the store, analysed twice: as of ``EARLIER_AS_OF``, then as of its
    latest order (the run a page shows by default)."""

    world: DemoWorld
    earlier: AnalysisRun
    latest: AnalysisRun


def make_analysed_shop(world: DemoWorld) -> AnalysedShop:
    """Import ``world``'s customers, products and orders, then run the analysis twice."""
    options = ImportOptions(source="test", strict=True)
    for kind, frame in (
        (RecordKind.CUSTOMERS, world.customers),
        (RecordKind.PRODUCTS, world.products),
        (RecordKind.ORDERS, world.orders),
    ):
        summary = import_frames(kind, [frame], options=options)
        assert summary.rejected == 0
    earlier = run_analysis(as_of=EARLIER_AS_OF, triggered_by="test")
    latest = run_analysis(triggered_by="test")
    return AnalysedShop(world=world, earlier=earlier, latest=latest)


@pytest.fixture
def analysed_shop(db: None, analytics_world: DemoWorld) -> AnalysedShop:
    """The analytics world imported and analysed twice (see :class:`AnalysedShop`)."""
    return make_analysed_shop(analytics_world)
