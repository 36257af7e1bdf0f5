"""A small demo shop with orders and behaviour events, and a small hand-made one."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from patron.catalog.models import Category, Product
from patron.customers.models import Customer
from patron.demo.generator import DemoConfig, DemoWorld, generate_world
from patron.ingest.services import ImportOptions, RecordKind, import_frames
from patron.orders.models import Event, Order, OrderLine

AS_OF = dt.date(2025, 6, 1)


@pytest.fixture(scope="session")
def recommend_world() -> DemoWorld:
    """300 customers and 240 products of the demo world over two years."""
    return generate_world(DemoConfig(customers=300, seed=5, as_of=AS_OF, products=240))


@pytest.fixture
def demo_shop(db: None, recommend_world: DemoWorld) -> DemoWorld:
    """The world imported into the store, events included (without loyalty points)."""
    options = ImportOptions(source="test", strict=True)
    for kind, frame in (
        (RecordKind.CUSTOMERS, recommend_world.customers),
        (RecordKind.PRODUCTS, recommend_world.products),
        (RecordKind.ORDERS, recommend_world.orders),
        (RecordKind.EVENTS, recommend_world.events),
    ):
        summary = import_frames(kind, [frame], options=options)
        assert summary.rejected == 0
    return recommend_world


def at(day: int, hour: int = 10) -> dt.datetime:
    """A UTC moment in June 2025."""
    return dt.datetime(2025, 6, day, hour, tzinfo=dt.UTC)


def make_order(
    external_id: str,
    customer: Customer,
    products: list[Product],
    when: dt.datetime,
    status: str = "paid",
) -> Order:
    """An order of one unit of each product at 10.00."""
    order = Order.objects.create(
        external_id=external_id,
        customer=customer,
        ordered_at=when,
        status=status,
        subtotal_amount=Decimal(10) * len(products),
        total_amount=Decimal(10) * len(products),
    )
    for number, product in enumerate(products, start=1):
        OrderLine.objects.create(
            order=order,
            line_key=f"{product.external_id}#1",
            line_number=number,
            product=product,
            quantity=1,
            unit_price_amount=Decimal(10),
            line_total_amount=Decimal(10),
        )
    return order


@pytest.fixture
def tea_shop(db: None) -> dict[str, object]:
    """Products tea, cups, pot, honey, coffee (inactive) and mug; six customers whose orders
    pair tea with cups, and a customer who only viewed the pot.

    a..e bought tea + cups; a, b, c also pot; d, e honey; a bought coffee (now inactive);
    ``viewer`` viewed the pot and bought nothing; ``newcomer`` has done nothing.
    """
    drinks = Category.objects.create(name="Drinks", path="Drinks")
    tea_category = Category.objects.create(name="Tea", parent=drinks, path="Drinks > Tea")
    products = {
        name: Product.objects.create(
            external_id=f"P-{name}",
            name=name,
            category=tea_category if name == "tea" else drinks,
            price_amount=Decimal(10),
            is_active=name != "coffee",
        )
        for name in ("tea", "cups", "pot", "honey", "coffee", "mug")
    }
    customers = {
        name: Customer.objects.create(external_id=f"C-{name}", name=name)
        for name in ("a", "b", "c", "d", "e", "f", "viewer", "newcomer")
    }
    baskets = {
        "a": [["tea", "cups"], ["pot"], ["coffee"]],
        "b": [["tea", "cups", "pot"]],
        "c": [["tea", "cups"], ["pot", "mug"]],
        "d": [["tea", "cups", "honey"]],
        "e": [["tea", "cups"], ["honey"]],
        "f": [["tea"]],
    }
    number = 0
    for name, orders in baskets.items():
        for basket in orders:
            number += 1
            make_order(
                f"O-{number}", customers[name], [products[p] for p in basket], at(1 + number % 20)
            )
    Event.objects.create(
        external_id="E-1",
        customer=customers["viewer"],
        event_type="view",
        product=products["pot"],
        occurred_at=at(25),
    )
    return {"products": products, "customers": customers}
