"""Serving: precomputed and computed lists under the business rules, neighbours, rules."""

from __future__ import annotations

from django.test import override_settings

from patron.recommend.selectors import (
    bought_together,
    recommendations_for,
    similar_products,
    strongest_rules,
)
from patron.recommend.services import record_feedback, train_recommendations
from tests.recommend.conftest import at, make_order


def names(items: list) -> list[str]:
    return [item.product.name for item in items]


def test_no_list_before_the_first_training(tea_shop: dict) -> None:
    # when
    found = recommendations_for(tea_shop["customers"]["a"])
    # then
    assert (found.run, found.source, found.items) == (None, "none", [])


def test_a_buyer_gets_neither_bought_nor_inactive_products(tea_shop: dict) -> None:
    # given a bought tea, cups, pot and coffee (now inactive)
    train_recommendations(triggered_by="test")
    # when
    found = recommendations_for(tea_shop["customers"]["a"])
    # then only honey and mug are left, each with a reason
    assert found.source == "precomputed"
    assert sorted(names(found.items)) == ["honey", "mug"]
    assert [item.rank for item in found.items] == [1, 2]
    assert all(item.reason for item in found.items)


def test_a_customer_without_history_gets_popular_products(tea_shop: dict) -> None:
    # given
    train_recommendations(triggered_by="test")
    # when
    found = recommendations_for(tea_shop["customers"]["newcomer"], n=3)
    # then the three most bought active products, by trend
    assert found.source == "computed"
    assert names(found.items) == ["tea", "cups", "pot"]
    assert {item.reason for item in found.items} == {"popular"}
    assert {item.reason_product for item in found.items} == {None}


def test_dismissed_products_are_not_recommended(tea_shop: dict) -> None:
    # given the viewer looked at the pot, then dismissed it
    customers, products = tea_shop["customers"], tea_shop["products"]
    train_recommendations(triggered_by="test")
    assert "pot" in names(recommendations_for(customers["viewer"]).items)
    # when
    record_feedback("fb-pot", customers["viewer"], products["pot"], "dismissed", at(26))
    # then
    assert "pot" not in names(recommendations_for(customers["viewer"]).items)


def test_a_customer_without_history_does_not_get_a_dismissed_popular_product(
    tea_shop: dict,
) -> None:
    # given the newcomer, who has bought and viewed nothing, dismissed the tea
    customers, products = tea_shop["customers"], tea_shop["products"]
    train_recommendations(triggered_by="test")
    record_feedback("fb-tea", customers["newcomer"], products["tea"], "dismissed", at(26))
    # when
    found = recommendations_for(customers["newcomer"], n=3)
    # then the popular products go on without it
    assert found.source == "computed"
    assert names(found.items) == ["cups", "pot", "honey"]


@override_settings(RECOMMEND_REPEAT_PURCHASE_CATEGORIES=["Drinks > Tea"])
def test_products_of_repeat_purchase_categories_may_come_again(tea_shop: dict) -> None:
    # given f bought tea only; tea is in a repeat-purchase category
    train_recommendations(triggered_by="test")
    # when
    found = recommendations_for(tea_shop["customers"]["f"])
    # then
    assert "tea" in names(found.items)
    assert "coffee" not in names(found.items)


def test_similar_products_and_bought_together(tea_shop: dict) -> None:
    # given
    products = tea_shop["products"]
    run = train_recommendations(triggered_by="test")
    # when
    together = bought_together(products["tea"])
    similar = similar_products(products["tea"], n=2)
    # then
    assert [(r.product.name, round(r.lift or 0, 4)) for r in together] == [("cups", 1.6667)]
    assert names(similar)[0] == "cups"
    assert len(similar) == 2
    assert [(r.antecedent.name, r.consequent.name) for r in strongest_rules(run)] == [
        ("cups", "tea"),
        ("tea", "cups"),
    ]


def test_a_product_bought_after_the_training_leaves_the_stored_list(tea_shop: dict) -> None:
    # given a's stored list holds honey and mug
    customers, products = tea_shop["customers"], tea_shop["products"]
    train_recommendations(triggered_by="test")
    assert sorted(names(recommendations_for(customers["a"]).items)) == ["honey", "mug"]
    # when a buys the honey after the run
    make_order("O-after", customers["a"], [products["honey"]], at(27))
    # then the stored list is served without it
    found = recommendations_for(customers["a"])
    assert found.source == "precomputed"
    assert "honey" not in names(found.items)
    assert "mug" in names(found.items)


def test_a_stored_product_of_a_repeat_purchase_sub_category_stays_after_a_purchase(
    tea_shop: dict,
) -> None:
    # given a's stored list holds honey; every category under "Drinks" is repeat-purchase
    customers, products = tea_shop["customers"], tea_shop["products"]
    train_recommendations(triggered_by="test")
    make_order("O-after", customers["a"], [products["honey"]], at(27))
    # when
    with override_settings(RECOMMEND_REPEAT_PURCHASE_CATEGORIES=["Drinks"]):
        found = recommendations_for(customers["a"])
    # then bought products of the category may come again
    assert "honey" in names(found.items)
    # and a category that only starts with the same letters is not taken for a sub-category
    with override_settings(RECOMMEND_REPEAT_PURCHASE_CATEGORIES=["Drink"]):
        assert "honey" not in names(recommendations_for(customers["a"]).items)
