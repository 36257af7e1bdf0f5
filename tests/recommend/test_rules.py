"""The repeat-purchase rule that training and serving share."""

from __future__ import annotations

import pytest
from django.test import override_settings

from patron.recommend.rules import repeat_purchase_products


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        ((), set()),
        (("Drinks > Tea",), {"tea"}),
        (("Drinks",), {"tea", "cups", "pot", "honey", "coffee", "mug"}),
        (("Drink",), set()),
    ],
)
def test_a_path_covers_its_category_and_sub_categories_only(
    tea_shop: dict, paths: tuple[str, ...], expected: set[str]
) -> None:
    # given tea in "Drinks > Tea", the other products in "Drinks"
    products = tea_shop["products"]
    # when
    found = repeat_purchase_products(paths)
    # then
    assert found == {products[name].pk for name in expected}


@override_settings(RECOMMEND_REPEAT_PURCHASE_CATEGORIES=["Drinks > Tea"])
def test_the_setting_is_the_default(tea_shop: dict) -> None:
    # when / then
    assert repeat_purchase_products() == {tea_shop["products"]["tea"].pk}
