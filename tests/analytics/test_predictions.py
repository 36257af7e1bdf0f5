"""The predictive models of ``patron analyze`` on the demo store: what is fitted, kept and shown.

The truth is each customer's summary computed here in plain Python from the orders read with
SQL (``store_customers``): repeat purchase days, recency and age in days, mean spend of the
repeat days. The engine's models fitted on that summary must give what the run stored.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import numpy as np
import polars as pl
import pytest
from django.core.management import CommandError, call_command

from patron.analytics.choices import AnalysisRunStatusChoices, PredictiveModelChoices
from patron.analytics.models import CustomerAnalysis, ModelRun
from patron.analytics.prediction_settings import PredictionSettings
from patron.analytics.selectors import churn_reasons, value_at_risk
from patron.analytics.services import AnalysisError, run_analysis
from patron.customers.models import Customer
from patron.demo.generator import DemoWorld
from patron.engine.clv import BetaGeoModel, GammaGammaModel, customer_lifetime_value
from patron.orders.models import Order
from tests.analytics.conftest import AS_OF, store_customers

AS_OF_SOLO = dt.date(2024, 7, 1)

pytestmark = pytest.mark.django_db


def plain_summary(as_of: dt.date, calibration_end: dt.date | None = None) -> pl.DataFrame:
    """BTYD summary in days of every customer, from the SQL truth, in plain Python."""
    split = calibration_end or as_of
    rows = []
    for customer in store_customers(as_of).values():
        spend_by_day: dict[dt.date, Decimal] = {}
        for day, net in zip(customer.order_days, customer.order_nets, strict=True):
            spend_by_day[day] = spend_by_day.get(day, Decimal(0)) + net
        days = sorted(spend_by_day)
        calibration = [day for day in days if day <= split]
        if not calibration:
            continue
        first, last = calibration[0], calibration[-1]
        repeat = calibration[1:]
        holdout = [day for day in days if day > split]
        rows.append(
            {
                "customer_id": customer.external_id,
                "frequency": float(len(repeat)),
                "recency": float((last - first).days),
                "T": float((split - first).days),
                "monetary_value": (
                    float(sum(spend_by_day[day] for day in repeat)) / len(repeat) if repeat else 0.0
                ),
                "frequency_holdout": float(len(holdout)),
            }
        )
    return pl.DataFrame(rows).sort("customer_id")


def stored(run_id: int) -> pl.DataFrame:
    rows = CustomerAnalysis.objects.filter(run_id=run_id).values_list(
        "customer__external_id",
        "clv",
        "p_alive",
        "expected_purchases_90d",
        "churn_probability",
        "next_purchase_earliest",
        "next_purchase_expected_at",
        "next_purchase_latest",
    )
    return pl.DataFrame(
        [(*row[:1], None if row[1] is None else float(row[1]), *row[2:]) for row in rows],
        schema={
            "customer_id": pl.String,
            "clv": pl.Float64,
            "p_alive": pl.Float64,
            "expected_purchases_90d": pl.Float64,
            "churn_probability": pl.Float64,
            "next_purchase_earliest": pl.Date,
            "next_purchase_expected_at": pl.Date,
            "next_purchase_latest": pl.Date,
        },
        orient="row",
    ).sort("customer_id")


def test_the_run_keeps_the_fits_of_the_models_on_the_store_summary(demo_store: DemoWorld) -> None:
    run = run_analysis(as_of=AS_OF)
    summary = plain_summary(AS_OF)
    purchases = BetaGeoModel().fit(summary)
    spend_data = summary.with_columns(
        pl.when(pl.col("monetary_value") > 0).then(pl.col("frequency")).otherwise(0.0)
    )
    spend = GammaGammaModel().fit(spend_data.filter(pl.col("frequency") > 0))

    fits = {model.kind: model for model in ModelRun.objects.filter(analysis=run)}
    assert set(fits) == set(PredictiveModelChoices.values)
    bg = fits[PredictiveModelChoices.BG_NBD]
    assert bg.status == AnalysisRunStatusChoices.SUCCEEDED, bg.error
    assert bg.customers == summary.height
    assert (bg.data_end, bg.calibration_end, bg.time_unit) == (AS_OF, AS_OF, "D")
    for name, value in purchases.params_.items():
        assert bg.parameters[name] == pytest.approx(value, rel=1e-9)
        assert bg.standard_errors[name] == pytest.approx(purchases.params_se_[name], rel=1e-6)
    assert bg.log_likelihood == pytest.approx(purchases.log_likelihood_, rel=1e-12)
    histogram = bg.diagnostics["frequency_histogram"]
    assert sum(row["actual"] for row in histogram) == summary.height
    gg = fits[PredictiveModelChoices.GAMMA_GAMMA]
    assert gg.status == AnalysisRunStatusChoices.SUCCEEDED, gg.error
    for name, value in spend.params_.items():
        assert gg.parameters[name] == pytest.approx(value, rel=1e-9)

    kept = stored(run.pk)
    assert kept["customer_id"].to_list() == summary["customer_id"].to_list()
    np.testing.assert_allclose(kept["p_alive"], purchases.p_alive(summary), rtol=1e-9)
    np.testing.assert_allclose(
        kept["expected_purchases_90d"], purchases.expected_purchases(90.0, summary), rtol=1e-9
    )
    clv = customer_lifetime_value(purchases, spend, spend_data, 12, 0.01, time_unit="D")
    np.testing.assert_allclose(kept["clv"], clv, atol=0.006)
    assert gg.metrics["total_customer_equity"] == pytest.approx(float(clv.sum()), rel=1e-9)
    # The interval brackets its median, and every date lies after the analysis day.
    assert (kept["next_purchase_earliest"] <= kept["next_purchase_expected_at"]).all()
    assert (kept["next_purchase_expected_at"] <= kept["next_purchase_latest"]).all()
    assert (kept["next_purchase_earliest"] > AS_OF).all()


def test_churn_scores_and_reasons_are_kept_for_every_customer(demo_store: DemoWorld) -> None:
    run = run_analysis(as_of=AS_OF)
    churn = ModelRun.objects.get(analysis=run, kind=PredictiveModelChoices.CHURN)
    kept = stored(run.pk)
    assert churn.status == AnalysisRunStatusChoices.SUCCEEDED, churn.error
    assert churn.validated
    assert churn.calibration_end == AS_OF - dt.timedelta(days=90)
    for name in ("roc_auc", "top_decile_lift"):
        assert name in churn.metrics["model"]
    assert kept["churn_probability"].is_not_null().all()
    assert kept["churn_probability"].is_between(0.0, 1.0).all()
    analysis = CustomerAnalysis.objects.filter(run=run).order_by("-churn_probability").first()
    assert analysis is not None
    reasons = churn_reasons(analysis)
    assert reasons, "the riskiest customer has reasons"
    assert all(reason.en and reason.zh for reason in reasons)
    at_risk = value_at_risk(analysis)
    assert analysis.clv is not None
    assert at_risk is not None
    assert at_risk == (analysis.clv * Decimal(str(analysis.churn_probability))).quantize(
        Decimal("0.01")
    )


def test_validation_compares_the_calibration_fit_with_the_holdout(demo_store: DemoWorld) -> None:
    calibration_end = AS_OF - dt.timedelta(days=182)
    out = StringIO()
    call_command(
        "analyze",
        "--as-of",
        AS_OF.isoformat(),
        "--validate",
        "--calibration-end",
        calibration_end.isoformat(),
        stdout=out,
    )
    bg = ModelRun.objects.get(kind=PredictiveModelChoices.BG_NBD)
    assert bg.validated
    validation = bg.metrics["validation"]
    truth = plain_summary(AS_OF, calibration_end)
    assert validation["customers"] == truth.height
    assert validation["holdout_purchases_actual"] == truth["frequency_holdout"].sum()
    model = BetaGeoModel().fit(truth)
    expected = model.expected_purchases(182.0, truth)
    assert validation["holdout_purchases_expected"] == pytest.approx(expected.sum(), rel=1e-9)
    assert validation["mean_absolute_error"] == pytest.approx(
        float(np.mean(np.abs(expected - truth["frequency_holdout"].to_numpy()))), rel=1e-9
    )
    buckets = bg.diagnostics["conditional_expectations"]
    assert sum(row["customers"] for row in buckets) == truth.height
    assert bg.diagnostics["tracking"], "the tracking plot has points"
    assert "holdout purchases" in out.getvalue()


def test_without_models_the_predictions_stay_empty(demo_store: DemoWorld) -> None:
    run = run_analysis(as_of=AS_OF, with_models=False)
    assert not ModelRun.objects.filter(analysis=run).exists()
    kept = stored(run.pk)
    assert kept["clv"].is_null().all()
    assert kept["p_alive"].is_null().all()
    reasons = CustomerAnalysis.objects.values_list("churn_reasons", flat=True)
    assert all(item == [] for item in reasons)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--validate"], "--validate needs --calibration-end"),
        (["--calibration-end", "2025-01-01"], "only with --validate"),
        (["--validate", "--calibration-end", "2025-13-01"], "--calibration-end '2025-13-01'"),
    ],
)
def test_bad_model_options_are_refused_by_name(
    demo_store: DemoWorld, arguments: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("analyze", "--as-of", AS_OF.isoformat(), *arguments, stdout=StringIO())
    assert not ModelRun.objects.exists()


def test_a_calibration_end_after_the_analysis_day_fails_the_run_with_the_reason(
    demo_store: DemoWorld,
) -> None:
    settings = PredictionSettings(validate=True, calibration_end=AS_OF)
    with pytest.raises(AnalysisError, match="calibration end 2025-06-01 must be before"):
        run_analysis(as_of=AS_OF, predictions=settings)
    assert not CustomerAnalysis.objects.exists()


def test_a_degenerate_fit_is_kept_as_failed_and_leaves_the_predictions_empty() -> None:
    # given: one customer, three orders, the last one on the analysis day (with a single
    # customer the BG/NBD likelihood has no proper maximum: its parameters run off and the
    # expected purchases come out as NaN)
    customer = Customer.objects.create(external_id="solo")
    for number, (day, total) in enumerate(
        [(dt.date(2024, 3, 1), "279.50"), (dt.date(2024, 6, 18), "99.90"), (AS_OF_SOLO, "120.00")]
    ):
        Order.objects.create(
            external_id=f"S-{number}",
            customer=customer,
            ordered_at=dt.datetime.combine(day, dt.time(4), tzinfo=dt.UTC),
            status="paid",
            subtotal_amount=Decimal(total),
            total_amount=Decimal(total),
        )
    # when
    run = run_analysis(as_of=AS_OF_SOLO)
    # then
    assert run.status == AnalysisRunStatusChoices.SUCCEEDED
    bg_nbd = ModelRun.objects.get(analysis=run, kind=PredictiveModelChoices.BG_NBD)
    assert bg_nbd.status == AnalysisRunStatusChoices.FAILED
    assert "degenerate" in bg_nbd.error
    row = CustomerAnalysis.objects.get(run=run, customer=customer)
    assert (row.p_alive, row.expected_purchases_90d, row.clv) == (None, None, None)
