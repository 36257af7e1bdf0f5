"""The dashboard's analytics pages: segments, cohorts, loyalty KPIs and segment migration.

They show what ``patron analyze`` kept (``patron.analytics.selectors``); each view reads the
request, calls selectors and renders. Figures come from :mod:`patron.web.analytics_charts`.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from patron.analytics import services
from patron.analytics.choices import SegmentationChoices
from patron.analytics.models import AnalysisRun
from patron.analytics.selectors import (
    KpiFigures,
    SegmentMigration,
    UnknownSegmentError,
    cohort_rows,
    get_run,
    inter_purchase_buckets,
    kpi_figures,
    kpi_trend,
    latest_run,
    resolve_segment,
    segment_codes,
    segment_customers,
    segment_migration,
    segment_summary,
    store_orders,
    successful_runs,
)
from patron.core.choices import ChannelChoices
from patron.core.money import default_currency
from patron.core.roles import PageAreaChoices
from patron.privacy.access import csv_for
from patron.web import analytics_charts as charts
from patron.web.formatting import (
    format_count,
    format_money,
    format_money_compact,
    format_number,
    format_percent,
)
from patron.web.forms import KpiPeriodForm
from patron.web.views import CUSTOMERS_PER_PAGE, area_required

#: Days of the KPI page's default period, which ends on the latest run's as-of day.
DEFAULT_KPI_DAYS = 30
#: Runs offered on the migration page, newest first.
RUNS_OFFERED = 50


def _run_or_404(request: HttpRequest) -> AnalysisRun | None:
    """The run named by ``?run=`` (404 when it is not a successful run), else the latest
    successful one, else None (no analysis yet)."""
    raw = request.GET.get("run", "").strip()
    if not raw:
        return latest_run()
    if not raw.isdigit():
        raise Http404("run must be a run number")
    run = get_run(int(raw))
    if run is None:
        raise Http404(f"no successful analysis run #{raw}")
    return run


def _segmentation(value: str | None) -> str:
    by = value or SegmentationChoices.RFM
    if by not in SegmentationChoices.values:
        raise Http404(f"unknown segmentation {by!r}")
    return by


def _no_analysis(request: HttpRequest, template: str, nav: str) -> HttpResponse:
    return render(request, template, {"run": None, "nav": nav})


# --- segments --------------------------------------------------------------------------


@area_required(PageAreaChoices.ANALYTICS)
def segments(request: HttpRequest) -> HttpResponse:
    """The segments of one segmentation in a run: treemap, shares and a table; each segment
    links to its customers."""
    by = _segmentation(request.GET.get("by"))
    run = _run_or_404(request)
    if run is None:
        return _no_analysis(request, "web/analytics/segments.html", "segments")
    summaries = segment_summary(run, by)
    currency = default_currency()
    urls = {
        summary.code: _segment_url("web:analytics_segment_customers", run, by, summary.code)
        for summary in summaries
    }
    rows = [
        {
            "summary": summary,
            "url": urls[summary.code],
            "export_url": _segment_url("web:analytics_segment_export", run, by, summary.code),
        }
        for summary in summaries
    ]
    return render(
        request,
        "web/analytics/segments.html",
        {
            "run": run,
            "by": by,
            "by_label": SegmentationChoices(by).label,
            "segmentations": SegmentationChoices.choices,
            "run_param": f"run={run.pk}",
            "rows": rows,
            "total_customers": sum(summary.customers for summary in summaries),
            "total_revenue": sum((summary.revenue for summary in summaries), Decimal(0)),
            "treemap": charts.segment_treemap_figure(summaries, currency, urls),
            "shares": charts.segment_share_figure(summaries),
            "currency": currency,
            "nav": "segments",
        },
    )


def _segment_url(name: str, run: AnalysisRun, by: str, code: str) -> str:
    # The run is part of the link, so a list opened from a page shows that page's run even
    # after a newer analysis.
    return f"{reverse(name, args=[by, code])}?run={run.pk}"


def _segment_of_request(request: HttpRequest, by: str, code: str) -> tuple[AnalysisRun, str]:
    by = _segmentation(by)
    run = _run_or_404(request)
    if run is None:
        raise Http404("no analysis yet: run `patron analyze`")
    try:
        return run, resolve_segment(run, by, code)
    except UnknownSegmentError as error:
        raise Http404(str(error)) from error


@area_required(PageAreaChoices.ANALYTICS)
def segment_customers_page(request: HttpRequest, by: str, code: str) -> HttpResponse:
    """The customers of one segment, 25 a page, with their scores and a CSV export link."""
    run, code = _segment_of_request(request, by, code)
    labels = dict(segment_codes(run, by))
    paginator = Paginator(segment_customers(run, by, code), CUSTOMERS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "web/analytics/segment_customers.html",
        {
            "run": run,
            "by": by,
            "by_label": SegmentationChoices(by).label,
            "code": code,
            "label": labels[code],
            "page": page,
            "page_params": f"run={run.pk}",
            "back_url": f"{reverse('web:analytics_segments')}?by={by}&run={run.pk}",
            "export_url": _segment_url("web:analytics_segment_export", run, by, code),
            "currency": default_currency(),
            "nav": "segments",
        },
    )


@area_required(PageAreaChoices.ANALYTICS)
def segment_export(request: HttpRequest, by: str, code: str) -> HttpResponse:
    """The customers of one segment with their contact and scores, as a CSV download
    (the file of ``patron export segment``)."""
    run, code = _segment_of_request(request, by, code)
    with tempfile.TemporaryDirectory(prefix="patron-export-") as folder:
        path = Path(folder) / "segment.csv"
        services.export_segment(code, path, by=by, run=run)
        content = path.read_bytes()
    # Masked for roles that may not read personal data; a plain download is audited.
    content = csv_for(content, request.user, purpose="segment export")
    response = HttpResponse(content, content_type="text/csv; charset=utf-8")
    filename = f"patron-run{run.pk}-{by}-{code}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# --- cohorts ---------------------------------------------------------------------------


@area_required(PageAreaChoices.ANALYTICS)
def cohorts(request: HttpRequest) -> HttpResponse:
    """Retention heatmap and revenue per cohort, of all customers or of one first-order
    channel (``?channel=``)."""
    run = _run_or_404(request)
    if run is None:
        return _no_analysis(request, "web/analytics/cohorts.html", "cohorts")
    channel = request.GET.get("channel", "").strip()
    if channel:
        by_channel = cohort_rows(run, by="channel")
        channels = sorted({row.channel for row in by_channel if row.channel})
        if channel not in channels:
            raise Http404(f"no cohort of channel {channel!r}")
        rows = [row for row in by_channel if row.channel == channel]
    else:
        rows = cohort_rows(run)
        channels = sorted({row.channel for row in cohort_rows(run, by="channel") if row.channel})
    currency = default_currency()
    summaries = charts.summarise_cohorts(rows, run.as_of, currency)
    labels = dict(ChannelChoices.choices)
    return render(
        request,
        "web/analytics/cohorts.html",
        {
            "run": run,
            "channel": channel,
            "channel_label": labels.get(channel, channel),
            "channels": [(code, labels.get(code, code)) for code in channels],
            "cohorts": list(reversed(summaries)),
            "heatmap": charts.retention_heatmap_figure(rows, run.as_of) if rows else None,
            "revenue": charts.cohort_revenue_figure(summaries, currency) if rows else None,
            "currency": currency,
            "nav": "cohorts",
        },
    )


# --- KPIs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiCard:
    """One KPI card: the figure of the period and its change against the period before.

    ``change`` is relative (``0.05`` = +5 %) for counts and amounts, ``point_change`` is in
    rate units (``0.021`` = +2.1 percentage points) for rates; at most one is set.
    """

    key: str
    label: str
    value: str
    previous: str
    change: Decimal | None = None
    point_change: Decimal | None = None
    hint: str = ""


def _relative(
    current: Decimal | float | int | None, previous: Decimal | float | int | None
) -> Decimal | None:
    if current is None or previous is None or Decimal(str(previous)) <= 0:
        return None
    before = Decimal(str(previous))
    return (Decimal(str(current)) - before) / before


def _points(current: float | None, previous: float | None) -> Decimal | None:
    if current is None or previous is None:
        return None
    return Decimal(str(current)) - Decimal(str(previous))


def kpi_cards(now: KpiFigures, before: KpiFigures, currency: str) -> list[KpiCard]:
    """The KPI page's cards, in reading order, formatted for the active language."""
    language = get_language()

    def count(key: str, label: str, field: str, hint: str = "") -> KpiCard:
        value, previous = getattr(now, field), getattr(before, field)
        return KpiCard(
            key,
            label,
            format_count(value, language),
            format_count(previous, language),
            change=_relative(value, previous),
            hint=hint,
        )

    def rate(key: str, label: str, field: str, hint: str = "") -> KpiCard:
        value, previous = getattr(now, field), getattr(before, field)
        return KpiCard(
            key,
            label,
            format_percent(value),
            format_percent(previous),
            point_change=_points(value, previous),
            hint=hint,
        )

    days = _("%(days)s days")
    median = now.median_inter_purchase_days
    return [
        count("active_customers", _("Active customers"), "active_customers", _("Placed an order")),
        count("new_customers", _("New customers"), "new_customers", _("First order ever")),
        count(
            "returning_customers",
            _("Returning customers"),
            "returning_customers",
            _("First order before the period"),
        ),
        count("orders", _("Orders"), "orders", _("Cancelled orders not counted")),
        KpiCard(
            "revenue",
            _("Revenue"),
            format_money_compact(now.revenue, currency, language),
            format_money_compact(before.revenue, currency, language),
            change=_relative(now.revenue, before.revenue),
            hint=_("Net of refunds"),
        ),
        rate(
            "repeat_purchase_rate",
            _("Repeat purchase rate"),
            "repeat_purchase_rate",
            _("Active customers with 2+ orders"),
        ),
        rate(
            "retention_rate",
            _("Retention rate"),
            "retention_rate",
            _("Active in the period before and again"),
        ),
        rate("churn_rate", _("Churn rate"), "churn_rate", _("Active before, not again")),
        KpiCard(
            "purchase_frequency",
            _("Purchase frequency"),
            format_number(now.purchase_frequency, 2),
            format_number(before.purchase_frequency, 2),
            change=_relative(now.purchase_frequency, before.purchase_frequency),
            hint=_("Orders per active customer"),
        ),
        KpiCard(
            "average_order_value",
            _("Average order value"),
            format_money(now.average_order_value, currency) or "–",
            format_money(before.average_order_value, currency) or "–",
            change=_relative(now.average_order_value, before.average_order_value),
            hint=_("Net of refunds"),
        ),
        KpiCard(
            "average_inter_purchase_days",
            _("Days between orders"),
            _days(now.average_inter_purchase_days, days),
            _days(before.average_inter_purchase_days, days),
            change=_relative(now.average_inter_purchase_days, before.average_inter_purchase_days),
            hint=_("Average; median %(median)s") % {"median": _days(median, days)},
        ),
        rate(
            "top20_revenue_share",
            # xgettext:no-python-format
            _("Top 20% revenue share"),
            "top20_revenue_share",
            _("Revenue of the best fifth of active customers"),
        ),
    ]


def _days(value: float | None, template: str) -> str:
    if value is None:
        return "–"
    return template % {"days": format_number(value, 1)}


@area_required(PageAreaChoices.ANALYTICS)
def kpi_page(request: HttpRequest) -> HttpResponse:
    """Loyalty KPIs of a chosen period (default: the 30 days to the latest run's as-of day)
    against the period of the same length before it, and monthly trends of the run."""
    run = latest_run()
    if run is None:
        return _no_analysis(request, "web/analytics/kpis.html", "kpis")
    default_start = run.as_of - dt.timedelta(days=DEFAULT_KPI_DAYS - 1)
    data = {
        "start": request.GET.get("start") or default_start.isoformat(),
        "end": request.GET.get("end") or run.as_of.isoformat(),
    }
    form = KpiPeriodForm(data)
    context: dict[str, Any] = {"run": run, "form": form, "nav": "kpis"}
    currency = default_currency()
    trend = kpi_trend(run)
    context.update(
        {
            "currency": currency,
            "active_trend": charts.active_customers_trend_figure(trend) if trend else None,
            "rates_trend": charts.loyalty_rates_trend_figure(trend) if trend else None,
            "aov_trend": charts.order_value_trend_figure(trend, currency) if trend else None,
        }
    )
    if not form.is_valid():
        return render(request, "web/analytics/kpis.html", context, status=400)
    start: dt.date = form.cleaned_data["start"]
    end: dt.date = form.cleaned_data["end"]
    days = (end - start).days + 1
    previous_end = start - dt.timedelta(days=1)
    previous_start = previous_end - dt.timedelta(days=days - 1)
    orders = store_orders(end)  # read once for the three figures
    now = kpi_figures(start, end, orders)
    before = kpi_figures(previous_start, previous_end, orders)
    buckets = inter_purchase_buckets(start, end, orders)
    context.update(
        {
            "start": start,
            "end": end,
            "days": days,
            "previous_start": previous_start,
            "previous_end": previous_end,
            "cards": kpi_cards(now, before, currency),
            "gaps": charts.inter_purchase_figure(buckets)
            if any(bucket.gaps for bucket in buckets)
            else None,
        }
    )
    return render(request, "web/analytics/kpis.html", context)


# --- segment migration -----------------------------------------------------------------


@dataclass(frozen=True)
class MigrationRow:
    """One row of the migration matrix: where the customers of one earlier segment went."""

    code: str
    label: str
    counts: list[tuple[str, int]]  # (segment in the later run, customers), in column order
    total: int
    stayed: int


def migration_table(
    migration: SegmentMigration,
) -> tuple[list[tuple[str, str]], list[MigrationRow]]:
    """The matrix of :class:`SegmentMigration` as table rows (segments someone left) and
    columns (segments someone reached), in the segmentation's order."""
    labels = dict(zip(migration.codes, migration.labels, strict=True))
    from_codes = {cell.from_code for cell in migration.cells}
    to_codes = {cell.to_code for cell in migration.cells}
    columns = [(code, labels[code]) for code in migration.codes if code in to_codes]
    rows = []
    for code in migration.codes:
        if code not in from_codes:
            continue
        counts = [(column, migration.count(code, column)) for column, _label in columns]
        total = sum(count for _column, count in counts)
        rows.append(MigrationRow(code, labels[code], counts, total, migration.count(code, code)))
    return columns, rows


def _picked_run(raw: str | None, runs: list[AnalysisRun], default: AnalysisRun) -> AnalysisRun:
    if not raw:
        return default
    for run in runs:
        if str(run.pk) == raw:
            return run
    found = get_run(int(raw)) if raw.isdigit() else None
    if found is None:
        raise Http404(f"no successful analysis run #{raw}")
    return found


@area_required(PageAreaChoices.ANALYTICS)
def migration(request: HttpRequest) -> HttpResponse:
    """How customers moved between the segments of two runs (default: the latest two, the
    earlier as-of day on the left): a Sankey diagram and the matrix."""
    by = _segmentation(request.GET.get("by"))
    runs = successful_runs(RUNS_OFFERED)
    context: dict[str, Any] = {
        "runs": runs,
        "by": by,
        "segmentations": SegmentationChoices.choices,
        "nav": "migration",
    }
    if len(runs) < 2:
        context["run"] = runs[0] if runs else None
        return render(request, "web/analytics/migration.html", context)
    earlier, later = sorted(runs[:2], key=lambda run: (run.as_of, run.started_at))
    from_run = _picked_run(request.GET.get("from"), runs, earlier)
    to_run = _picked_run(request.GET.get("to"), runs, later)
    moves = segment_migration(from_run, to_run, by)
    columns, rows = migration_table(moves)
    both = sum(row.total for row in rows)
    stayed = sum(row.stayed for row in rows)
    from_title = _("Run #%(id)s, as of %(date)s") % {"id": from_run.pk, "date": from_run.as_of}
    to_title = _("Run #%(id)s, as of %(date)s") % {"id": to_run.pk, "date": to_run.as_of}
    context.update(
        {
            "run": to_run,
            "from_run": from_run,
            "to_run": to_run,
            "by_label": SegmentationChoices(by).label,
            "columns": columns,
            "rows": rows,
            "both": both,
            "stayed": stayed,
            "moved": both - stayed,
            "stayed_share": stayed / both if both else None,
            "moved_share": (both - stayed) / both if both else None,
            "sankey": (
                charts.migration_sankey_figure(moves, from_title, to_title) if moves.cells else None
            ),
        }
    )
    return render(request, "web/analytics/migration.html", context)
