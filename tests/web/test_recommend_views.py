"""The recommendations on the customer page and the evaluation page."""

from __future__ import annotations

import html as html_module
import re
from typing import Any

from django.test import Client

from patron.recommend.models import TrainingRun
from patron.recommend.services import train_recommendations
from tests.recommend.conftest import tea_shop  # noqa: F401  (the shop these pages show)


def _rows(html: str, table: str) -> list[list[str]]:
    """The text of each cell of each body row of ``data-table=table``."""
    body = html.split(f'data-table="{table}"', 1)[1].split("<tbody>", 1)[1].split("</tbody>")[0]
    return [
        [
            html_module.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def test_customer_page_lists_recommendations_with_reasons(
    staff_client: Client,
    tea_shop: dict,  # noqa: F811
) -> None:
    # given
    train_recommendations(triggered_by="test")
    # when
    english = staff_client.get("/customers/C-newcomer/").content.decode()
    chinese = staff_client.get(
        "/customers/C-newcomer/", HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()
    # then the newcomer gets the shop's most popular products, the reason worded
    assert [row[1:] for row in _rows(english, "recommendations")][:2] == [
        ["tea P-tea", "Drinks > Tea", "Popular right now"],
        ["cups P-cups", "Drinks", "Popular right now"],
    ]
    assert _rows(chinese, "recommendations")[0][3] == "当前热销"
    assert '<h2 class="card-title">为该客户推荐</h2>' in chinese


def test_customer_page_before_any_training_says_how_to_get_recommendations(
    staff_client: Client,
    tea_shop: dict,  # noqa: F811
) -> None:
    # when
    html = staff_client.get("/customers/C-a/").content.decode()
    # then
    assert 'data-empty="no-training"' in html
    assert "patron recommend train" in html


def test_recommendations_page_shows_the_report_and_the_rules(
    staff_client: Client,
    tea_shop: dict,  # noqa: F811
) -> None:
    # given a run whose report has two recommenders
    run = train_recommendations(triggered_by="test")
    run.report = [
        {
            "recommender": "popularity",
            "customers": 40,
            "precision": 0.05,
            "recall": 0.1,
            "ndcg": 0.04,
            "map": 0.02,
            "coverage": 0.1,
            "diversity": 0.7,
            "fit_seconds": 0.0,
            "recommend_seconds": 0.0,
        },
        {
            "recommender": "hybrid",
            "customers": 40,
            "precision": 0.1,
            "recall": 0.2,
            "ndcg": 0.12,
            "map": 0.06,
            "coverage": 0.25,
            "diversity": 0.8,
            "fit_seconds": 1.5,
            "recommend_seconds": 0.1,
        },
    ]
    run.evaluation = {**run.evaluation, "test_days": 30}
    run.save()
    # when
    html = staff_client.get("/analytics/recommendations/").content.decode()
    # then
    assert _rows(html, "report") == [
        [
            "Popularity (baseline)",
            "0.0500",
            "0.1000",
            "0.0400",
            "0.0200",
            "10.0%",
            "0.700",
            "1.00×",
            "0.00",
        ],
        [
            "Hybrid served",
            "0.1000",
            "0.2000",
            "0.1200",
            "0.0600",
            "25.0%",
            "0.800",
            "3.00×",
            "1.50",
        ],
    ]
    assert _rows(html, "rules") == [
        ["cups", "tea", "5", "50.0%", "100.0%", "1.67"],
        ["tea", "cups", "5", "50.0%", "83.3%", "1.67"],
    ]


def test_recommendations_page_before_any_training(staff_client: Client, db: None) -> None:
    # when
    html = staff_client.get("/analytics/recommendations/").content.decode()
    # then
    assert 'data-empty="no-training"' in html
    assert TrainingRun.objects.count() == 0


def test_customer_page_queries_with_a_precomputed_list(
    staff_client: Client,
    tea_shop: dict,  # noqa: F811
    django_assert_num_queries: Any,
) -> None:
    # given
    train_recommendations(triggered_by="test")
    # when / then: the page's fourteen (with the consent panel's two and the data subject
    # requests panel's one); for the list: the customer's personalisation consent, the
    # stored list with the serving run and the serving rules, its products with their
    # categories; the list is short (two products), so it is completed: the history's lines
    # and events, the excluded products (purchases and dismissals in one), their stored
    # neighbours, the customer's segment, the popular products; the user's roles and the
    # audit event of the unmasked read
    with django_assert_num_queries(25):
        assert staff_client.get("/customers/C-a/").status_code == 200
