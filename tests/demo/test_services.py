"""Building the demo shop into the store, and the ``patron demo`` command."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import polars as pl
import pytest
from django.conf import Settings
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from patron.customers.models import Customer
from patron.customers.selectors import get_customer
from patron.demo.generator import DemoWorld
from patron.demo.services import DemoBuildError, build_demo_shop, net_revenue
from patron.loyalty.models import LedgerTransaction, Member, Programme, Promotion, Tier
from patron.loyalty.programme import get_programme
from patron.orders.models import Event, Order, OrderLine, Refund
from tests.demo.conftest import AS_OF
from tests.loyalty.points_helpers import assert_ledger_consistent, ledger_size


def _counts() -> dict[str, int]:
    return {
        "customers": Customer.objects.count(),
        "orders": Order.objects.count(),
        "lines": OrderLine.objects.count(),
        "refunds": Refund.objects.count(),
        "events": Event.objects.count(),
        "anonymous_events": Event.objects.filter(customer__isnull=True).count(),
        "programmes": Programme.objects.count(),
        "tiers": Tier.objects.count(),
        "promotions": Promotion.objects.count(),
    }


def _profiles() -> list[tuple[object, ...]]:
    return list(
        Customer.objects.order_by("external_id").values_list(
            "external_id", "name", "email", "phone", "birthday", "address", "gender", "province",
            "city", "signup_channel", "signed_up_at", "tags",
        )
    )  # fmt: skip


@pytest.mark.django_db(transaction=False)
def test_the_demo_shop_lands_in_the_store(tmp_path: Path, small_world: DemoWorld) -> None:
    # When the demo shop of 300 customers is built
    report = build_demo_shop(customers=300, seed=1, as_of=AS_OF, home=tmp_path)

    # Then the store holds the world, its duplicate accounts merged into their people
    world = small_world
    orders = world.orders["order_id"].n_unique()
    refunded = world.orders.filter(pl.col("refund_amount").is_not_null())["order_id"].n_unique()
    assert _counts() == {
        "customers": 300,
        "orders": orders,
        "lines": world.orders.height,
        "refunds": refunded,
        "events": world.events.height,
        "anonymous_events": _counts()["anonymous_events"],
        "programmes": 1,
        "tiers": 3,
        "promotions": 6,  # 618 and 11.11 of the two observed years and the current one
    }
    pairs = world.truth_customers.filter(pl.col("duplicate_customer_id").is_not_null())
    for person_id, duplicate_id in pairs.select("customer_id", "duplicate_customer_id").rows():
        assert get_customer(duplicate_id) == get_customer(person_id)
    assert world.duplicate_accounts == 3
    assert (report.customers, report.customer_accounts, report.orders) == (300, 303, orders)
    assert report.revenue == net_revenue(world.orders)
    # And the addresses of the world are the customers' (stored encrypted, read back plain)
    addresses = dict(world.customers.select("customer_id", "address").drop_nulls().rows())
    assert addresses
    assert {
        external_id: address
        for external_id, address in Customer.objects.exclude(address="").values_list(
            "external_id", "address"
        )
    } == addresses
    # And anonymous events of devices that logged in later belong to their customer
    anonymous_in_world = world.events["customer_id"].null_count()
    assert 0 < _counts()["anonymous_events"] < anonymous_in_world
    # And the truth lies beside the store
    truth = json.loads(report.truth_path.read_text(encoding="utf-8"))
    assert report.truth_path == tmp_path / "demo" / "truth.json"
    assert (truth["seed"], truth["customers"], truth["as_of"]) == (1, 300, "2025-06-01")
    assert pl.read_parquet(report.truth_customers_path).equals(world.truth_customers)
    # And the demo login works
    assert Client().login(username="demo", password="demo")
    assert User.objects.get(username="demo").groups.filter(name="admin").exists()


@pytest.mark.django_db(transaction=False)
def test_building_the_demo_shop_again_changes_nothing(tmp_path: Path) -> None:
    # Given a built demo shop
    build_demo_shop(customers=300, seed=1, as_of=AS_OF, home=tmp_path)
    before = _counts()
    ledger = ledger_size()
    profiles = _profiles()
    password = User.objects.get(username="demo").password

    # When it is built again, without naming the day (the first build's day is reused)
    report = build_demo_shop(customers=300, seed=1, home=tmp_path)

    # Then nothing was inserted, no order, product or event updated, no profile changed (the
    # two accounts of a duplicated person are applied to it in turn, ending as before)
    assert [(s.kind, s.inserted) for s in report.imports] == [
        ("customers", 0),
        ("products", 0),
        ("orders", 0),
        ("events", 0),
    ]
    assert [s.updated for s in report.imports[1:]] == [0, 0, 0]
    assert _profiles() == profiles
    assert _counts() == before
    assert ledger_size() == ledger
    assert User.objects.get(username="demo").password == password


@pytest.mark.django_db(transaction=False)
def test_the_demo_shop_runs_a_programme_with_three_spend_tiers(tmp_path: Path) -> None:
    build_demo_shop(customers=300, seed=1, as_of=AS_OF, home=tmp_path)
    programme = get_programme()
    assert (programme.tier_metric, programme.pending_days) == ("spend", 15)
    assert programme.expiry_policy == "end_of_year_after_earning"
    tiers = list(programme.tiers.order_by("threshold"))
    assert [(tier.threshold, tier.earn_multiplier) for tier in tiers] == [
        (Decimal(0), Decimal(1)),
        (Decimal(2000), Decimal("1.2")),
        (Decimal(8000), Decimal("1.5")),
    ]
    eleven = Promotion.objects.get(name=f"11.11 double points {AS_OF.year - 1}")
    assert eleven.multiplier == 2
    assert timezone.localtime(eleven.starts_at).date() == date(AS_OF.year - 1, 11, 11)
    assert eleven.ends_at - eleven.starts_at == timedelta(days=1)
    # Orders placed since the programme started (six months before the demo's last day, from
    # the first of the month) earned once each; older ones earned nothing.
    assert programme.earns_from is not None
    assert timezone.localtime(programme.earns_from).date() == date(AS_OF.year - 1, 12, 1)
    paid_since = Order.objects.filter(
        ordered_at__gte=programme.earns_from, status__in=["paid", "shipped", "delivered"]
    )
    earns = LedgerTransaction.objects.filter(kind="earn")
    assert earns.count() == paid_since.count() > 0
    assert set(earns.values_list("order_id", flat=True)) == set(
        paid_since.values_list("pk", flat=True)
    )
    assert not earns.filter(occurred_at__lt=programme.earns_from).exists()
    for member in Member.objects.order_by("pk")[:20]:
        assert_ledger_consistent(member)


@pytest.mark.django_db(transaction=False)
def test_another_demo_is_refused_over_a_built_one(tmp_path: Path) -> None:
    # Given a built demo shop
    build_demo_shop(customers=300, seed=1, as_of=AS_OF, home=tmp_path)
    before = _counts()

    # When one with another seed is built into the same home
    with pytest.raises(DemoBuildError, match="built with --customers 300 --seed 1"):
        build_demo_shop(customers=300, seed=2, as_of=AS_OF, home=tmp_path)

    # Then the store is untouched
    assert _counts() == before


@pytest.mark.django_db(transaction=False)
def test_the_demo_command_builds_without_serving(tmp_path: Path, settings: Settings) -> None:
    # Given a fresh home for the truth files
    settings.PATRON_HOME = tmp_path
    output = StringIO()

    # When the command runs with --no-serve
    call_command("demo", customers=200, seed=5, as_of="2025-06-01", no_serve=True, stdout=output)

    # Then the shop is built and the login printed
    text = output.getvalue()
    assert Customer.objects.count() == 200
    assert "Demo shop ready" in text
    assert "200 customers (+2 duplicate accounts merged)" in text
    assert "Log in as demo / demo" in text
    assert "Serving" not in text
    assert (tmp_path / "demo" / "truth.json").exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"customers": 0}, "--customers must be at least 1, got 0"),
        ({"as_of": "June 1st"}, "--as-of 'June 1st': not a date (use YYYY-MM-DD)"),
    ],
)
@pytest.mark.django_db(transaction=False)
def test_the_demo_command_refuses_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(CommandError) as raised:
        call_command("demo", no_serve=True, stdout=StringIO(), **options)

    assert str(raised.value) == message
    assert Customer.objects.count() == 0
