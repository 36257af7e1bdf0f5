"""The dashboard's predictive pages: customer lifetime value, churn risk and the model runs.

They show what ``patron analyze`` fitted (``patron.analytics.prediction_selectors``); each view
reads the request, calls selectors and renders. Figures come from
:mod:`patron.web.prediction_charts`.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from patron.analytics.choices import (
    AnalysisRunStatusChoices,
    PredictiveModelChoices,
    SegmentationChoices,
)
from patron.analytics.models import AnalysisRun, CustomerAnalysis, ModelRun
from patron.analytics.prediction_selectors import (
    CHURN_METRICS,
    CHURN_SCORES,
    CLV_GROUPINGS,
    churn_metric,
    churn_ranking,
    churn_totals,
    clv_by_group,
    clv_histogram,
    clv_overview,
    failed_models,
    get_model_run,
    model_run_list,
    run_model,
    top_clv_customers,
)
from patron.analytics.selectors import churn_reasons, prediction_settings, value_at_risk
from patron.core.money import default_currency
from patron.core.roles import PageAreaChoices
from patron.privacy.access import csv_for
from patron.web import prediction_charts as charts
from patron.web.analytics_views import _run_or_404
from patron.web.formatting import format_count, format_number, format_percent
from patron.web.prediction_forms import ChurnFilterForm
from patron.web.views import CUSTOMERS_PER_PAGE, area_required

#: Customers in the CLV page's top list.
TOP_CUSTOMERS = 20
#: Model runs listed on the models page, newest first.
MODEL_RUNS_SHOWN = 100


def _grouping_label(by: str) -> str:
    if by == "channel":
        return _("First-order channel")
    return str(SegmentationChoices(by).label)


def _models_context(run: AnalysisRun) -> dict[str, Any]:
    """What the empty states need: the models that failed (with their errors), and whether the
    run fitted any model at all (runs from before the predictive models did not)."""
    return {
        "failed_models": failed_models(run),
        "has_models": run.model_runs.exists(),
    }


# --- CLV -----------------------------------------------------------------------------------


@area_required(PageAreaChoices.ANALYTICS)
def clv(request: HttpRequest) -> HttpResponse:
    """Customer lifetime value of a run: distribution, customer equity, mean and median,
    equity per segment or first-order channel (``?by=``), and the top customers."""
    by = request.GET.get("by") or SegmentationChoices.RFM
    if by not in CLV_GROUPINGS:
        raise Http404(f"unknown grouping {by!r}")
    run = _run_or_404(request)
    context: dict[str, Any] = {"run": run, "nav": "clv"}
    if run is None:
        return render(request, "web/analytics/clv.html", context)
    currency = default_currency()
    overview = clv_overview(run)
    settings = prediction_settings(run)
    context.update(_models_context(run))
    context.update(
        {
            "currency": currency,
            "settings": settings,
            "overview": overview,
            "transaction_model": run_model(run, PredictiveModelChoices.BG_NBD),
            "spend_model": run_model(run, PredictiveModelChoices.GAMMA_GAMMA),
        }
    )
    if not overview.with_clv:
        return render(request, "web/analytics/clv.html", context)
    groups = clv_by_group(run, by)
    context.update(
        {
            "by": by,
            "by_label": _grouping_label(by),
            "groupings": [(code, _grouping_label(code)) for code in CLV_GROUPINGS],
            "groups": groups,
            "histogram": charts.clv_histogram_figure(
                clv_histogram(run, with_clv=overview.with_clv), currency
            ),
            "by_group": charts.clv_by_group_figure(groups, currency),
            "top": top_clv_customers(run, TOP_CUSTOMERS),
            "discount_percent": settings.discount_rate * 100,
        }
    )
    return render(request, "web/analytics/clv.html", context)


# --- churn ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChurnRow:
    """One customer of the churn list, with the reasons in the page's language."""

    analysis: CustomerAnalysis
    value_at_risk: Decimal | None
    reasons: list[str]


def _churn_rows(rows: list[CustomerAnalysis], language: str | None) -> list[ChurnRow]:
    return [
        ChurnRow(
            analysis=row,
            value_at_risk=value_at_risk(row),
            reasons=[reason.text(language) for reason in churn_reasons(row)],
        )
        for row in rows
    ]


def _churn_filter(
    request: HttpRequest, run: AnalysisRun
) -> tuple[ChurnFilterForm, QuerySet[CustomerAnalysis]]:
    form = ChurnFilterForm(request.GET, run)
    if not form.is_valid():
        return form, churn_ranking(run).none()
    segment_by, segment = form.segment_filter()
    return form, churn_ranking(run, form.probability(), segment_by, segment)


def _filter_params(request: HttpRequest, run: AnalysisRun) -> str:
    params = {"run": str(run.pk)}
    for key in ("min_probability", "segment"):
        value = request.GET.get(key, "").strip()
        if value:
            params[key] = value
    return urlencode(params)


#: Score labels of the churn metric table, in its order.
CHURN_SCORE_LABELS = {
    "model": gettext_lazy("Churn model"),
    "bgnbd_expected_purchases": gettext_lazy("BG/NBD expected purchases (baseline)"),
    "one_minus_p_alive": gettext_lazy("1 − P(alive)"),
}


def churn_score_rows(model_run: ModelRun) -> list[dict[str, Any]]:
    """The churn model's validation metrics next to its baselines, as table rows."""
    rows = []
    for score in CHURN_SCORES:
        metrics = churn_metric(model_run.metrics, score)
        rows.append(
            {
                "score": score,
                "label": str(CHURN_SCORE_LABELS[score]),
                "metrics": metrics,
                "values": [metrics.get(name) for name in CHURN_METRICS],
            }
        )
    return rows


@area_required(PageAreaChoices.ANALYTICS)
def churn(request: HttpRequest) -> HttpResponse:
    """Customers by value at risk (CLV × churn probability), 25 a page, with their churn
    probability, CLV, P(alive) and reasons; filters; the churn model's validation metrics."""
    run = _run_or_404(request)
    context: dict[str, Any] = {"run": run, "nav": "churn"}
    if run is None:
        return render(request, "web/analytics/churn.html", context)
    context.update(_models_context(run))
    churn_model = run_model(run, PredictiveModelChoices.CHURN)
    form, rows = _churn_filter(request, run)
    params = _filter_params(request, run)
    context.update(
        {
            "currency": default_currency(),
            "settings": prediction_settings(run),
            "churn_model": churn_model,
            "form": form,
            "has_predictions": churn_ranking(run).exists(),
        }
    )
    if churn_model is not None and churn_model.status == AnalysisRunStatusChoices.SUCCEEDED:
        scores = churn_score_rows(churn_model)
        context["scores"] = scores
        context["metric_names"] = ["ROC-AUC", "PR-AUC", "Brier", _("Top-decile lift")]
    paginator = Paginator(rows, CUSTOMERS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    context.update(
        {
            "page": page,
            "rows": _churn_rows(list(page.object_list), get_language()),
            "totals": churn_totals(rows),
            "page_params": params,
            "export_url": f"{reverse('web:analytics_churn_export')}?{params}",
        }
    )
    return render(
        request, "web/analytics/churn.html", context, status=200 if form.is_valid() else 400
    )


#: Columns of the churn audience file.
AUDIENCE_COLUMNS = (
    "external_id",
    "name",
    "email",
    "phone",
    "churn_probability",
    "clv",
    "value_at_risk",
    "reasons",
)


def churn_audience_csv(rows: QuerySet[CustomerAnalysis], language: str | None) -> bytes:
    """The customers of a churn list as a campaign audience: UTF-8 CSV with a byte-order mark
    (Excel on a Chinese Windows guesses GBK without it), money as decimal text, the reasons
    in ``language`` joined by "; "."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(AUDIENCE_COLUMNS)
    for row in rows.iterator(chunk_size=2000):
        customer = row.customer
        risk = value_at_risk(row)
        writer.writerow(
            [
                customer.external_id,
                customer.name,
                customer.email,
                customer.phone,
                f"{row.churn_probability:.4f}" if row.churn_probability is not None else "",
                f"{row.clv:.2f}" if row.clv is not None else "",
                f"{risk:.2f}" if risk is not None else "",
                "; ".join(reason.text(language) for reason in churn_reasons(row)),
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


@area_required(PageAreaChoices.ANALYTICS)
def churn_export(request: HttpRequest) -> HttpResponse:
    """The churn list as filtered on the page, every page of it, as a CSV campaign audience."""
    run = _run_or_404(request)
    if run is None:
        raise Http404("no analysis yet: run `patron analyze`")
    form, rows = _churn_filter(request, run)
    if not form.is_valid():
        return HttpResponse(
            "; ".join(
                f"{field}: {' '.join(str(error) for error in errors)}"
                for field, errors in form.errors.items()
            ),
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    # Masked for roles that may not read personal data; a plain download is audited.
    content = csv_for(
        churn_audience_csv(rows, get_language()), request.user, purpose="churn audience export"
    )
    response = HttpResponse(content, content_type="text/csv; charset=utf-8")
    filename = f"patron-run{run.pk}-churn-audience.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- model runs ----------------------------------------------------------------------------


@area_required(PageAreaChoices.ANALYTICS)
def model_list(request: HttpRequest) -> HttpResponse:
    """Every model run of the latest analyses, newest first, with its status and headline fit."""
    return render(
        request,
        "web/analytics/models.html",
        {"model_runs": model_run_list(MODEL_RUNS_SHOWN), "nav": "models"},
    )


#: Labels of the metrics a model run keeps; a key not listed is shown as it is.
METRIC_LABELS = {
    "repeat_customers": gettext_lazy("Customers with a repeat purchase"),
    "repeat_purchases": gettext_lazy("Repeat purchases"),
    "population_mean_spend": gettext_lazy("Population mean spend per order"),
    "observed_mean_spend": gettext_lazy("Observed mean spend per order"),
    "expected_mean_spend": gettext_lazy("Expected mean spend per order"),
    "total_customer_equity": gettext_lazy("Total customer equity"),
    "calibration_end": gettext_lazy("Calibration end"),
    "holdout_days": gettext_lazy("Holdout days"),
    "customers": gettext_lazy("Customers"),
    "log_likelihood": gettext_lazy("Log-likelihood"),
    "holdout_purchases_actual": gettext_lazy("Holdout repeat purchases, actual"),
    "holdout_purchases_expected": gettext_lazy("Holdout repeat purchases, expected"),
    "total_error": gettext_lazy("Relative error of the holdout total"),
    "mean_absolute_error": gettext_lazy("Mean absolute error per customer"),
    "correlation": gettext_lazy("Correlation, actual vs expected"),
    "mean_spend_actual": gettext_lazy("Holdout mean spend, actual"),
    "mean_spend_expected": gettext_lazy("Holdout mean spend, expected"),
    "as_of": gettext_lazy("Features as of"),
    "label_end": gettext_lazy("Labels up to"),
    "positive_rate": gettext_lazy("Share who did not buy"),
    "horizon_days": gettext_lazy("Horizon (days)"),
    "train": gettext_lazy("Training split"),
    "validation": gettext_lazy("Validation split"),
    "rows": gettext_lazy("Rows"),
}


#: Metrics that are shares (0–1), shown as percentages.
SHARE_METRICS = frozenset({"positive_rate", "total_error"})


def format_metric(key: str, value: Any) -> str:
    """One metric value for the page: dates and words as they are, counts grouped, shares in
    percent, other figures with four decimals (two from a thousand)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(_("Yes") if value else _("No"))
    if isinstance(value, int):
        return format_count(value, get_language())
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15 and key not in SHARE_METRICS:
            return format_count(int(value), get_language())
        if key in SHARE_METRICS:
            return format_percent(value, 2)
        return format_number(value, 2 if abs(value) >= 1000 else 4)
    return str(value)


def metric_items(metrics: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The scalar entries of ``metrics`` as (key, label, formatted value), nested ones left
    out."""
    return [
        (key, str(METRIC_LABELS.get(key, key)), format_metric(key, value))
        for key, value in metrics.items()
        if not isinstance(value, dict | list)
    ]


def parameter_rows(
    model_run: ModelRun, calibration: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The fitted parameters with their standard errors, 95 % intervals and the values of the
    calibration-period fit (``calibration``) when the model was validated.

    The CLV models' parameters are positive and fitted on their logarithms, so the interval is
    ``value · exp(± 1.96 SE / value)`` (the delta method on the log scale): it stays positive,
    where ``value ± 1.96 SE`` can reach below zero for a loosely determined parameter.
    """
    rows = []
    for name, value in model_run.parameters.items():
        error = model_run.standard_errors.get(name)
        interval = None
        if isinstance(value, int | float) and isinstance(error, int | float) and value > 0:
            spread = math.exp(1.96 * error / value)
            interval = (value / spread, value * spread)
        rows.append(
            {
                "name": name,
                "value": value,
                "error": error,
                "interval": interval,
                "calibration": (calibration or {}).get(name),
            }
        )
    return rows


@area_required(PageAreaChoices.ANALYTICS)
def model_detail(request: HttpRequest, model_run_id: int) -> HttpResponse:
    """One model run: data window, parameters with standard errors, log-likelihood, metrics
    and the fit plots (frequency histogram; tracking and conditional expectations when it was
    validated on a holdout); for the churn model, its metrics against the baselines."""
    model_run = get_model_run(model_run_id)
    if model_run is None:
        raise Http404(f"no model run #{model_run_id}")
    metrics = model_run.metrics or {}
    is_churn = model_run.kind == PredictiveModelChoices.CHURN
    # The churn model's "validation" is its time split, shown with the scores, not a holdout fit.
    validation = metrics.get("validation")
    if is_churn or not isinstance(validation, dict):
        validation = None
    diagnostics = model_run.diagnostics or {}
    context: dict[str, Any] = {
        "model_run": model_run,
        "run": model_run.analysis,
        "currency": default_currency(),
        "parameters": parameter_rows(model_run, (validation or {}).get("parameters")),
        # xgettext:no-python-format
        "interval_label": _("95% interval"),
        "metrics": metric_items(metrics),
        "validation": validation,
        "validation_metrics": metric_items(validation or {}),
        "validation_parameters": (validation or {}).get("parameters") or {},
        "is_churn": is_churn,
        "nav": "models",
    }
    if is_churn and metrics:
        scores = churn_score_rows(model_run)
        context["scores"] = scores
        context["metric_names"] = ["ROC-AUC", "PR-AUC", "Brier", _("Top-decile lift")]
        context["splits"] = [
            (str(METRIC_LABELS.get(split, split)), split, metric_items(metrics.get(split) or {}))
            for split in ("train", "validation")
            if isinstance(metrics.get(split), dict)
        ]
        context["scores_figure"] = charts.churn_metrics_figure(
            [(row["label"], row["metrics"]) for row in scores]
        )
    if diagnostics.get("frequency_histogram"):
        context["frequency_figure"] = charts.frequency_histogram_figure(
            diagnostics["frequency_histogram"]
        )
    if diagnostics.get("tracking") and validation:
        context["tracking_figure"] = charts.tracking_figure(diagnostics["tracking"])
    if diagnostics.get("conditional_expectations"):
        context["conditional_figure"] = charts.conditional_expectations_figure(
            diagnostics["conditional_expectations"]
        )
    return render(request, "web/analytics/model_detail.html", context)
