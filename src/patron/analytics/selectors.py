"""Reads for the analytics: the store as an order table for the engine, and the results of runs.

Pages, the API and the commands call these; they return frozen dataclasses, querysets or Polars
frames with documented columns, never loose dicts. Labels are given in the active language.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from django.conf import settings
from django.db import connection, models
from django.db.models import Avg, Count, QuerySet, Sum
from django.utils import translation

from patron.analytics.choices import (
    AnalysisRunStatusChoices,
    LifecycleStageChoices,
    RfmSegmentChoices,
    SegmentationChoices,
    ValueClassChoices,
    ValueTierChoices,
)
from patron.analytics.models import AnalysisRun, CustomerAnalysis, ModelRun
from patron.analytics.prediction_settings import PredictionSettings
from patron.core.bulk import is_postgres
from patron.core.money import default_currency, round_for_currency
from patron.core.sql import columns, fetch_one
from patron.customers.models import Customer
from patron.engine import kpis
from patron.engine.frames import order_summary

#: Columns of :func:`order_lines_frame`, an order-lines table of the engine (one row per order).
ORDER_LINES_SCHEMA: dict[str, Any] = {
    "order_id": pl.String,
    "customer_id": pl.String,
    "ordered_at": pl.Datetime("us"),
    "line_total": pl.Float64,
    "discount": pl.Float64,
    "refund_amount": pl.Float64,
    "status": pl.String,
    "channel": pl.String,
}

#: The CustomerAnalysis column that holds each segmentation's code.
SEGMENT_FIELDS: dict[str, str] = {
    SegmentationChoices.RFM: "rfm_segment",
    SegmentationChoices.VALUE_CLASS: "value_class",
    SegmentationChoices.LIFECYCLE: "lifecycle_stage",
    SegmentationChoices.VALUE_TIER: "value_tier",
    SegmentationChoices.BEHAVIOUR: "behaviour_segment",
}

_CODED_SEGMENTATIONS: dict[str, type[models.TextChoices]] = {
    SegmentationChoices.RFM: RfmSegmentChoices,
    SegmentationChoices.VALUE_CLASS: ValueClassChoices,
    SegmentationChoices.LIFECYCLE: LifecycleStageChoices,
    SegmentationChoices.VALUE_TIER: ValueTierChoices,
}


class UnknownSegmentError(ValueError):
    """A segmentation or segment name that does not exist; the message lists the valid ones."""


def shop_zone() -> ZoneInfo:
    """The shop's time zone (``settings.TIME_ZONE``), in which days and months are counted."""
    return ZoneInfo(str(settings.TIME_ZONE))


# --- the store as the engine's input -------------------------------------------------------


def order_lines_frame(as_of: dt.date | None = None) -> pl.DataFrame:
    """Every order of the store as an order-lines table of the engine, one row per order.

    Columns :data:`ORDER_LINES_SCHEMA`: ``order_id`` and ``customer_id`` are the shop's
    external ids; ``ordered_at`` is in the shop's time zone, naive (the engine counts days and
    months in shop-local time); ``line_total`` is the order's subtotal, ``discount`` its
    discount, ``refund_amount`` the sum of its refunds; ``status`` and ``channel`` as stored
    (the engine drops cancelled orders itself). With ``as_of``, only orders placed up to the
    end of that shop-local day. Sorted by ``ordered_at``, then ``order_id``.

    Read with one SQL statement into Polars: the ORM would build 100,000 model instances for
    a 20,000-customer shop.
    """
    quote = connection.ops.quote_name
    # SQLite: the text of the column, parsed by Polars (Django's per-row datetime converter is
    # slow); PostgreSQL: aware datetimes.
    ordered_at = "o.ordered_at" if is_postgres() else "o.ordered_at || ''"
    sql = (
        f"SELECT o.external_id, c.external_id, {ordered_at}, "
        "CAST(o.subtotal_amount AS DOUBLE PRECISION), "
        "CAST(o.discount_amount AS DOUBLE PRECISION), "
        "CAST(COALESCE(r.refunded, 0) AS DOUBLE PRECISION), o.status, o.channel "
        f"FROM {quote('orders_order')} o "
        f"JOIN {quote('customers_customer')} c ON c.id = o.customer_id "
        "LEFT JOIN (SELECT order_id, SUM(amount) AS refunded "
        f"FROM {quote('orders_refund')} GROUP BY order_id) r ON r.order_id = o.id"
    )
    parameters: list[Any] = []
    if as_of is not None:
        day_after = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), shop_zone())
        sql += " WHERE o.ordered_at < %s"
        parameters.append(connection.ops.adapt_datetimefield_value(day_after))
    with connection.cursor() as cursor:
        cursor.execute(sql, parameters)
        rows = cursor.fetchall()
    read_schema = dict(ORDER_LINES_SCHEMA)
    read_schema["ordered_at"] = pl.Datetime("us", "UTC") if is_postgres() else pl.String
    frame = pl.DataFrame(rows, schema=read_schema, orient="row")
    if is_postgres():
        utc = pl.col("ordered_at")
    else:
        utc = pl.col("ordered_at").str.to_datetime(time_unit="us").dt.replace_time_zone("UTC")
    local = utc.dt.convert_time_zone(str(settings.TIME_ZONE)).dt.replace_time_zone(None)
    return frame.with_columns(local.alias("ordered_at")).sort("ordered_at", "order_id")


# --- runs --------------------------------------------------------------------------------


def latest_run() -> AnalysisRun | None:
    """The newest successful analysis run, or None when none has succeeded yet."""
    return (
        AnalysisRun.objects.filter(status=AnalysisRunStatusChoices.SUCCEEDED)
        .order_by("-started_at", "-id")
        .first()
    )


def get_run(run_id: int | None = None) -> AnalysisRun | None:
    """The successful run ``run_id``, or the latest successful one when ``run_id`` is None."""
    if run_id is None:
        return latest_run()
    return AnalysisRun.objects.filter(pk=run_id, status=AnalysisRunStatusChoices.SUCCEEDED).first()


def customer_analysis(
    customer: Customer, run: AnalysisRun | None = None
) -> CustomerAnalysis | None:
    """The customer's row in ``run`` (the latest successful run by default).

    None when no run has succeeded, or when the customer had no counted order by its as-of day.
    """
    run = run or latest_run()
    if run is None:
        return None
    return CustomerAnalysis.objects.filter(run=run, customer=customer).select_related("run").first()


def customer_rfm_segment(customer_id: int) -> str | None:
    """The customer's RFM segment in the latest successful run (as :func:`customer_analysis`
    finds the row), or None. One statement that reads neither run's results (large JSON):
    recommendations for customers without a stored list need only this."""
    analysis, run = columns(CustomerAnalysis, "ca"), columns(AnalysisRun, "ar", only=())
    row = fetch_one(
        f"SELECT {analysis.column('rfm_segment')} FROM {analysis.table} "
        f"WHERE {analysis.column('customer_id')} = %s AND {analysis.column('run_id')} = "
        f"(SELECT {run.column('id')} FROM {run.table} WHERE {run.column('status')} = %s "
        f"ORDER BY {run.column('started_at')} DESC, {run.column('id')} DESC LIMIT 1)",
        [customer_id, AnalysisRunStatusChoices.SUCCEEDED],
    )
    return None if row is None else row[0]


def behaviour_segment_label(run: AnalysisRun, segment: int, english_name: str = "") -> str:
    """The descriptive name of a behaviour segment in the active language.

    The names come with the run (the engine names segments from their profiles); Chinese
    when the active language is Chinese.
    """
    for profile in run.results.get("behaviour_profiles", []):
        if profile.get("segment") == segment:
            chinese = (translation.get_language() or "").lower().startswith("zh")
            return str(profile.get("name_zh") if chinese else profile.get("name"))
    return english_name or str(segment)


# --- segments ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentSummary:
    """One segment of a segmentation in a run: its size, revenue and average customer.

    ``revenue`` is the net spend of the segment's customers up to the run's as-of day;
    ``share`` and ``revenue_share`` are fractions (0–1) of the run's customers and revenue.
    """

    code: str
    label: str
    customers: int
    share: float
    revenue: Decimal
    revenue_share: float
    mean_recency_days: float | None
    mean_frequency: float | None
    mean_monetary: Decimal | None
    mean_value_score: float | None


def segmentation_field(by: str) -> str:
    """The CustomerAnalysis column of a segmentation; UnknownSegmentError lists the valid ones."""
    try:
        return SEGMENT_FIELDS[by]
    except KeyError as error:
        valid = ", ".join(SEGMENT_FIELDS)
        raise UnknownSegmentError(f"unknown segmentation {by!r}; use one of: {valid}") from error


def segment_codes(run: AnalysisRun, by: str) -> list[tuple[str, str]]:
    """(code, label in the active language) of every segment of a segmentation, in order.

    The coded segmentations list all their codes (best first), also empty ones; behaviour
    segments are those the run found, numbered from the highest spending.
    """
    segmentation_field(by)
    if by == SegmentationChoices.BEHAVIOUR:
        profiles = sorted(run.results.get("behaviour_profiles", []), key=lambda p: p["segment"])
        return [
            (str(p["segment"]), behaviour_segment_label(run, int(p["segment"]))) for p in profiles
        ]
    choices = _CODED_SEGMENTATIONS[by]
    return [(str(value), str(label)) for value, label in choices.choices]


def segment_summary(run: AnalysisRun, by: str = SegmentationChoices.RFM) -> list[SegmentSummary]:
    """Every segment of segmentation ``by`` in ``run``, in the order of :func:`segment_codes`.

    One SQL aggregate over the run's customer rows. Money is rounded to the currency.
    """
    field = segmentation_field(by)
    rows = {
        str(row[field]): row
        for row in CustomerAnalysis.objects.filter(run=run)
        .order_by()
        .values(field)
        .annotate(
            customers=Count("pk"),
            revenue=Sum("monetary"),
            mean_recency_days=Avg("recency_days"),
            mean_frequency=Avg("frequency"),
            mean_monetary=Avg("monetary"),
            mean_value_score=Avg("value_score"),
        )
    }
    total_customers = sum(int(row["customers"]) for row in rows.values())
    total_revenue = sum((Decimal(row["revenue"] or 0) for row in rows.values()), Decimal(0))
    currency = default_currency()
    summaries = []
    for code, label in segment_codes(run, by):
        row = rows.get(code)
        customers = int(row["customers"]) if row else 0
        revenue = round_for_currency(Decimal(row["revenue"] or 0) if row else Decimal(0), currency)
        mean_monetary = row["mean_monetary"] if row else None
        summaries.append(
            SegmentSummary(
                code=code,
                label=label,
                customers=customers,
                share=customers / total_customers if total_customers else 0.0,
                revenue=revenue,
                revenue_share=(
                    float(Decimal(row["revenue"] or 0) / total_revenue)
                    if row and total_revenue
                    else 0.0
                ),
                mean_recency_days=_float(row["mean_recency_days"]) if row else None,
                mean_frequency=_float(row["mean_frequency"]) if row else None,
                mean_monetary=(
                    round_for_currency(Decimal(mean_monetary), currency)
                    if mean_monetary is not None
                    else None
                ),
                mean_value_score=_float(row["mean_value_score"]) if row else None,
            )
        )
    return summaries


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def resolve_segment(run: AnalysisRun, by: str, name: str) -> str:
    """The code of segment ``name`` of segmentation ``by``: its code, or its label in English
    or Chinese, any case (``champions``, ``Champions``, ``重要价值客户``; a behaviour segment's
    number or name). UnknownSegmentError lists the valid codes."""
    wanted = name.strip().casefold()
    codes = segment_codes(run, by)
    for language in ("en", "zh-hans"):
        with translation.override(language):
            for code, label in segment_codes(run, by):
                if wanted in (code.casefold(), label.casefold()):
                    return code
    valid = ", ".join(code for code, _ in codes)
    raise UnknownSegmentError(f"no {by} segment named {name!r}; use one of: {valid}")


def segment_customers(run: AnalysisRun, by: str, code: str) -> QuerySet[CustomerAnalysis]:
    """The rows of the customers of one segment in ``run`` (with their customer), by external id.

    ``code`` is a segment code of :func:`segment_codes` (see :func:`resolve_segment`).
    """
    field = segmentation_field(by)
    value: str | int = int(code) if by == SegmentationChoices.BEHAVIOUR else code
    return (
        CustomerAnalysis.objects.filter(run=run, **{field: value})
        .select_related("customer")
        .order_by("customer__external_id")
    )


# --- segment migration -------------------------------------------------------------------


@dataclass(frozen=True)
class MigrationCell:
    """Customers who were in segment ``from_code`` in one run and in ``to_code`` in the next."""

    from_code: str
    to_code: str
    customers: int


@dataclass(frozen=True)
class SegmentMigration:
    """How customers moved between the segments of two runs (customers in both runs only).

    ``codes`` and ``labels`` give the rows' and columns' order; ``cells`` holds the non-empty
    cells of the matrix.
    """

    from_run_id: int
    to_run_id: int
    by: str
    codes: tuple[str, ...]
    labels: tuple[str, ...]
    cells: tuple[MigrationCell, ...]

    def count(self, from_code: str, to_code: str) -> int:
        """Customers who moved from ``from_code`` to ``to_code`` (0 when none)."""
        for cell in self.cells:
            if (cell.from_code, cell.to_code) == (from_code, to_code):
                return cell.customers
        return 0


def segment_migration(
    from_run: AnalysisRun, to_run: AnalysisRun, by: str = SegmentationChoices.RFM
) -> SegmentMigration:
    """The matrix of segment moves of the customers analysed in both runs (one SQL join)."""
    field = segmentation_field(by)
    quote = connection.ops.quote_name
    table = quote(CustomerAnalysis._meta.db_table)
    column = quote(field)  # the segment fields have no db_column: name = column
    sql = (
        f"SELECT a.{column}, b.{column}, COUNT(*) FROM {table} a "
        f"JOIN {table} b ON b.customer_id = a.customer_id "
        f"WHERE a.run_id = %s AND b.run_id = %s GROUP BY a.{column}, b.{column}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [from_run.pk, to_run.pk])
        counts = cursor.fetchall()
    codes = segment_codes(to_run, by)
    known = {code for code, _ in codes}
    # Behaviour segments are refitted per run: a segment of the earlier run may not exist later.
    extra = sorted({str(row[0]) for row in counts} - known, key=_segment_sort_key)
    order = {code: index for index, (code, _) in enumerate(codes)}
    order.update({code: len(codes) + index for index, code in enumerate(extra)})
    cells = sorted(
        (MigrationCell(str(a), str(b), int(n)) for a, b, n in counts),
        key=lambda cell: (order[cell.from_code], order[cell.to_code]),
    )
    return SegmentMigration(
        from_run_id=from_run.pk,
        to_run_id=to_run.pk,
        by=by,
        codes=tuple([code for code, _ in codes] + extra),
        labels=tuple([label for _, label in codes] + extra),
        cells=tuple(cells),
    )


def _segment_sort_key(code: str) -> tuple[int, str]:
    return (int(code), "") if code.isdigit() else (1 << 30, code)


# --- cohorts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortRow:
    """Customers first buying in ``cohort_month`` (of ``channel`` when split by channel), and
    how many of them bought in the month ``period`` months later (see engine.cohorts)."""

    cohort_month: dt.date
    channel: str | None
    period: int
    cohort_size: int
    active_customers: int
    retention_rate: float
    orders: int
    revenue: Decimal


def cohort_rows(run: AnalysisRun, by: str | None = None) -> list[CohortRow]:
    """The cohort retention rows kept with ``run`` (``by="channel"``: split by the channel of
    each customer's first order), sorted by cohort month, channel, period; sparse (months in
    which no one of a cohort bought are absent)."""
    if by not in (None, "channel"):
        raise UnknownSegmentError(f"cohorts can be split by channel only, not {by!r}")
    key = "cohorts_by_channel" if by == "channel" else "cohorts"
    currency = default_currency()
    return [
        CohortRow(
            cohort_month=dt.date.fromisoformat(row["cohort_month"]),
            channel=row.get("channel"),
            period=int(row["period"]),
            cohort_size=int(row["cohort_size"]),
            active_customers=int(row["active_customers"]),
            retention_rate=float(row["retention_rate"]),
            orders=int(row["orders"]),
            revenue=round_for_currency(Decimal(str(row["revenue"])), currency),
        )
        for row in run.results.get(key, [])
    ]


# --- loyalty KPIs ------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiFigures:
    """Loyalty KPIs of one period, ``period_start`` to ``period_end`` inclusive (see
    engine.kpis.loyalty_kpis for each definition). Rates are fractions; None where the period
    has nothing to divide by."""

    period_start: dt.date
    period_end: dt.date
    active_customers: int
    new_customers: int
    returning_customers: int
    orders: int
    revenue: Decimal
    repeat_purchase_rate: float | None
    retention_rate: float | None
    churn_rate: float | None
    purchase_frequency: float | None
    average_order_value: Decimal | None
    average_inter_purchase_days: float | None
    median_inter_purchase_days: float | None
    top20_revenue_share: float | None

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> KpiFigures:
        """Figures from a JSON row of :func:`kpi_rows_to_json`."""
        currency = default_currency()
        aov = row.get("average_order_value")
        return cls(
            period_start=dt.date.fromisoformat(row["period_start"]),
            period_end=dt.date.fromisoformat(row["period_end"]),
            active_customers=int(row["active_customers"] or 0),
            new_customers=int(row["new_customers"] or 0),
            returning_customers=int(row["returning_customers"] or 0),
            orders=int(row["orders"] or 0),
            revenue=round_for_currency(Decimal(str(row["revenue"] or 0)), currency),
            repeat_purchase_rate=_float(row.get("repeat_purchase_rate")),
            retention_rate=_float(row.get("retention_rate")),
            churn_rate=_float(row.get("churn_rate")),
            purchase_frequency=_float(row.get("purchase_frequency")),
            average_order_value=(
                None if aov is None else round_for_currency(Decimal(str(aov)), currency)
            ),
            average_inter_purchase_days=_float(row.get("average_inter_purchase_days")),
            median_inter_purchase_days=_float(row.get("median_inter_purchase_days")),
            top20_revenue_share=_float(row.get("top20_revenue_share")),
        )


def frame_to_json(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows of an engine result as JSON-ready dicts: dates and datetimes as ISO text,
    NaN as None (JSON has no NaN)."""
    rows = []
    for row in frame.iter_rows(named=True):
        rows.append({name: _json_value(value) for name, value in row.items()})
    return rows


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.date):  # also datetimes
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, Decimal):
        return float(value)
    return value


def kpi_rows_to_json(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """The rows of engine.kpis.loyalty_kpis / kpi_trend as JSON (kept in a run's results)."""
    return frame_to_json(frame)


def store_orders(as_of: dt.date | None = None) -> pl.DataFrame:
    """The store's counted orders up to ``as_of`` as the engine's order table, read and
    built once for several analyses (see engine.frames.order_summary)."""
    summary: pl.DataFrame = order_summary(order_lines_frame(as_of=as_of))
    return summary


def kpi_figures(start: dt.date, end: dt.date, orders: pl.DataFrame | None = None) -> KpiFigures:
    """Loyalty KPIs of ``start``–``end`` (inclusive shop-local days), computed now from the
    store through the engine; ``orders`` (:func:`store_orders` up to ``end`` or later) spares
    reading the store again. Raises ValueError when ``start`` is after ``end``."""
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    table = kpis.loyalty_kpis(store_orders(end) if orders is None else orders, start, end)
    return KpiFigures.from_json(kpi_rows_to_json(table)[0])


@dataclass(frozen=True)
class GapBucket:
    """How many inter-purchase gaps of a period fell into one range of days."""

    label: str
    gaps: int
    share: float | None


def inter_purchase_buckets(
    start: dt.date, end: dt.date, orders: pl.DataFrame | None = None
) -> list[GapBucket]:
    """The gaps between consecutive orders whose later order falls in ``start``–``end``, by
    range of days (engine.kpis.inter_purchase_distribution), computed now from the store
    (or from ``orders``, as for :func:`kpi_figures`)."""
    source = store_orders(end) if orders is None else orders
    table = kpis.inter_purchase_distribution(source, start, end)
    return [
        GapBucket(
            label=str(row["bucket"]),
            gaps=int(row["gaps"] or 0),
            share=None if row["share"] is None else float(row["share"]),
        )
        for row in table.iter_rows(named=True)
    ]


def successful_runs(limit: int) -> list[AnalysisRun]:
    """The latest ``limit`` successful runs, newest first."""
    return list(
        AnalysisRun.objects.filter(status=AnalysisRunStatusChoices.SUCCEEDED).order_by(
            "-started_at", "-id"
        )[:limit]
    )


def kpi_trend(run: AnalysisRun) -> list[KpiFigures]:
    """The monthly KPI trend kept with ``run`` (up to 24 months to its as-of day), oldest first."""
    return [KpiFigures.from_json(row) for row in run.results.get("kpi_trend", [])]


#: Attribute that :func:`with_latest_analysis` fills on each customer.
LATEST_ANALYSIS_ATTRIBUTE = "latest_analyses"


def with_latest_analysis(
    customers: QuerySet[Customer], run: AnalysisRun | None = None
) -> QuerySet[Customer]:
    """``customers`` with their row of ``run`` (the latest successful run by default)
    prefetched in one query, for :func:`prefetched_analysis` (no query per customer)."""
    run = run or latest_run()
    rows = CustomerAnalysis.objects.filter(run=run).select_related("run")
    if run is None:
        rows = rows.none()
    return customers.prefetch_related(
        models.Prefetch("analyses", queryset=rows, to_attr=LATEST_ANALYSIS_ATTRIBUTE)
    )


def prefetched_analysis(customer: Customer) -> CustomerAnalysis | None:
    """The row prefetched by :func:`with_latest_analysis`; None when the customer has none."""
    rows: list[CustomerAnalysis] = getattr(customer, LATEST_ANALYSIS_ATTRIBUTE, [])
    return rows[0] if rows else None


def prediction_settings(run: AnalysisRun) -> PredictionSettings:
    """The predictive models' settings ``run`` used (the defaults for runs from before them)."""
    stored = run.parameters.get("predictions") or {}
    defaults = PredictionSettings()
    calibration_end = stored.get("calibration_end")
    return PredictionSettings(
        horizon_days=int(stored.get("horizon_days", defaults.horizon_days)),
        clv_months=int(stored.get("clv_months", defaults.clv_months)),
        discount_rate=float(stored.get("discount_rate", defaults.discount_rate)),
        validate=bool(stored.get("validate", False)),
        calibration_end=None if calibration_end is None else dt.date.fromisoformat(calibration_end),
    )


@dataclass(frozen=True)
class ChurnReason:
    """One reason the churn model gave for a customer's risk, worded in English and Chinese."""

    code: str
    value: float | None
    en: str
    zh: str

    def text(self, language: str | None) -> str:
        """The wording in ``language`` (Chinese for any ``zh*``, else English)."""
        return self.zh if (language or "").lower().startswith("zh") else self.en


def churn_reasons(analysis: CustomerAnalysis) -> list[ChurnReason]:
    """The customer's churn reasons as kept by the run, strongest first."""
    reasons = []
    for item in analysis.churn_reasons or []:
        value = item.get("value")
        reasons.append(
            ChurnReason(
                code=str(item.get("code", "")),
                value=None if value is None else float(value),
                en=str(item.get("en", "")),
                zh=str(item.get("zh", item.get("en", ""))),
            )
        )
    return reasons


def value_at_risk(analysis: CustomerAnalysis) -> Decimal | None:
    """CLV × churn probability, to the cent; None without both."""
    if analysis.clv is None or analysis.churn_probability is None:
        return None
    return (analysis.clv * Decimal(str(analysis.churn_probability))).quantize(Decimal("0.01"))


def model_runs(analysis: AnalysisRun | None = None, limit: int = 50) -> list[ModelRun]:
    """Model runs of ``analysis``, or of the latest ``limit`` analysis runs, newest first."""
    runs = ModelRun.objects.select_related("analysis")
    if analysis is not None:
        return list(runs.filter(analysis=analysis).order_by("id"))
    return list(runs.order_by("-analysis__started_at", "-analysis_id", "id")[:limit])
