"""Customers without consent to personalisation: their behaviour trains nothing and they are
served the shop's popular products only."""

from __future__ import annotations

import polars as pl
from pytest_django.fixtures import Settings

from patron.privacy.consent import record_consent
from patron.recommend.choices import ReasonChoices
from patron.recommend.models import PopularProduct, Recommendation
from patron.recommend.selectors import recommendations_for
from patron.recommend.services import read_events, train_recommendations
from tests.recommend.conftest import at


def withdraw_personalisation(customer: object) -> None:
    record_consent(customer, "personalisation", is_granted=False, source="api")  # type: ignore[arg-type]


def test_a_withdrawn_customer_s_behaviour_is_not_read_for_training(tea_shop: dict) -> None:
    # given a and the pot viewer withdraw
    customers = tea_shop["customers"]
    withdraw_personalisation(customers["a"])
    withdraw_personalisation(customers["viewer"])
    # when
    events = read_events(at(28))
    run = train_recommendations(triggered_by="test")
    # then
    readers = set(events["customer_id"].unique().to_list())
    assert customers["a"].pk not in readers
    assert customers["viewer"].pk not in readers
    assert readers == {customers[name].pk for name in ("b", "c", "d", "e", "f")}
    assert run.customers == 5
    assert not Recommendation.objects.filter(customer=customers["a"]).exists()


def test_withdrawn_purchases_do_not_count_towards_the_popular_products(tea_shop: dict) -> None:
    # given only a bought the coffee and a mug came with c's pot: c withdraws
    customers = tea_shop["customers"]
    withdraw_personalisation(customers["c"])
    # when
    run = train_recommendations(triggered_by="test")
    # then the mug, bought by c alone, is no longer popular with anyone
    popular = set(
        PopularProduct.objects.filter(run=run, segment="").values_list("product__name", flat=True)
    )
    assert "mug" not in popular
    assert "tea" in popular


def test_a_withdrawn_customer_is_served_the_shop_s_popular_products_only(tea_shop: dict) -> None:
    # given a trained shop, then a withdraws (after the training had a list for them)
    customers = tea_shop["customers"]
    run = train_recommendations(triggered_by="test")
    assert Recommendation.objects.filter(run=run, customer=customers["a"]).exists()
    withdraw_personalisation(customers["a"])
    # when
    found = recommendations_for(customers["a"], n=3)
    # then: the shop's top three as they are, even what a bought (their history is not read)
    expected = list(
        PopularProduct.objects.filter(run=run, segment="", product__is_active=True)
        .order_by("rank")
        .values_list("product__name", flat=True)[:3]
    )
    assert found.source == "non_personal"
    assert [item.product.name for item in found.items] == expected
    assert [item.rank for item in found.items] == [1, 2, 3]
    assert {item.reason for item in found.items} == {ReasonChoices.POPULAR}
    assert all(item.reason_product is None for item in found.items)
    assert "tea" in expected  # bought by a, still served: nothing of a's is looked at


def test_with_explicit_consent_required_only_granted_customers_train(
    tea_shop: dict, settings: Settings
) -> None:
    # given personalisation needs an explicit grant, which only b and d gave
    settings.CONSENT_DEFAULTS = "personalisation=withdrawn"
    customers = tea_shop["customers"]
    for name in ("b", "d"):
        record_consent(
            customers[name], "personalisation", is_granted=True, source="api", wording_version="v1"
        )
    # when
    events = read_events(at(28))
    run = train_recommendations(triggered_by="test")
    found_for_b = recommendations_for(customers["b"])
    found_for_c = recommendations_for(customers["c"])
    # then
    assert set(events["customer_id"].unique().to_list()) == {customers["b"].pk, customers["d"].pk}
    assert events.filter(pl.col("customer_id") == customers["b"].pk).height == 3
    assert run.customers == 2
    assert found_for_b.source in ("precomputed", "computed")
    assert found_for_c.source == "non_personal"
