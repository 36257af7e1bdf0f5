"""Run the customer analytics over the store and keep what it found (``patron analyze``).

One run reads every order of the store once (:func:`patron.analytics.selectors.order_lines_frame`),
hands that table to the engine (RFM, lifecycle, AHP value, behaviour segments, cohorts, KPI
trend) on Polars or on Spark, and writes one :class:`CustomerAnalysis` row per customer and the
run's record in one transaction. Earlier runs are never touched.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import narwhals as nw
import polars as pl
from django.db import connection, transaction
from django.utils import timezone

from patron.analytics.choices import (
    AnalysisEngineChoices,
    AnalysisRunStatusChoices,
    SegmentationChoices,
)
from patron.analytics.models import AnalysisRun, CustomerAnalysis, ModelRun
from patron.analytics.prediction_settings import PredictionSettings
from patron.analytics.predictions import (
    PREDICTION_COLUMNS,
    ModelRunRecord,
    json_safe,
    predict_customers,
)
from patron.analytics.selectors import (
    frame_to_json,
    latest_run,
    order_lines_frame,
    resolve_segment,
    segment_customers,
    segment_summary,
    shop_zone,
)
from patron.core.bulk import insert_frame
from patron.core.money import MONEY_DECIMAL_PLACES, MONEY_MAX_DIGITS
from patron.customers.models import Customer
from patron.engine import ahp, cohorts, kpis, lifecycle, rfm, segments
from patron.engine.frames import (
    CANCELLED_STATUS,
    EngineInputError,
    date_month_number,
    month_start,
    order_summary,
)

#: Months of KPI trend kept with a run (the as-of month and the 23 before it).
KPI_TREND_MONTHS = 24

_MONEY = pl.Decimal(MONEY_MAX_DIGITS, MONEY_DECIMAL_PLACES)


class AnalysisError(RuntimeError):
    """The analysis could not run (no orders yet, a refused AHP matrix, ...); says why."""


@dataclass(frozen=True)
class _Computed:
    """What the engine found: one row per customer, and the run's parameters and results."""

    customers: pl.DataFrame
    parameters: dict[str, Any]
    results: dict[str, Any]
    model_runs: list[ModelRunRecord]


def run_analysis(
    as_of: dt.date | None = None,
    engine: str = AnalysisEngineChoices.POLARS,
    thresholds: lifecycle.LifecycleThresholds | None = None,
    ahp_matrix: Sequence[Sequence[float]] | None = None,
    triggered_by: str = "command",
    predictions: PredictionSettings | None = None,
    with_models: bool = True,
) -> AnalysisRun:
    """Analyse the store's customers as of the end of day ``as_of`` and keep the results.

    ``as_of`` defaults to the shop-local day of the latest counted order, so that a
    historical dataset (CDNOW ends in 1998) is analysed as of its own end rather than today.
    ``thresholds`` overrides the lifecycle thresholds derived from the shop's purchase gaps;
    ``ahp_matrix`` the default pairwise comparison matrix of the value score (criteria
    recency, frequency, monetary, tenure in that order). ``predictions`` sets up the
    predictive models (CLV, churn, next purchase; see ``patron.analytics.predictions``),
    which ``with_models=False`` skips; a model that cannot be fitted on this shop is kept as
    a failed ``ModelRun`` and leaves its predictions empty without failing the run.

    The run is recorded as running before anything is read, so a crash leaves a trace. On
    success it holds one :class:`CustomerAnalysis` per customer with a counted order by
    ``as_of``, written in one transaction with the run's parameters and results. On failure
    it is marked failed with the message and :class:`AnalysisError` is raised.
    """
    if engine not in AnalysisEngineChoices.values:
        choices = ", ".join(AnalysisEngineChoices.values)
        raise AnalysisError(f"unknown engine {engine!r}; use one of: {choices}")
    began = time.perf_counter()
    run = AnalysisRun.objects.create(
        as_of=as_of or timezone.localdate(),
        status=AnalysisRunStatusChoices.RUNNING,
        engine=engine,
        started_at=timezone.now(),
        triggered_by=triggered_by,
    )
    try:
        lines = order_lines_frame(as_of)
        counted = lines.filter(pl.col("status") != CANCELLED_STATUS)
        if counted.height == 0:
            until = f" up to {as_of}" if as_of else ""
            raise AnalysisError(
                f"the store holds no counted orders{until}: import orders first "
                "(patron import orders FILE) or build the demo shop (patron demo)"
            )
        latest: dt.datetime = counted["ordered_at"].max()  # type: ignore[assignment]
        day = as_of or latest.date()
        if predictions is not None:
            predictions.check(day)
        computed = _compute(
            lines, day, engine, thresholds, ahp_matrix, predictions, with_models=with_models
        )
        with transaction.atomic():
            _write_customer_rows(run, computed.customers)
            _write_model_runs(run, computed.model_runs)
            run.as_of = day
            run.customers = computed.customers.height
            run.orders = counted.height
            run.data_through = latest.replace(tzinfo=shop_zone())
            run.parameters = computed.parameters
            run.results = computed.results
            run.results["segments"] = _segment_summaries(run)
            run.status = AnalysisRunStatusChoices.SUCCEEDED
            run.finished_at = timezone.now()
            run.duration_seconds = time.perf_counter() - began
            run.save()
    except EngineInputError as error:
        _mark_failed(run, began, str(error))
        raise AnalysisError(f"analysis #{run.pk} failed: {error}") from error
    except AnalysisError as error:
        _mark_failed(run, began, str(error))
        raise
    except Exception as error:
        # Anything unforeseen still closes the run's record before it propagates.
        _mark_failed(run, began, f"{type(error).__name__}: {error}")
        raise
    return run


def _mark_failed(run: AnalysisRun, began: float, message: str) -> None:
    run.status = AnalysisRunStatusChoices.FAILED
    run.error = message
    run.finished_at = timezone.now()
    run.duration_seconds = time.perf_counter() - began
    run.save(update_fields=["status", "error", "finished_at", "duration_seconds"])


def _compute(
    lines: pl.DataFrame,
    as_of: dt.date,
    engine: str,
    thresholds: lifecycle.LifecycleThresholds | None,
    ahp_matrix: Sequence[Sequence[float]] | None,
    predictions: PredictionSettings | None,
    with_models: bool,
) -> _Computed:
    """Run every engine function on ``lines`` (turned into a Spark frame for ``spark``).

    The order table is built once and handed to every analysis, which then skips its own
    group-by over the lines (see engine.frames.order_summary). The predictive models are
    numpy fits of per-customer summaries and run in-process on either engine.
    """
    orders = order_summary(lines) if engine == AnalysisEngineChoices.POLARS else None
    if engine == AnalysisEngineChoices.POLARS:
        computed = _compute_on(orders, as_of, thresholds, ahp_matrix)
    else:
        # Cached: every analysis reads it again, and without the cache each plan embeds the
        # whole local table, which multiplies the driver's memory in the larger plans.
        native = order_summary(_spark_frame(lines)).cache()
        try:
            computed = _compute_on(native, as_of, thresholds, ahp_matrix)
        finally:
            native.unpersist()
    if not with_models:
        return computed
    predicted = predict_customers(
        orders if orders is not None else order_summary(lines), as_of, predictions
    )
    return _Computed(
        customers=computed.customers.join(predicted.customers, on="customer_id", how="left"),
        parameters={
            **computed.parameters,
            "predictions": json_safe(asdict(predictions or PredictionSettings())),
        },
        results=computed.results,
        model_runs=predicted.model_runs,
    )


def _compute_on(
    native: Any,
    as_of: dt.date,
    thresholds: lifecycle.LifecycleThresholds | None,
    ahp_matrix: Sequence[Sequence[float]] | None,
) -> _Computed:
    rfm_table = rfm.rfm_table(native, as_of)
    derived = thresholds is None
    chosen = thresholds or lifecycle.lifecycle_thresholds(native, as_of)
    stages = lifecycle.lifecycle_stages(native, as_of, chosen)
    matrix = ahp_matrix if ahp_matrix is not None else ahp.DEFAULT_VALUE_MATRIX
    criteria = tuple(ahp.DEFAULT_VALUE_CRITERIA)
    weights = ahp.ahp_weights(matrix, criteria)
    values = ahp.value_scores(rfm_table, matrix=matrix)
    behaviour = segments.behaviour_segments(
        segments.behaviour_features(native, as_of), single_when_unsplittable=True
    )
    trend_start = month_start(date_month_number(as_of) - (KPI_TREND_MONTHS - 1))

    customers = (
        to_polars(rfm_table)
        .join(to_polars(stages).select("customer_id", "lifecycle_stage"), on="customer_id")
        .join(
            to_polars(values).select("customer_id", "value_score", "value_tier"), on="customer_id"
        )
        .join(
            to_polars(behaviour.assignments).select(
                "customer_id", "behaviour_segment", "behaviour_segment_name"
            ),
            on="customer_id",
        )
    )
    parameters = {
        "lifecycle_thresholds": {**asdict(chosen), "derived": derived},
        "ahp": {
            "criteria": list(weights.criteria),
            "columns": {name: list(ahp.DEFAULT_VALUE_CRITERIA[name]) for name in criteria},
            "matrix": [[float(value) for value in row] for row in matrix],
            "weights": list(weights.weights),
            "lambda_max": weights.lambda_max,
            "consistency_index": weights.consistency_index,
            "consistency_ratio": weights.consistency_ratio,
            "tiers": [asdict(tier) for tier in ahp.DEFAULT_VALUE_TIERS],
        },
        "behaviour": {
            "k": behaviour.k,
            "silhouette_by_k": {str(k): score for k, score in behaviour.silhouette_by_k.items()},
        },
    }
    results = {
        "behaviour_profiles": [_profile_json(profile) for profile in behaviour.profiles],
        "cohorts": frame_to_json(to_polars(cohorts.cohort_retention(native, as_of))),
        "cohorts_by_channel": frame_to_json(
            to_polars(cohorts.cohort_retention(native, as_of, by="channel"))
        ),
        "kpi_trend": frame_to_json(
            to_polars(kpis.kpi_trend(native, trend_start, as_of, every="month"))
        ),
    }
    return _Computed(customers=customers, parameters=parameters, results=results, model_runs=[])


def _profile_json(profile: segments.SegmentProfile) -> dict[str, Any]:
    return {
        "segment": int(profile.segment),
        "name": profile.name,
        "name_zh": profile.name_zh,
        "size": int(profile.size),
        "share": float(profile.share),
        "revenue_share": float(profile.revenue_share),
        "means": {name: float(value) for name, value in profile.means.items()},
    }


def to_polars(native: Any) -> pl.DataFrame:
    """An engine result of any kind (Polars, a LazyFrame, Spark) as an eager Polars frame."""
    if isinstance(native, pl.DataFrame):
        return native
    frame = nw.from_native(native)
    if isinstance(frame, nw.DataFrame):
        return frame.to_polars()
    return frame.collect(backend="polars").to_native()


def _spark_frame(lines: pl.DataFrame) -> Any:
    """``lines`` as a Spark DataFrame of the local (or ``PATRON_SPARK_MASTER``) session.

    The session counts in UTC so that the naive shop-local times keep their calendar day.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise AnalysisError(
            "--engine spark needs PySpark and Java: pip install 'patron[spark]'"
        ) from error
    master = os.environ.get("PATRON_SPARK_MASTER", "local[*]")
    builder = (
        SparkSession.builder.master(master)
        .appName("patron-analyze")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if master.startswith("local"):
        # Spark's default of 200 shuffle partitions is meant for a cluster: on one machine the
        # many small shuffles of a shop's tables then spend their time scheduling empty tasks.
        builder = builder.config("spark.sql.shuffle.partitions", "4")
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark.createDataFrame(lines.to_pandas())


def _write_customer_rows(run: AnalysisRun, customers: pl.DataFrame) -> None:
    """Insert one CustomerAnalysis row per customer in one set-based write."""
    with connection.cursor() as cursor:
        table = connection.ops.quote_name(Customer._meta.db_table)
        cursor.execute(f"SELECT id, external_id FROM {table}")
        ids = pl.DataFrame(
            cursor.fetchall(), schema={"pk": pl.Int64, "customer_id": pl.String}, orient="row"
        )
    rows = customers.join(ids, on="customer_id", how="left")
    unknown = rows.filter(pl.col("pk").is_null())["customer_id"]
    if unknown.len():
        raise AnalysisError(f"customers not in the store: {', '.join(unknown.head(5))}")
    frame = rows.select(
        pl.lit(run.pk, dtype=pl.Int64).alias("run_id"),
        pl.col("pk").alias("customer_id"),
        pl.col("recency_days").cast(pl.Int64),
        pl.col("tenure_days").cast(pl.Int64),
        pl.col("frequency").cast(pl.Int64),
        pl.col("monetary").round(MONEY_DECIMAL_PLACES).cast(_MONEY),
        pl.col("average_order_value").round(MONEY_DECIMAL_PLACES).cast(_MONEY),
        pl.col("r_score").cast(pl.Int64),
        pl.col("f_score").cast(pl.Int64),
        pl.col("m_score").cast(pl.Int64),
        pl.col("rfm_segment").cast(pl.String),
        pl.col("value_class").cast(pl.String),
        pl.col("lifecycle_stage").cast(pl.String),
        pl.col("value_score").cast(pl.Float64),
        pl.col("value_tier").cast(pl.String),
        pl.col("behaviour_segment").cast(pl.Int64),
        pl.col("behaviour_segment_name").cast(pl.String),
        *_prediction_columns(rows),
    )
    insert_frame(CustomerAnalysis._meta.db_table, frame)


def _prediction_columns(rows: pl.DataFrame) -> list[pl.Expr]:
    """The prediction columns to write: null where a model was not fitted or not run."""
    columns = []
    for name, dtype in PREDICTION_COLUMNS.items():
        column = pl.col(name) if name in rows.columns else pl.lit(None, dtype=dtype)
        if name == "clv":
            column = column.round(MONEY_DECIMAL_PLACES).cast(_MONEY)
        elif name == "churn_reasons":
            column = column.fill_null("[]")
        columns.append(column.cast(_MONEY if name == "clv" else dtype).alias(name))
    return columns


def _write_model_runs(run: AnalysisRun, records: Sequence[ModelRunRecord]) -> None:
    """Keep each model's fit with the analysis run."""
    ModelRun.objects.bulk_create(ModelRun(analysis=run, **asdict(record)) for record in records)


def _segment_summaries(run: AnalysisRun) -> dict[str, list[dict[str, Any]]]:
    """Every segmentation's summary as JSON, kept with the run for trends across runs."""
    return {
        by: [
            {
                "code": summary.code,
                "customers": summary.customers,
                "share": summary.share,
                "revenue": str(summary.revenue),
                "revenue_share": summary.revenue_share,
                "mean_recency_days": summary.mean_recency_days,
                "mean_frequency": summary.mean_frequency,
                "mean_monetary": (
                    None if summary.mean_monetary is None else str(summary.mean_monetary)
                ),
                "mean_value_score": summary.mean_value_score,
            }
            for summary in segment_summary(run, by)
        ]
        for by in SegmentationChoices.values
    }


#: Columns of a segment export, in order.
EXPORT_COLUMNS = (
    "external_id",
    "name",
    "email",
    "phone",
    "as_of",
    "recency_days",
    "tenure_days",
    "frequency",
    "monetary",
    "average_order_value",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "value_class",
    "lifecycle_stage",
    "value_score",
    "value_tier",
    "behaviour_segment",
    "behaviour_segment_name",
)
EXPORT_FORMATS = (".csv", ".parquet")


@dataclass(frozen=True)
class SegmentExport:
    """What :func:`export_segment` wrote."""

    path: Path
    run_id: int
    by: str
    segment: str
    customers: int


def export_segment(
    name: str, path: Path, by: str = SegmentationChoices.RFM, run: AnalysisRun | None = None
) -> SegmentExport:
    """Write the customers of one segment, with their contact and all their scores, to ``path``.

    The format follows the extension: ``.csv`` (UTF-8, money as decimal text) or ``.parquet``
    (money as Decimal). ``name`` is a segment code or label (see ``selectors.resolve_segment``)
    of segmentation ``by``, in ``run`` (the latest successful run by default). Raises
    :class:`AnalysisError` when there is no run, and ``UnknownSegmentError`` (listing the valid
    names) for an unknown segment.
    """
    suffix = path.suffix.lower()
    if suffix not in EXPORT_FORMATS:
        raise AnalysisError(f"{path}: write a {' or '.join(EXPORT_FORMATS)} file")
    run = run or latest_run()
    if run is None:
        raise AnalysisError("no analysis has run yet: run `patron analyze` first")
    code = resolve_segment(run, by, name)
    rows = segment_customers(run, by, code).values_list(
        "customer__external_id",
        "customer__name",
        "customer__email",
        "customer__phone",
        "run__as_of",
        *EXPORT_COLUMNS[5:],
    )
    frame = pl.DataFrame(
        list(rows),
        schema={
            "external_id": pl.String,
            "name": pl.String,
            "email": pl.String,
            "phone": pl.String,
            "as_of": pl.Date,
            "recency_days": pl.Int64,
            "tenure_days": pl.Int64,
            "frequency": pl.Int64,
            "monetary": _MONEY,
            "average_order_value": _MONEY,
            "r_score": pl.Int64,
            "f_score": pl.Int64,
            "m_score": pl.Int64,
            "rfm_segment": pl.String,
            "value_class": pl.String,
            "lifecycle_stage": pl.String,
            "value_score": pl.Float64,
            "value_tier": pl.String,
            "behaviour_segment": pl.Int64,
            "behaviour_segment_name": pl.String,
        },
        orient="row",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        # The byte-order mark makes Excel read the file as UTF-8: without it Chinese names are
        # garbled on a Chinese Windows, which guesses GBK.
        frame.write_csv(path, include_bom=True)
    else:
        frame.write_parquet(path)
    return SegmentExport(path=path, run_id=run.pk, by=by, segment=code, customers=frame.height)
