"""``run_analysis``: what a run reads from the store, what it keeps per customer, its record."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db.models import Count, Max

from patron.analytics.choices import AnalysisRunStatusChoices
from patron.analytics.models import AnalysisRun, CustomerAnalysis
from patron.analytics.selectors import latest_run
from patron.analytics.services import AnalysisError, run_analysis
from patron.demo.generator import DemoWorld
from patron.engine.lifecycle import LifecycleThresholds
from patron.ingest.services import ImportOptions, RecordKind, import_records
from patron.orders.models import Order
from tests.analytics.conftest import AS_OF, StoreCustomer, store_customers


def _rows(run: AnalysisRun) -> dict[str, CustomerAnalysis]:
    return {
        row.customer.external_id: row
        for row in CustomerAnalysis.objects.filter(run=run).select_related("customer")
    }


def _quintile(values: dict[str, float]) -> dict[str, int]:
    """Spec: ordinal rank ascending by goodness, ties by customer id; floor((rank-1)*5/n)+1."""
    ordered = sorted(values, key=lambda customer: (values[customer], customer))
    n = len(ordered)
    return {customer: (rank * 5) // n + 1 for rank, customer in enumerate(ordered)}


def test_a_run_keeps_each_customers_rfm_equal_to_plain_sql(demo_store: DemoWorld) -> None:
    # given: the customers' counted orders read with plain SQL
    truth = store_customers(AS_OF)

    # when
    run = run_analysis(with_models=False, as_of=AS_OF)

    # then: one row per buying customer, with their recency, tenure, frequency and net spend
    rows = _rows(run)
    assert set(rows) == set(truth)
    for customer_id, expected in truth.items():
        row = rows[customer_id]
        assert row.recency_days == (AS_OF - expected.order_days[-1]).days
        assert row.tenure_days == (AS_OF - expected.order_days[0]).days
        assert row.frequency == len(expected.order_ids)
        assert row.monetary == expected.monetary
        assert row.average_order_value == (expected.monetary / len(expected.order_ids)).quantize(
            Decimal("0.0001")
        )
    # and the scores are the quintiles of the spec, ties broken by customer id
    recency = _quintile({c: -(AS_OF - t.order_days[-1]).days for c, t in truth.items()})
    frequency = _quintile({c: len(t.order_ids) for c, t in truth.items()})
    monetary = _quintile({c: float(t.monetary) for c, t in truth.items()})
    assert {c: (r.r_score, r.f_score, r.m_score) for c, r in rows.items()} == {
        c: (recency[c], frequency[c], monetary[c]) for c in truth
    }


def test_value_classes_compare_r_f_m_with_their_means(demo_store: DemoWorld) -> None:
    # given
    truth = store_customers(AS_OF)
    mean_recency = sum((AS_OF - t.order_days[-1]).days for t in truth.values()) / len(truth)
    mean_frequency = sum(len(t.order_ids) for t in truth.values()) / len(truth)
    mean_monetary = sum(t.monetary for t in truth.values()) / len(truth)

    def value_class(customer: StoreCustomer) -> str:
        recent = (AS_OF - customer.order_days[-1]).days < mean_recency
        frequent = len(customer.order_ids) > mean_frequency
        big = customer.monetary > mean_monetary
        return ("important_" if big else "general_") + {
            (True, True): "value",
            (True, False): "develop",
            (False, True): "retain",
            (False, False): "win_back",
        }[(recent, frequent)]

    # when
    run = run_analysis(with_models=False, as_of=AS_OF)

    # then
    assert {c: row.value_class for c, row in _rows(run).items()} == {
        c: value_class(t) for c, t in truth.items()
    }


def test_given_lifecycle_thresholds_decide_each_stage(demo_store: DemoWorld) -> None:
    # given
    thresholds = LifecycleThresholds(new_days=60, at_risk_days=90, lapsed_days=200)
    truth = store_customers(AS_OF)

    def stage(customer: StoreCustomer) -> str:
        days = customer.order_days
        recency, tenure = (AS_OF - days[-1]).days, (AS_OF - days[0]).days
        previous_gap = (days[-1] - days[-2]).days if len(days) > 1 else None
        if recency > thresholds.lapsed_days:
            return "lapsed"
        if recency > thresholds.at_risk_days:
            return "at_risk"
        if tenure <= thresholds.new_days:
            return "new"
        if previous_gap is not None and previous_gap > thresholds.lapsed_days:
            return "reactivated"
        return "active"

    # when
    run = run_analysis(with_models=False, as_of=AS_OF, thresholds=thresholds)

    # then
    assert {c: row.lifecycle_stage for c, row in _rows(run).items()} == {
        c: stage(t) for c, t in truth.items()
    }
    assert run.parameters["lifecycle_thresholds"] == {
        "new_days": 60,
        "at_risk_days": 90,
        "lapsed_days": 200,
        "derived": False,
    }


def test_value_tiers_cut_the_value_scores_by_rank(demo_store: DemoWorld) -> None:
    # when
    run = run_analysis(with_models=False, as_of=AS_OF)

    # then: best 10 % top, next 20 % high, next 30 % medium, the rest low (ties by id)
    rows = _rows(run)
    ranked = sorted(rows, key=lambda c: (-rows[c].value_score, c))
    n = len(ranked)
    tiers = {row.value_tier for row in rows.values()}
    assert tiers == {"top", "high", "medium", "low"}
    for position, customer in enumerate(ranked):
        share = position / n
        expected = "top" if share < 0.1 else "high" if share < 0.3 else "medium"
        if share >= 0.6:
            expected = "low"
        assert rows[customer].value_tier == expected, (position, customer)
    assert all(0.0 <= row.value_score <= 100.0 for row in rows.values())
    weights = run.parameters["ahp"]["weights"]
    assert math.isclose(sum(weights), 1.0)
    assert run.parameters["ahp"]["consistency_ratio"] < 0.1


def test_the_run_record_says_what_was_read_and_when(demo_store: DemoWorld) -> None:
    # when: no as-of day given
    run = run_analysis(triggered_by="test")

    # then: the run is as of the shop-local day of the latest counted order
    latest = Order.objects.exclude(status="cancelled").aggregate(t=Max("ordered_at"))["t"]
    assert run.as_of == latest.astimezone(ZoneInfo(str(settings.TIME_ZONE))).date()
    everything = store_customers(run.as_of)
    assert (run.customers, run.orders) == (
        len(everything),
        sum(len(t.order_ids) for t in everything.values()),
    )
    assert run.data_through == latest
    assert run.status == AnalysisRunStatusChoices.SUCCEEDED
    assert run.triggered_by == "test"
    assert run.engine == "polars"
    assert run.finished_at is not None
    assert run.finished_at >= run.started_at
    assert run.duration_seconds is not None
    assert run.duration_seconds > 0
    assert run.error == ""
    assert set(run.parameters) == {"lifecycle_thresholds", "ahp", "behaviour", "predictions"}
    assert run.parameters["predictions"] == {
        "horizon_days": 90,
        "clv_months": 12,
        "discount_rate": 0.01,
        "validate": False,
        "calibration_end": None,
    }
    assert run.parameters["lifecycle_thresholds"]["derived"] is True
    k = run.parameters["behaviour"]["k"]
    assert sorted(profile["segment"] for profile in run.results["behaviour_profiles"]) == list(
        range(k)
    )
    assert {"cohorts", "cohorts_by_channel", "kpi_trend", "segments"} <= set(run.results)
    assert len(run.results["kpi_trend"]) == 24
    rfm_sizes = {row["code"]: row["customers"] for row in run.results["segments"]["rfm"]}
    assert sum(rfm_sizes.values()) == run.customers


def test_a_second_run_leaves_the_first_one(demo_store: DemoWorld) -> None:
    # given
    earlier_day = AS_OF - dt.timedelta(days=180)
    first = run_analysis(with_models=False, as_of=earlier_day)

    # when
    second = run_analysis(with_models=False, as_of=AS_OF)

    # then: both runs keep their own rows, each for the customers buying by its as-of day
    counts = dict(CustomerAnalysis.objects.values_list("run").annotate(n=Count("pk")).order_by())
    assert counts == {
        first.pk: len(store_customers(earlier_day)),
        second.pk: len(store_customers(AS_OF)),
    }
    assert counts[first.pk] < counts[second.pk]
    assert latest_run() == second
    assert list(AnalysisRun.objects.all()) == [second, first]


def test_an_inconsistent_ahp_matrix_fails_the_run_and_keeps_the_record(
    demo_store: DemoWorld,
) -> None:
    # given: frequency is preferred to monetary, monetary to recency, and recency to frequency
    matrix = [
        [1.0, 1 / 9, 9.0, 1.0],
        [9.0, 1.0, 1 / 9, 1.0],
        [1 / 9, 9.0, 1.0, 1.0],
        [1.0, 1.0, 1.0, 1.0],
    ]

    # when
    with pytest.raises(AnalysisError, match="consistency ratio") as raised:
        run_analysis(with_models=False, as_of=AS_OF, ahp_matrix=matrix)

    # then: the failed run is recorded with the reason, and nothing of it is half-written
    run = AnalysisRun.objects.get()
    assert run.status == AnalysisRunStatusChoices.FAILED
    assert "consistency ratio" in run.error.lower()
    assert str(run.pk) in str(raised.value)
    assert run.finished_at is not None
    assert CustomerAnalysis.objects.count() == 0
    assert latest_run() is None


def test_an_empty_store_fails_with_what_to_do(db: None) -> None:
    # when
    with pytest.raises(AnalysisError, match="no counted orders") as raised:
        run_analysis(with_models=False)

    # then
    assert "patron import" in str(raised.value)
    run = AnalysisRun.objects.get()
    assert (run.status, run.customers) == (AnalysisRunStatusChoices.FAILED, 0)
    assert "no counted orders" in run.error


def test_an_unknown_engine_is_refused_before_anything_is_recorded(db: None) -> None:
    with pytest.raises(AnalysisError, match="unknown engine 'duckdb'; use one of: polars, spark"):
        run_analysis(with_models=False, engine="duckdb")
    assert AnalysisRun.objects.count() == 0


def test_a_young_shop_with_two_buyers_is_analysed_as_one_behaviour_segment(db: None) -> None:
    # given a store with only two buying customers: too few to cluster
    records = [
        {
            "order_id": "A1",
            "customer_id": "1",
            "ordered_at": "2025-05-01 10:00",
            "line_total": "80",
        },
        {
            "order_id": "A2",
            "customer_id": "1",
            "ordered_at": "2025-05-20 10:00",
            "line_total": "20",
        },
        {
            "order_id": "B1",
            "customer_id": "2",
            "ordered_at": "2025-05-30 10:00",
            "line_total": "50",
        },
    ]
    summary = import_records(RecordKind.ORDERS, records, options=ImportOptions(source="test"))
    assert summary.rejected == 0

    # when it is analysed
    run = run_analysis(with_models=False, as_of=AS_OF)

    # then it succeeds, with everyone in one behaviour segment and the other results per customer
    rows = {row.customer.external_id: row for row in run.customer_rows.select_related("customer")}
    assert run.status == "succeeded"
    assert run.parameters["behaviour"]["k"] == 1
    assert {row.behaviour_segment_name for row in rows.values()} == {"All customers"}
    assert (rows["1"].frequency, rows["1"].monetary, rows["1"].recency_days) == (2, 100, 12)
    assert (rows["2"].frequency, rows["2"].monetary, rows["2"].recency_days) == (1, 50, 2)
