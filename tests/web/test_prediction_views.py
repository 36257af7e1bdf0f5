"""The CLV, churn and model pages, on the demo shop analysed with its predictive models.

Figures on the pages are checked against plain SQL readings of the store, summed and sorted
in plain Python.
"""

from __future__ import annotations

import csv
import io
import json
import re
import statistics
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patron.analytics.choices import AnalysisRunStatusChoices, PredictiveModelChoices
from patron.analytics.models import AnalysisRun, CustomerAnalysis, ModelRun
from patron.analytics.prediction_settings import PredictionSettings
from patron.analytics.services import run_analysis
from patron.demo.generator import DemoWorld
from patron.ingest.services import ImportOptions, RecordKind, import_frames
from patron.privacy.pii.crypto import decrypt_text
from patron.web.formatting import format_money
from patron.web.prediction_views import parameter_rows

#: The validation fits end here; the holdout runs to the world's last order (2025-05-31).
CALIBRATION_END = date(2025, 1, 31)
CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    """Money to the cent, half up (the shop's rounding)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class PredictedShop:
    """The analytics world in the store, analysed once with validated models."""

    world: DemoWorld
    run: AnalysisRun


def _import(world: DemoWorld) -> None:
    options = ImportOptions(source="test", strict=True)
    for kind, frame in (
        (RecordKind.CUSTOMERS, world.customers),
        (RecordKind.PRODUCTS, world.products),
        (RecordKind.ORDERS, world.orders),
    ):
        assert import_frames(kind, [frame], options=options).rejected == 0


#: Reasons as the churn model words them (the page shows what the run kept).
REASONS = [
    {
        "code": "recency_gap_ratio",
        "value": 20.1,
        "en": "no purchase for 346 days, 20.1× longer than usual",
        "zh": "已 346 天未购买，是平常间隔的 20.1 倍",
    },
    {
        "code": "orders_last_180d",
        "value": 0.0,
        "en": "0 orders in the last 180 days against 2 in the 180 days before",
        "zh": "近 180 天 0 笔订单，之前 180 天 2 笔",
    },
]


@pytest.fixture
def predicted_shop(db: None, analytics_world: DemoWorld) -> PredictedShop:
    """The analytics world analysed with validation (calibration end 2025-01-31); the three
    customers with the most value at risk carry :data:`REASONS`, so that the pages' wording
    does not hang on what the churn model finds in 150 customers."""
    _import(analytics_world)
    settings = PredictionSettings(validate=True, calibration_end=CALIBRATION_END)
    run = run_analysis(triggered_by="test", predictions=settings)
    for row in ranked(read_rows(run))[:3]:
        CustomerAnalysis.objects.filter(run=run, customer__external_id=row.external_id).update(
            churn_reasons=REASONS
        )
    return PredictedShop(world=analytics_world, run=run)


@dataclass(frozen=True)
class Row:
    """One customer's predictions as read with plain SQL."""

    external_id: str
    name: str
    email: str
    phone: str
    clv: Decimal | None
    churn_probability: float | None
    p_alive: float | None
    rfm_segment: str
    reasons: list[dict[str, Any]]


def read_rows(run: AnalysisRun) -> list[Row]:
    """Every customer row of ``run`` with its predictions, by one SQL statement."""
    sql = """
        SELECT c.external_id, c.name, c.email, c.phone, a.clv, a.churn_probability, a.p_alive,
               a.rfm_segment, a.churn_reasons
        FROM analytics_customeranalysis a JOIN customers_customer c ON c.id = a.customer_id
        WHERE a.run_id = %s
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [run.pk])
        fetched = cursor.fetchall()
    rows = []
    for external_id, name, email, phone, clv, probability, p_alive, segment, reasons in fetched:
        rows.append(
            Row(
                external_id=external_id,
                # personal data is stored encrypted (patron.privacy.pii)
                name=decrypt_text(name) if name else name,
                email=decrypt_text(email) if email else email,
                phone=decrypt_text(phone) if phone else phone,
                clv=None if clv is None else Decimal(str(clv)),
                churn_probability=probability,
                p_alive=p_alive,
                rfm_segment=segment,
                reasons=json.loads(reasons) if isinstance(reasons, str) else reasons,
            )
        )
    return rows


def risk_of(row: Row) -> Decimal:
    assert row.clv is not None
    assert row.churn_probability is not None
    return cents(row.clv * Decimal(str(row.churn_probability)))


def ranked(rows: list[Row]) -> list[Row]:
    """Rows with both predictions, by value at risk, highest first."""
    return sorted(
        (row for row in rows if row.clv is not None and row.churn_probability is not None),
        key=lambda row: (-row.clv * Decimal(str(row.churn_probability)), row.external_id),  # type: ignore[operator]
    )


def customers_in(html: str, table: str) -> list[str]:
    """The ``data-customer`` ids of a table, in page order."""
    body = html.split(f'data-table="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-customer="([^"]+)"', body)


# --- CLV -----------------------------------------------------------------------------------


def test_clv_page_shows_equity_mean_median_and_top_customers(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    rows = read_rows(predicted_shop.run)
    values = sorted(row.clv for row in rows if row.clv is not None)
    assert len(values) > 100  # the models were fitted: most customers have a CLV

    response = staff_client.get("/analytics/clv/")

    assert response.status_code == 200
    html = response.content.decode()
    equity = cents(sum(values, Decimal(0)))
    shown_equity = re.search(r'data-kpi="equity">.*?title="([^"]+)"', html, re.S)
    assert shown_equity is not None
    assert shown_equity.group(1) == format_money(equity, "CNY")
    assert format_money(cents(sum(values, Decimal(0)) / len(values)), "CNY") in html
    assert format_money(cents(Decimal(statistics.median(values))), "CNY") in html
    assert f'<div class="kpi-value">{len(values):,}</div>' in html
    top = sorted(
        (row for row in rows if row.clv is not None),
        key=lambda row: (-row.clv, row.external_id),  # type: ignore[operator]
    )[:20]
    assert customers_in(html, "top-clv") == [row.external_id for row in top]
    assert f'href="/customers/{top[0].external_id}/"' in html
    # The settings the CLV was computed with.
    assert "next 12 months, discounted at 1.0% a month" in html


def test_clv_by_segment_sums_to_the_equity(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    rows = read_rows(predicted_shop.run)
    expected: dict[str, Decimal] = {}
    for row in rows:
        expected[row.rfm_segment] = expected.get(row.rfm_segment, Decimal(0)) + (row.clv or 0)

    html = staff_client.get("/analytics/clv/", {"by": "rfm"}).content.decode()

    shown = dict(re.findall(r'<tr data-group="([^"]+)">.*?data-equity="([^"]+)"', html, re.S))
    assert {code: Decimal(value) for code, value in shown.items()} == {
        code: cents(value) for code, value in expected.items()
    }


def test_clv_by_channel_groups_by_the_first_order_channel(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    sql = """
        SELECT c.external_id, o.channel, o.ordered_at, o.id
        FROM orders_order o JOIN customers_customer c ON c.id = o.customer_id
        WHERE o.status <> 'cancelled'
    """
    with connection.cursor() as cursor:
        cursor.execute(sql)
        orders = cursor.fetchall()
    first: dict[str, tuple[str, str, int]] = {}
    for external_id, channel, ordered_at, pk in orders:
        key = (str(ordered_at), pk)
        if external_id not in first or key < first[external_id][1:]:  # type: ignore[operator]
            first[external_id] = (channel, str(ordered_at), pk)
    expected: dict[str, Decimal] = {}
    for row in read_rows(predicted_shop.run):
        channel = first[row.external_id][0]
        expected[channel] = expected.get(channel, Decimal(0)) + (row.clv or 0)

    html = staff_client.get("/analytics/clv/", {"by": "channel"}).content.decode()

    shown = dict(re.findall(r'<tr data-group="([^"]+)">.*?data-equity="([^"]+)"', html, re.S))
    assert {code: Decimal(value) for code, value in shown.items()} == {
        code: cents(value) for code, value in expected.items()
    }
    assert len(shown) > 1
    assert "Channel of the customer's first counted order" in html


def test_clv_histogram_counts_every_customer_with_a_clv(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    values = [row.clv for row in read_rows(predicted_shop.run) if row.clv is not None]

    response = staff_client.get("/analytics/clv/")

    figure = response.context["histogram"]
    assert sum(figure["data"][0]["y"]) == len(values)
    bins = response.context["groups"]
    assert sum(group.customers for group in bins) == len(read_rows(predicted_shop.run))


def test_clv_page_rejects_an_unknown_grouping(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    assert staff_client.get("/analytics/clv/", {"by": "zodiac"}).status_code == 404


# --- churn ---------------------------------------------------------------------------------


def test_churn_page_ranks_customers_by_value_at_risk(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    expected = ranked(read_rows(predicted_shop.run))

    html = staff_client.get("/analytics/churn/").content.decode()
    second = staff_client.get("/analytics/churn/", {"page": 2}).content.decode()

    shown = customers_in(html, "churn-customers") + customers_in(second, "churn-customers")
    assert shown == [row.external_id for row in expected[:50]]
    risks = [Decimal(value) for value in re.findall(r'data-value-at-risk="([^"]+)"', html)]
    assert risks == [risk_of(row) for row in expected[:25]]
    total = sum(
        (row.clv * Decimal(str(row.churn_probability)) for row in expected),  # type: ignore[operator]
        Decimal(0),
    )
    shown_total = re.search(r'data-kpi="value_at_risk">.*?title="([^"]+)"', html, re.S)
    assert shown_total is not None
    assert shown_total.group(1) == format_money(cents(total), "CNY")
    first = expected[0]
    assert first.reasons[0]["en"] in html


def test_churn_filters_by_probability_and_segment(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    rows = ranked(read_rows(predicted_shop.run))
    segment = rows[0].rfm_segment
    expected = [
        row
        for row in rows
        if row.churn_probability is not None
        and row.churn_probability >= 0.5
        and row.rfm_segment == segment
    ]
    assert 0 < len(expected) < len(rows)

    response = staff_client.get(
        "/analytics/churn/", {"min_probability": "50", "segment": f"rfm:{segment}"}
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert customers_in(html, "churn-customers") == [row.external_id for row in expected[:25]]
    assert response.context["totals"].customers == len(expected)
    assert f"min_probability=50&amp;segment=rfm%3A{segment}" in html  # the export keeps them


def test_churn_filter_refuses_a_probability_over_100(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    response = staff_client.get("/analytics/churn/", {"min_probability": "150"})

    assert response.status_code == 400
    assert "alert-error" in response.content.decode()


def test_churn_export_is_the_filtered_list_as_a_csv_with_bom(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    rows = ranked(read_rows(predicted_shop.run))
    expected = [row for row in rows if (row.churn_probability or 0) >= 0.3]

    response = staff_client.get(
        "/analytics/churn/export.csv", {"min_probability": "30", "run": predicted_shop.run.pk}
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    assert response.content.startswith(b"\xef\xbb\xbf")
    records = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert records[0] == [
        "external_id",
        "name",
        "email",
        "phone",
        "churn_probability",
        "clv",
        "value_at_risk",
        "reasons",
    ]
    body = records[1:]
    assert [record[0] for record in body] == [row.external_id for row in expected]
    for record, row in zip(body, expected, strict=True):
        assert record[1:4] == [row.name, row.email, row.phone]
        assert record[4] == f"{row.churn_probability:.4f}"
        assert Decimal(record[5]) == cents(row.clv)  # type: ignore[union-attr]
        assert Decimal(record[6]) == risk_of(row)
        assert record[7] == "; ".join(reason["en"] for reason in row.reasons)


def test_churn_page_and_export_speak_chinese(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    first = ranked(read_rows(predicted_shop.run))[0]
    assert first.reasons
    assert first.reasons[0]["zh"] != first.reasons[0]["en"]

    html = staff_client.get("/analytics/churn/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    exported = staff_client.get(
        "/analytics/churn/export.csv", HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode("utf-8-sig")

    assert first.reasons[0]["zh"] in html
    assert first.reasons[0]["en"] not in html
    assert "流失风险" in html
    second_line = exported.splitlines()[1]
    assert "; ".join(reason["zh"] for reason in first.reasons) in second_line


def test_churn_page_shows_the_model_metrics_next_to_the_baselines(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    churn = ModelRun.objects.get(analysis=predicted_shop.run, kind=PredictiveModelChoices.CHURN)
    metrics = churn.metrics

    html = staff_client.get("/analytics/churn/").content.decode()

    table = html.split('data-table="churn-scores"', 1)[1].split("</table>", 1)[0]
    for score, key in (
        ("model", "model"),
        ("bgnbd_expected_purchases", "bgnbd" if "bgnbd" in metrics else "bgnbd_expected_purchases"),
        ("one_minus_p_alive", "one_minus_p_alive"),
    ):
        row = table.split(f'data-score="{score}"', 1)[1].split("</tr>", 1)[0]
        for name in ("roc_auc", "pr_auc", "brier", "top_decile_lift"):
            assert (
                f"{Decimal(str(metrics[key][name])).quantize(Decimal('0.001'), 'ROUND_HALF_UP')}"
                in row
            )


# --- models --------------------------------------------------------------------------------


def test_model_list_shows_every_model_run_newest_first(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    later = run_analysis(triggered_by="test")

    html = staff_client.get("/analytics/models/").content.decode()

    shown = [int(pk) for pk in re.findall(r'<tr data-model-run="(\d+)"', html)]
    later_ids = sorted(ModelRun.objects.filter(analysis=later).values_list("pk", flat=True))
    earlier_ids = sorted(
        ModelRun.objects.filter(analysis=predicted_shop.run).values_list("pk", flat=True)
    )
    assert shown == later_ids + earlier_ids
    assert "BG/NBD purchase model" in html
    assert "Gamma-Gamma spend model" in html


def test_bgnbd_model_page_shows_parameters_and_fit_plots(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    model = ModelRun.objects.get(analysis=predicted_shop.run, kind=PredictiveModelChoices.BG_NBD)

    response = staff_client.get(f"/analytics/models/{model.pk}/")

    assert response.status_code == 200
    html = response.content.decode()
    for name, value in model.parameters.items():
        assert f'<tr data-parameter="{name}">' in html
        error = Decimal(str(model.standard_errors[name]))
        assert f"{error.quantize(Decimal('0.0001'), ROUND_HALF_UP):,}" in html
        assert f'data-value="{value}"' in html
    histogram = response.context["frequency_figure"]["data"]
    rows = model.diagnostics["frequency_histogram"]
    assert histogram[0]["y"] == [row["actual"] for row in rows]
    assert histogram[1]["y"] == [row["expected"] for row in rows]
    tracking = response.context["tracking_figure"]
    assert tracking["data"][0]["y"][-1] == model.diagnostics["tracking"][-1]["actual_cumulative"]
    last_fitted = [row for row in model.diagnostics["tracking"] if not row["is_holdout"]][-1]
    assert tracking["layout"]["shapes"][0]["x0"] == last_fitted["period_end"]
    conditional = response.context["conditional_figure"]["data"]
    assert conditional[0]["y"] == [
        row["actual_mean"] for row in model.diagnostics["conditional_expectations"]
    ]
    assert "Holdout validation" in html
    assert 'data-metric="holdout_purchases_actual"' in html


def test_churn_model_page_compares_with_the_baselines(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    model = ModelRun.objects.get(analysis=predicted_shop.run, kind=PredictiveModelChoices.CHURN)

    response = staff_client.get(f"/analytics/models/{model.pk}/", HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-table="churn-scores"' in html
    assert "流失模型" in html
    figure = response.context["scores_figure"]["data"]
    assert figure[0]["y"][0] == model.metrics["model"]["roc_auc"]


def test_model_page_of_an_unknown_run_is_404(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    assert staff_client.get("/analytics/models/999999/").status_code == 404


# --- empty states ---------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["/analytics/clv/", "/analytics/churn/"])
def test_pages_before_any_analysis_say_what_to_run(staff_client: Client, address: str) -> None:
    html = staff_client.get(address).content.decode()

    assert 'data-empty="no-analysis"' in html
    assert "patron analyze" in html


def test_model_list_before_any_model(staff_client: Client) -> None:
    html = staff_client.get("/analytics/models/").content.decode()

    assert 'data-empty="no-models"' in html


@pytest.fixture
def shop_without_models(db: None, analytics_world: DemoWorld) -> AnalysisRun:
    """The analytics world analysed without the predictive models."""
    _import(analytics_world)
    return run_analysis(triggered_by="test", with_models=False)


@pytest.mark.parametrize("address", ["/analytics/clv/", "/analytics/churn/"])
def test_pages_of_a_run_without_models_say_to_analyse_again(
    staff_client: Client, shop_without_models: AnalysisRun, address: str
) -> None:
    html = staff_client.get(address).content.decode()

    assert 'data-empty="no-predictions"' in html
    assert "ran without the predictive models" in html


@pytest.mark.parametrize("address", ["/analytics/clv/", "/analytics/churn/"])
def test_pages_of_a_failed_model_show_its_error(
    staff_client: Client, shop_without_models: AnalysisRun, address: str
) -> None:
    ModelRun.objects.create(
        analysis=shop_without_models,
        kind=PredictiveModelChoices.BG_NBD,
        status=AnalysisRunStatusChoices.FAILED,
        calibration_end=shop_without_models.as_of,
        data_end=shop_without_models.as_of,
        error="the likelihood did not converge",
    )

    html = staff_client.get(address).content.decode()

    assert 'data-empty="no-predictions"' in html
    assert "BG/NBD purchase model" in html
    assert "the likelihood did not converge" in html


# --- customer page ----------------------------------------------------------------------------


def test_customer_page_shows_clv_risk_and_reasons_in_the_page_language(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    row = ranked(read_rows(predicted_shop.run))[0]

    english = staff_client.get(f"/customers/{row.external_id}/").content.decode()
    chinese = staff_client.get(
        f"/customers/{row.external_id}/", HTTP_ACCEPT_LANGUAGE="zh-hans"
    ).content.decode()

    assert row.clv is not None
    assert f'<div class="score-value">{format_money(row.clv, "CNY")}</div>' in english
    assert row.reasons[0]["en"] in english
    assert row.reasons[0]["zh"] in chinese
    assert row.reasons[0]["en"] not in chinese
    assert 'data-field="next_purchase"' in english
    assert 'data-score="p_alive"' in english


# --- permissions and queries ------------------------------------------------------------------

ADDRESSES = [
    "/analytics/clv/",
    "/analytics/churn/",
    "/analytics/churn/export.csv",
    "/analytics/models/",
    "/analytics/models/1/",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_anonymous_visitors_are_sent_to_log_in(db: None, address: str) -> None:
    response = Client().get(address)

    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("address", ADDRESSES)
def test_users_who_are_not_staff_are_refused(db: None, address: str) -> None:
    client = Client()
    client.force_login(User.objects.create_user("visitor", password="x"))

    assert client.get(address).status_code == 403


def _queries(client: Client, address: str, params: dict[str, str] | None = None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(address, params or {})
    assert response.status_code == 200
    return len(queries)


def test_churn_page_reads_as_many_queries_for_25_rows_as_for_the_last_few(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    """No query per customer: a full page costs what the short last page costs."""
    listed = len(ranked(read_rows(predicted_shop.run)))
    last_page = (listed + 24) // 25
    assert listed % 25 != 0  # the last page is short

    full = _queries(staff_client, "/analytics/churn/")
    short = _queries(staff_client, "/analytics/churn/", {"page": str(last_page)})

    assert full == short
    assert full <= 12
    assert _queries(staff_client, "/analytics/clv/") <= 14


def test_model_list_reads_as_many_queries_for_six_runs_as_for_three(
    staff_client: Client, predicted_shop: PredictedShop
) -> None:
    three = _queries(staff_client, "/analytics/models/")
    run_analysis(triggered_by="test")

    six = _queries(staff_client, "/analytics/models/")

    assert ModelRun.objects.count() == 6
    assert six == three


def test_parameter_intervals_are_taken_on_the_log_scale_and_stay_positive() -> None:
    # given a loosely determined positive parameter (SE close to its value) and a setting
    model_run = ModelRun(
        parameters={"b": 0.5, "r": 2.0, "horizon_days": 90},
        standard_errors={"b": 0.4, "r": 0.1},
    )
    # when
    rows = {row["name"]: row for row in parameter_rows(model_run)}
    # then each interval is value * exp(+-1.96 SE / value): positive, and close to +-1.96 SE
    # where the SE is small
    low, high = rows["b"]["interval"]
    assert low == pytest.approx(0.5 / 4.797, rel=1e-3)
    assert high == pytest.approx(0.5 * 4.797, rel=1e-3)
    low, high = rows["r"]["interval"]
    assert (low, high) == (pytest.approx(1.8133, rel=1e-3), pytest.approx(2.2059, rel=1e-3))
    assert rows["horizon_days"]["interval"] is None
