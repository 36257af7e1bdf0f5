"""The reads behind the CLV, churn and model pages, checked against plain SQL and Python."""

from __future__ import annotations

import itertools
import statistics
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection

from patron.analytics.choices import AnalysisRunStatusChoices, PredictiveModelChoices
from patron.analytics.models import AnalysisRun, ModelRun
from patron.analytics.prediction_selectors import (
    churn_metric,
    churn_ranking,
    churn_totals,
    clv_bin_width,
    clv_by_group,
    clv_histogram,
    clv_overview,
    failed_models,
    model_run_list,
    top_clv_customers,
)
from patron.analytics.services import run_analysis
from patron.demo.generator import DemoWorld
from tests.analytics.conftest import AS_OF, store_customers

CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@pytest.fixture
def analysed(demo_store: DemoWorld) -> AnalysisRun:
    """The demo store analysed as of its last day, with the predictive models."""
    return run_analysis(as_of=AS_OF, triggered_by="test")


def predictions(run: AnalysisRun) -> dict[str, tuple[Decimal | None, float | None, str, str]]:
    """external id -> (clv, churn probability, RFM segment, value tier), by plain SQL."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.external_id, a.clv, a.churn_probability, a.rfm_segment, a.value_tier "
            "FROM analytics_customeranalysis a JOIN customers_customer c ON c.id = a.customer_id "
            "WHERE a.run_id = %s",
            [run.pk],
        )
        return {
            external_id: (None if clv is None else Decimal(str(clv)), probability, rfm, tier)
            for external_id, clv, probability, rfm, tier in cursor.fetchall()
        }


def test_clv_overview_is_the_sum_mean_and_median_of_the_customers_clv(
    analysed: AnalysisRun,
) -> None:
    rows = predictions(analysed)
    values = [clv for clv, *_rest in rows.values() if clv is not None]
    assert len(values) > 50

    overview = clv_overview(analysed)

    assert overview.customers == len(rows)
    assert overview.with_clv == len(values)
    assert overview.equity == cents(sum(values, Decimal(0)))
    assert overview.mean == cents(sum(values, Decimal(0)) / len(values))
    assert overview.median == cents(Decimal(statistics.median(values)))


def test_clv_histogram_puts_every_customer_in_its_bin(analysed: AnalysisRun) -> None:
    values = sorted(clv for clv, *_rest in predictions(analysed).values() if clv is not None)

    bins = clv_histogram(analysed, bins=10)

    assert sum(clv_bin.customers for clv_bin in bins) == len(values)
    for clv_bin in bins:
        inside = [
            value
            for value in values
            if value >= clv_bin.low and (clv_bin.high is None or value < clv_bin.high)
        ]
        assert clv_bin.customers == len(inside)
    # The regular bins reach the 99th percentile; the open last one holds the tail above.
    assert bins[-1].high is None
    assert bins[-1].low >= values[int(0.99 * len(values))]
    assert all(a.high == b.low for a, b in itertools.pairwise(bins))


def test_clv_histogram_of_a_run_without_clv_is_empty(demo_store: DemoWorld) -> None:
    run = run_analysis(as_of=AS_OF, triggered_by="test", with_models=False)

    assert clv_histogram(run) == []
    assert clv_overview(run).median is None


@pytest.mark.parametrize(
    ("top", "bins", "width"),
    [(Decimal("2874.31"), 20, Decimal("150")), (Decimal("9.99"), 10, Decimal("1.0"))],
)
def test_clv_bin_width_is_a_round_amount_reaching_the_top(
    top: Decimal, bins: int, width: Decimal
) -> None:
    assert clv_bin_width(top, bins) == width
    assert clv_bin_width(top, bins) * bins >= top


@pytest.mark.parametrize("by", ["rfm", "value_tier"])
def test_clv_by_segment_sums_each_segments_clv(analysed: AnalysisRun, by: str) -> None:
    expected: dict[str, list[Decimal]] = {}
    for clv, _probability, rfm, tier in predictions(analysed).values():
        expected.setdefault(rfm if by == "rfm" else tier, []).append(clv or Decimal(0))

    groups = clv_by_group(analysed, by)

    assert {group.code: group.equity for group in groups} == {
        code: cents(sum(values, Decimal(0))) for code, values in expected.items()
    }
    assert {group.code: group.customers for group in groups} == {
        code: len(values) for code, values in expected.items()
    }
    assert sum(group.equity_share for group in groups) == pytest.approx(1.0)


def test_clv_by_channel_groups_by_the_first_counted_orders_channel(
    analysed: AnalysisRun,
) -> None:
    store = store_customers(AS_OF)
    expected: dict[str, Decimal] = {}
    for external_id, (clv, *_rest) in predictions(analysed).items():
        channel = store[external_id].first_channel
        expected[channel] = expected.get(channel, Decimal(0)) + (clv or Decimal(0))

    groups = clv_by_group(analysed, "channel")

    assert {group.code: group.equity for group in groups} == {
        code: cents(value) for code, value in expected.items()
    }
    equities = [group.equity for group in groups]
    assert equities == sorted(equities, reverse=True)


def test_top_clv_customers_are_the_highest_clv_first(analysed: AnalysisRun) -> None:
    rows = predictions(analysed)
    expected = sorted(
        ((clv, external_id) for external_id, (clv, *_rest) in rows.items() if clv is not None),
        key=lambda item: (-item[0], item[1]),
    )[:5]

    top = top_clv_customers(analysed, 5)

    assert [row.customer.external_id for row in top] == [item[1] for item in expected]


def test_churn_ranking_orders_by_value_at_risk(analysed: AnalysisRun) -> None:
    rows = predictions(analysed)
    risks = {
        external_id: clv * Decimal(str(probability))
        for external_id, (clv, probability, *_rest) in rows.items()
        if clv is not None and probability is not None
    }
    expected = sorted(risks, key=lambda external_id: (-risks[external_id], external_id))

    ranking = churn_ranking(analysed)

    assert [row.customer.external_id for row in ranking] == expected
    totals = churn_totals(ranking)
    assert totals.customers == len(expected)
    assert totals.value_at_risk == cents(sum(risks.values(), Decimal(0)))


def test_churn_ranking_filters_by_probability_and_segment(analysed: AnalysisRun) -> None:
    rows = predictions(analysed)
    segment = next(iter(rows.values()))[2]
    expected = {
        external_id
        for external_id, (clv, probability, rfm, _tier) in rows.items()
        if clv is not None and probability is not None and probability >= 0.6 and rfm == segment
    }

    ranking = churn_ranking(analysed, min_probability=0.6, segment_by="rfm", segment=segment)

    assert {row.customer.external_id for row in ranking} == expected


def test_churn_metric_reads_the_bgnbd_baseline_under_either_key() -> None:
    scores = {"roc_auc": 0.8}

    assert churn_metric({"bgnbd": scores}, "bgnbd_expected_purchases") == scores
    assert churn_metric({"bgnbd_expected_purchases": scores}, "bgnbd_expected_purchases") == scores
    assert churn_metric({}, "model") == {}


def test_model_runs_newest_analysis_first_and_failed_ones(analysed: AnalysisRun) -> None:
    later = run_analysis(as_of=AS_OF, triggered_by="test", with_models=False)
    failed = ModelRun.objects.create(
        analysis=later,
        kind=PredictiveModelChoices.BG_NBD,
        status=AnalysisRunStatusChoices.FAILED,
        calibration_end=date(2025, 6, 1),
        data_end=date(2025, 6, 1),
        error="did not converge",
    )

    listed = model_run_list()

    assert listed[0] == failed
    assert [model.analysis_id for model in listed[1:]] == [analysed.pk] * (len(listed) - 1)
    assert failed_models(later) == [failed]
    assert failed_models(analysed) == []
