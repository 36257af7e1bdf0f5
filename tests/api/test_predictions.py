"""The predictive-model fields of ``/api/v1/customers/{id}`` and ``/api/v1/analytics/models``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from patron.analytics.choices import PredictiveModelChoices
from patron.analytics.models import AnalysisRun, CustomerAnalysis, ModelRun
from patron.analytics.services import run_analysis
from patron.demo.generator import DemoWorld
from tests.analytics.conftest import AS_OF, analytics_world, demo_store

__all__ = ["analytics_world", "demo_store"]  # fixtures shared with tests/analytics


def get(
    client: Client, url: str, headers: dict[str, str], **params: Any
) -> tuple[int, dict[str, Any]]:
    response = client.get(url, params, headers=headers)
    assert response["Content-Type"] == "application/json; charset=utf-8"
    return response.status_code, response.json()


@pytest.fixture
def analysed(demo_store: DemoWorld) -> AnalysisRun:
    """The demo store analysed as of AS_OF, with the models."""
    return run_analysis(as_of=AS_OF)


def test_customer_detail_carries_clv_and_churn(
    client: Client, bearer: dict[str, str], analysed: AnalysisRun
) -> None:
    row = (
        CustomerAnalysis.objects.filter(run=analysed, churn_probability__isnull=False)
        .select_related("customer")
        .order_by("-churn_probability", "customer_id")
        .first()
    )
    assert row is not None
    assert row.clv is not None
    assert row.churn_probability is not None

    status, body = get(client, f"/api/v1/customers/{row.customer.external_id}", bearer)

    assert status == 200
    assert body["clv"] == {
        "value": str(row.clv.quantize(Decimal("0.01"))),
        "months": 12,
        "currency": "CNY",
        "p_alive": row.p_alive,
        "expected_purchases": row.expected_purchases_90d,
        "horizon_days": 90,
        "next_purchase_expected_at": row.next_purchase_expected_at.isoformat(),
        "next_purchase_earliest": row.next_purchase_earliest.isoformat(),
        "next_purchase_latest": row.next_purchase_latest.isoformat(),
    }
    churn = body["churn"]
    assert churn["probability"] == row.churn_probability
    assert churn["horizon_days"] == 90
    assert Decimal(churn["value_at_risk"]) == (
        row.clv * Decimal(str(row.churn_probability))
    ).quantize(Decimal("0.01"))
    assert [reason["code"] for reason in churn["reasons"]] == [
        reason["code"] for reason in row.churn_reasons
    ]
    assert [reason["text"] for reason in churn["reasons"]] == [
        reason["en"] for reason in row.churn_reasons
    ]
    # The reasons follow the request's language.
    response = client.get(
        f"/api/v1/customers/{row.customer.external_id}",
        headers={**bearer, "Accept-Language": "zh-CN"},
    )
    assert [reason["text"] for reason in response.json()["churn"]["reasons"]] == [
        reason["zh"] for reason in row.churn_reasons
    ]


def test_models_lists_the_fits_of_each_run_with_their_metrics(
    client: Client, bearer: dict[str, str], analysed: AnalysisRun
) -> None:
    status, body = get(client, "/api/v1/analytics/models", bearer, run=analysed.pk)

    assert status == 200
    fits = {fit["kind"]: fit for fit in body["runs"]}
    assert set(fits) == set(PredictiveModelChoices.values)
    stored = ModelRun.objects.get(analysis=analysed, kind=PredictiveModelChoices.BG_NBD)
    bg = fits["bg_nbd"]
    assert bg["id"] == stored.pk
    assert bg["analysis_run"] == analysed.pk
    assert bg["as_of"] == AS_OF.isoformat()
    assert bg["label"] == "BG/NBD purchase model"
    assert bg["status"] == "succeeded"
    assert bg["parameters"] == stored.parameters
    assert bg["standard_errors"] == stored.standard_errors
    assert bg["log_likelihood"] == stored.log_likelihood
    assert bg["time_unit"] == "D"
    churn = fits["churn"]
    assert churn["metrics"]["model"]["roc_auc"] == pytest.approx(
        ModelRun.objects.get(analysis=analysed, kind="churn").metrics["model"]["roc_auc"]
    )

    # A second run comes first in the unfiltered list.
    later = run_analysis(as_of=AS_OF)
    status, body = get(client, "/api/v1/analytics/models", bearer)
    assert status == 200
    assert [fit["analysis_run"] for fit in body["runs"]] == [later.pk] * 3 + [analysed.pk] * 3


def test_models_of_an_unknown_run_is_404(client: Client, bearer: dict[str, str], db: None) -> None:
    status, body = get(client, "/api/v1/analytics/models", bearer, run=999)
    assert status == 404
    assert body["code"] == "not_found"
    status, body = get(client, "/api/v1/analytics/models", bearer)
    assert (status, body) == (200, {"runs": []})
