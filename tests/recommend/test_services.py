"""Training runs: what they read, store and report; feedback."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from django.db import connection

from patron.demo.generator import DemoWorld
from patron.engine.recommend import build_interactions
from patron.orders.frames import purchase_lines_frame
from patron.orders.models import Refund, RefundLine
from patron.recommend.config import TrainingSettings
from patron.recommend.models import (
    BasketRule,
    PopularProduct,
    Recommendation,
    SimilarProduct,
    TrainingRun,
)
from patron.recommend.services import (
    RecommendError,
    diversify,
    record_feedback,
    train_recommendations,
)
from tests.recommend.conftest import at, make_order


def test_training_on_the_demo_shop_stores_report_lists_neighbours_and_rules(
    demo_shop: DemoWorld,
) -> None:
    # given the demo shop of 300 customers
    # when
    run = train_recommendations(triggered_by="test")
    # then
    assert run.status == "succeeded"
    names = [row["recommender"] for row in run.report]
    assert names == ["popularity", "als_default", "trending", "item_knn", "ease", "hybrid"]
    assert run.recommended_customers == Recommendation.objects.values("customer").distinct().count()
    assert SimilarProduct.objects.filter(run=run).exists()
    assert PopularProduct.objects.filter(run=run, segment="").exists()
    assert {row["customers"] for row in run.report} == {run.evaluation["evaluated_customers"]}
    assert run.parameters["hybrid_weights"].keys() == {"als", "item_knn", "ease", "trending"}


def test_basket_rules_pair_products_bought_in_the_same_orders(tea_shop: dict) -> None:
    # given ten orders, five of them with tea and cups together, six with tea
    # when
    run = train_recommendations(triggered_by="test")
    # then only tea-cups reaches three orders: tea -> cups (5/6) and cups -> tea (5/5)
    rules = {
        (rule.antecedent.name, rule.consequent.name): (
            rule.baskets,
            round(rule.support, 4),
            round(rule.confidence, 4),
            round(rule.lift, 4),
        )
        for rule in BasketRule.objects.filter(run=run).select_related("antecedent", "consequent")
    }
    assert rules == {
        ("tea", "cups"): (5, 0.5, 0.8333, 1.6667),
        ("cups", "tea"): (5, 0.5, 1.0, 1.6667),
    }
    assert run.rules == 2
    assert run.parameters["baskets"] == {"orders": 10, "min_support": 0.3}


def test_training_reads_only_purchases_views_and_carts_of_counted_orders(
    tea_shop: dict,
) -> None:
    # given a cancelled order and a returned one of the newcomer
    products, customers = tea_shop["products"], tea_shop["customers"]
    make_order("O-x", customers["newcomer"], [products["mug"]], at(2), status="cancelled")
    make_order("O-y", customers["newcomer"], [products["honey"]], at(2), status="returned")
    # when
    run = train_recommendations(triggered_by="test")
    # then the newcomer is not among the trained customers: 6 buyers and the viewer
    assert run.customers == 7
    assert run.products == 6


def test_refunded_lines_do_not_count_as_purchases(tea_shop: dict) -> None:
    # given the newcomer's order of mug and honey, the honey line refunded
    products, customers = tea_shop["products"], tea_shop["customers"]
    order = make_order("O-z", customers["newcomer"], [products["mug"], products["honey"]], at(3))
    refund = Refund.objects.create(
        external_id="R-1", order=order, amount=10, refunded_at=at(4), kind="refund"
    )
    RefundLine.objects.create(
        refund=refund, order_line=order.lines.get(line_number=2), quantity=1, amount=10
    )
    # when
    train_recommendations(triggered_by="test")
    # then the mug is a purchase of the newcomer's and the honey is not
    bought = purchase_lines_frame().filter(customer_id=customers["newcomer"].pk)
    assert bought["product_id"].to_list() == [products["mug"].pk]


def test_a_run_without_purchases_is_kept_as_failed_with_its_reason(db: None) -> None:
    # given an empty store
    # when
    with pytest.raises(RecommendError) as raised:
        train_recommendations(triggered_by="test")
    # then
    run = TrainingRun.objects.get()
    assert run.status == "failed"
    assert run.error.startswith("the store holds no orders or events yet")
    assert str(raised.value) == f"recommendation training #{run.pk} failed: {run.error}"


def test_refused_settings_fail_the_run_naming_the_setting(tea_shop: dict) -> None:
    # when
    with pytest.raises(RecommendError):
        train_recommendations(training=TrainingSettings(diversity=2.0))
    # then
    assert TrainingRun.objects.get().error == "diversity must be between 0 and 1, got 2.0"


def test_a_newer_run_replaces_the_served_rows_and_keeps_the_older_record(tea_shop: dict) -> None:
    # given
    first = train_recommendations(triggered_by="test")
    # when
    second = train_recommendations(triggered_by="test")
    # then
    assert list(TrainingRun.objects.order_by("pk").values_list("pk", "status")) == [
        (first.pk, "succeeded"),
        (second.pk, "succeeded"),
    ]
    assert set(Recommendation.objects.values_list("run", flat=True)) == {second.pk}
    assert set(BasketRule.objects.values_list("run", flat=True)) == {second.pk}


def test_feedback_is_recorded_once_per_event_id(tea_shop: dict) -> None:
    # given
    customer, product = tea_shop["customers"]["a"], tea_shop["products"]["honey"]
    # when
    first, created = record_feedback("fb-1", customer, product, "clicked", at(26))
    again, created_again = record_feedback("fb-1", customer, product, "dismissed", at(27))
    # then
    assert (created, created_again) == (True, False)
    assert again.pk == first.pk
    assert again.kind == "clicked"


def test_a_purchase_reported_as_feedback_counts_in_the_next_training(tea_shop: dict) -> None:
    # given the newcomer bought the mug through a recommendation (no order in the store)
    customers, products = tea_shop["customers"], tea_shop["products"]
    record_feedback("fb-2", customers["newcomer"], products["mug"], "purchased", at(20))
    # when
    run = train_recommendations(triggered_by="test")
    # then the newcomer is trained on, and gets no mug again
    assert run.customers == 8
    assert not Recommendation.objects.filter(
        customer=customers["newcomer"], product=products["mug"]
    ).exists()


def test_diversify_prefers_a_product_other_customers_have_over_a_near_duplicate() -> None:
    # given tea and cups bought by the same customers, honey by others
    events = pl.DataFrame(
        {
            "customer_id": [1, 1, 2, 2, 3],
            "product_id": ["tea", "cups", "tea", "cups", "honey"],
            "occurred_at": [dt.datetime(2025, 6, 1)] * 5,
        }
    )
    interactions = build_interactions(events)
    table = pl.DataFrame(
        {
            "customer_id": [9, 9, 9],
            "rank": [1, 2, 3],
            "product_id": ["tea", "cups", "honey"],
            "score": [1.0, 0.9, 0.5],
            "reason": ["popular"] * 3,
        }
    )
    # when
    by_score = diversify(table, interactions, 2, 0.0)
    diverse = diversify(table, interactions, 2, 0.5)
    # then
    assert by_score["product_id"].to_list() == ["tea", "cups"]
    assert diverse.select("rank", "product_id").rows() == [(1, "tea"), (2, "honey")]


def test_the_served_tables_get_fresh_planner_statistics_on_postgresql(tea_shop: dict) -> None:
    # given PostgreSQL (SQLite has no statistics to refresh)
    if connection.vendor != "postgresql":
        pytest.skip("planner statistics are refreshed on PostgreSQL only")
    # when
    train_recommendations(triggered_by="test")
    # then the planner counts the neighbours just written, not the empty table it last saw
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'recommend_similarproduct'")
        (estimate,) = cursor.fetchone()
        # and the catalogue that every served list joins
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = 'catalog_product'")
        (products,) = cursor.fetchone()
    assert estimate == SimilarProduct.objects.count() > 0
    assert products == len(tea_shop["products"])


def test_every_customer_with_a_history_gets_a_stored_list(tea_shop: dict) -> None:
    # given buyers a..f (orders of 2 to 21 June), the viewer (a view on 25 June) and the
    # newcomer, who has done nothing
    customers = tea_shop["customers"]
    # when
    run = train_recommendations(dt.date(2025, 6, 30), triggered_by="test")
    # then everyone but the newcomer has a list: serving computes none for them
    stored = set(Recommendation.objects.filter(run=run).values_list("customer_id", flat=True))
    assert stored == {customers[name].pk for name in ("a", "b", "c", "d", "e", "f", "viewer")}
    assert run.recommended_customers == 7


def test_active_days_limits_the_stored_lists_to_recent_customers(tea_shop: dict) -> None:
    # given only the viewer did something in the last week of June
    customers = tea_shop["customers"]
    # when
    run = train_recommendations(
        dt.date(2025, 6, 30), TrainingSettings(active_days=7, evaluate=False), triggered_by="test"
    )
    # then
    stored = set(Recommendation.objects.filter(run=run).values_list("customer_id", flat=True))
    assert stored == {customers["viewer"].pk}
