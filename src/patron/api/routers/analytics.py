"""``/api/v1/analytics``: segments, cohorts and loyalty KPIs from the customer analytics.

Segments and cohorts come from an analysis run (``patron analyze``; the latest successful one
unless ``run`` is given); KPIs are computed live from the store for any period. Labels follow
the request's language (``Accept-Language``), codes stay the same in every language.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext
from ninja import Field, Query, Router, Schema

from patron.analytics.choices import SegmentationChoices
from patron.analytics.models import AnalysisRun, ModelRun
from patron.analytics.selectors import (
    KpiFigures,
    cohort_rows,
    get_run,
    kpi_figures,
    latest_run,
    model_runs,
    segment_summary,
)
from patron.api.auth import requires_permission
from patron.api.errors import ApiError, ErrorOut, ValidationErrorOut
from patron.api.schemas import ShopDateTime, format_amount
from patron.core.money import default_currency
from patron.core.roles import ApiPermissionChoices

router = Router(tags=["analytics"])

_ERRORS: dict[int, type[Schema]] = {
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    422: ValidationErrorOut,
}
#: Days of the default KPI period, ending on the latest run's as-of day.
DEFAULT_KPI_DAYS = 30

# Query parameters whose types ruff does not know to be immutable (B008), declared once.
_SEGMENTATION_QUERY = Query(SegmentationChoices.RFM, description="Segmentation")
#: The last day a KPI period may touch: the store is read up to the day after the period, and
#: the calendar ends on 9999-12-31 (a later day overflowed into a 500).
LAST_KPI_DAY = date.max - timedelta(days=1)
_START_QUERY = Query(
    None, le=LAST_KPI_DAY, description="First day, YYYY-MM-DD (default: end - 29 days)"
)
_END_QUERY = Query(
    None, le=LAST_KPI_DAY, description="Last day, YYYY-MM-DD (default: the latest run's as_of)"
)


class RunOut(Schema):
    """The analysis run the figures come from."""

    id: int
    as_of: date = Field(description="Last day counted (shop-local)")
    engine: str
    started_at: ShopDateTime
    finished_at: ShopDateTime | None
    duration_seconds: float | None
    customers: int = Field(description="Customers with a counted order by as_of")
    orders: int = Field(description="Counted orders read")
    data_through: ShopDateTime | None = Field(description="Time of the latest order read")
    triggered_by: str


class SegmentOut(Schema):
    """One segment: its size, net revenue and average customer."""

    code: str = Field(examples=["champions"])
    label: str = Field(description="Name in the request's language", examples=["Champions"])
    customers: int
    share: float = Field(description="Fraction of the run's customers (0-1)")
    revenue: str = Field(description="Net spend of its customers, a decimal string")
    revenue_share: float = Field(description="Fraction of the run's net revenue (0-1)")
    mean_recency_days: float | None
    mean_frequency: float | None
    mean_monetary: str | None = Field(description="Average net spend, a decimal string")
    mean_value_score: float | None


class SegmentsOut(Schema):
    """Every segment of one segmentation in a run (empty segments included, best first)."""

    run: RunOut
    by: str
    by_label: str
    currency: str
    segments: list[SegmentOut]


class CohortOut(Schema):
    """Customers first buying in ``cohort_month``, and those of them buying ``period`` months
    later (only months in which at least one did)."""

    cohort_month: date
    channel: str | None = Field(description="Channel of the first order, when split by channel")
    period: int
    cohort_size: int
    active_customers: int
    retention_rate: float
    orders: int
    revenue: str = Field(description="Net revenue of the cohort in that month, a decimal string")


class CohortsOut(Schema):
    """The cohort retention table of a run, long format."""

    run: RunOut
    by: str | None
    currency: str
    rows: list[CohortOut]


class KpisOut(Schema):
    """Loyalty KPIs of one period (``start``-``end`` inclusive, shop-local days). Rates are
    fractions (0-1); null where the period has nothing to divide by."""

    period_start: date
    period_end: date
    currency: str
    active_customers: int
    new_customers: int
    returning_customers: int
    orders: int
    revenue: str
    repeat_purchase_rate: float | None
    retention_rate: float | None = Field(
        description="Share of the previous period's (same length) active customers active again"
    )
    churn_rate: float | None
    purchase_frequency: float | None
    average_order_value: str | None
    average_inter_purchase_days: float | None
    median_inter_purchase_days: float | None
    top20_revenue_share: float | None


class ModelRunOut(Schema):
    """One fit of a predictive model in an analysis run, with its data window and metrics."""

    id: int
    analysis_run: int = Field(description="Id of the analysis run that fitted it")
    as_of: date = Field(description="As-of day of the analysis run")
    kind: str = Field(examples=["bg_nbd"], description="bg_nbd, gamma_gamma or churn")
    label: str = Field(description="Name in the request's language")
    status: str = Field(description="succeeded or failed")
    error: str = Field(description="Why the model could not be fitted (empty on success)")
    data_start: date | None = Field(description="First day of the data read")
    calibration_end: date = Field(
        description="Last day of the data fitted (for churn: the last labelled training day)"
    )
    data_end: date = Field(description="Last day of the data read")
    validated: bool = Field(description="Whether the metrics include a holdout validation")
    time_unit: str = Field(description="D: recency, T and parameters are in days")
    customers: int
    parameters: dict[str, Any]
    standard_errors: dict[str, Any]
    log_likelihood: float | None
    metrics: dict[str, Any] = Field(
        description="Holdout errors (CLV models with --validate), ROC-AUC, PR-AUC, Brier "
        "score and top-decile lift next to the BG/NBD baseline (churn)"
    )
    duration_seconds: float

    @staticmethod
    def resolve_analysis_run(obj: ModelRun) -> int:
        return obj.analysis_id

    @staticmethod
    def resolve_as_of(obj: ModelRun) -> date:
        return obj.analysis.as_of

    @staticmethod
    def resolve_label(obj: ModelRun) -> str:
        return str(obj.get_kind_display())


class ModelRunsOut(Schema):
    """Model runs, newest analysis first."""

    runs: list[ModelRunOut]


def _run_or_404(run_id: int | None) -> AnalysisRun:
    run = get_run(run_id)
    if run is not None:
        return run
    if run_id is not None:
        raise ApiError(404, "not_found", f"No successful analysis run #{run_id}.")
    raise ApiError(
        404, "no_analysis", "No analysis has run yet: run `patron analyze` on the server."
    )


@router.get(
    "/segments", response={200: SegmentsOut, **_ERRORS}, summary="Customer segments of a run"
)
@requires_permission(ApiPermissionChoices.ANALYTICS_READ)
def list_segments(
    request: HttpRequest,
    by: SegmentationChoices = _SEGMENTATION_QUERY,
    run: int | None = Query(None, description="Analysis run id (default: the latest)"),
) -> dict[str, Any]:
    """Sizes, net revenue and averages of every segment of one segmentation."""
    analysis = _run_or_404(run)
    currency = default_currency()
    return {
        "run": analysis,
        "by": by.value,
        "by_label": str(SegmentationChoices(by).label),
        "currency": currency,
        "segments": [
            {
                "code": summary.code,
                "label": summary.label,
                "customers": summary.customers,
                "share": summary.share,
                "revenue": format_amount(summary.revenue, currency),
                "revenue_share": summary.revenue_share,
                "mean_recency_days": summary.mean_recency_days,
                "mean_frequency": summary.mean_frequency,
                "mean_monetary": (
                    None
                    if summary.mean_monetary is None
                    else format_amount(summary.mean_monetary, currency)
                ),
                "mean_value_score": summary.mean_value_score,
            }
            for summary in segment_summary(analysis, by.value)
        ],
    }


@router.get("/cohorts", response={200: CohortsOut, **_ERRORS}, summary="Cohort retention")
@requires_permission(ApiPermissionChoices.ANALYTICS_READ)
def list_cohorts(
    request: HttpRequest,
    by: Literal["channel"] | None = Query(None, description="Split cohorts by first channel"),
    run: int | None = Query(None, description="Analysis run id (default: the latest)"),
) -> dict[str, Any]:
    """Retention by acquisition month (optionally by channel) and revenue per cohort month."""
    analysis = _run_or_404(run)
    currency = default_currency()
    return {
        "run": analysis,
        "by": by,
        "currency": currency,
        "rows": [
            {
                "cohort_month": row.cohort_month,
                "channel": row.channel,
                "period": row.period,
                "cohort_size": row.cohort_size,
                "active_customers": row.active_customers,
                "retention_rate": row.retention_rate,
                "orders": row.orders,
                "revenue": format_amount(row.revenue, currency),
            }
            for row in cohort_rows(analysis, by)
        ],
    }


@router.get("/kpis", response={200: KpisOut, **_ERRORS}, summary="Loyalty KPIs of a period")
@requires_permission(ApiPermissionChoices.ANALYTICS_READ)
def get_kpis(
    request: HttpRequest,
    start: date | None = _START_QUERY,
    end: date | None = _END_QUERY,
) -> dict[str, Any]:
    """Active, new and returning customers, repeat purchase, retention and churn rates, order
    frequency and value, inter-purchase time and top-20 % revenue share, computed live."""
    if end is None:
        run = latest_run()
        if run is None:
            raise ApiError(
                404,
                "no_analysis",
                "No analysis has run yet: run `patron analyze`, or give start and end.",
            )
        end = run.as_of
    if start is None:
        # Clipped at the calendar's first day (0001-01-01), which end - 29 days passed (a 500).
        days_back = timedelta(days=DEFAULT_KPI_DAYS - 1)
        start = max(end, date.min + days_back) - days_back
    if start > end:
        message = gettext("start must be on or before end")
        raise ApiError(
            422,
            "invalid_request",
            f"start: {message}",
            errors=[
                {"location": "query", "field": field, "message": message, "type": "date_order"}
                for field in ("start", "end")
            ],
        )
    return _kpis_json(kpi_figures(start, end))


def _kpis_json(figures: KpiFigures) -> dict[str, Any]:
    currency = default_currency()
    return {
        "period_start": figures.period_start,
        "period_end": figures.period_end,
        "currency": currency,
        "active_customers": figures.active_customers,
        "new_customers": figures.new_customers,
        "returning_customers": figures.returning_customers,
        "orders": figures.orders,
        "revenue": format_amount(figures.revenue, currency),
        "repeat_purchase_rate": figures.repeat_purchase_rate,
        "retention_rate": figures.retention_rate,
        "churn_rate": figures.churn_rate,
        "purchase_frequency": figures.purchase_frequency,
        "average_order_value": (
            None
            if figures.average_order_value is None
            else format_amount(figures.average_order_value, currency)
        ),
        "average_inter_purchase_days": figures.average_inter_purchase_days,
        "median_inter_purchase_days": figures.median_inter_purchase_days,
        "top20_revenue_share": figures.top20_revenue_share,
    }


@router.get("/models", response={200: ModelRunsOut, **_ERRORS}, summary="Predictive model runs")
@requires_permission(ApiPermissionChoices.ANALYTICS_READ)
def list_models(
    request: HttpRequest,
    run: int | None = Query(None, description="Analysis run id (default: the latest 20 runs)"),
) -> dict[str, Any]:
    """The fits of the BG/NBD, Gamma-Gamma and churn models with parameters and metrics."""
    if run is None:
        return {"runs": model_runs(limit=60)}
    return {"runs": model_runs(_run_or_404(run))}
