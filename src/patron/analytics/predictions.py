"""Fit the predictive models on the store and predict each customer (part of ``patron analyze``).

One call of :func:`predict_customers` takes the store's order table (one row per counted
order, :func:`patron.engine.frames.order_summary`) and, as of a day:

- summarises each customer in days (``rfm_summary``: repeat purchase days, recency, age and
  the mean net spend of the repeat purchases),
- fits BG/NBD (purchases) and Gamma-Gamma (spend) on it and predicts P(alive), the expected
  purchases of the churn horizon, the next purchase date with an interval and the CLV,
- with ``validate``, also fits both on the data up to ``calibration_end`` and compares their
  forecast with what the customers did after it (the holdout): totals, per-customer errors
  and the fit plots of the model page,
- fits the churn model (its own time split, docs/churn.md) and scores every customer with
  the reasons.

Every model is recorded as a :class:`ModelRunRecord` (written as ``ModelRun`` rows by the
caller); a model that cannot be fitted on this shop (too few repeat customers, too short a
history) is recorded as failed with the reason, and its predictions stay empty: the rest of
the analysis still stands.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from patron.analytics.choices import AnalysisRunStatusChoices, PredictiveModelChoices
from patron.analytics.prediction_settings import PredictionSettings
from patron.engine.churn import ChurnModel, ChurnModelError
from patron.engine.clv import (
    BetaGeoModel,
    GammaGammaModel,
    ModelFitError,
    conditional_expectations,
    cumulative_tracking,
    customer_lifetime_value,
    frequency_histogram,
    next_purchase,
    rfm_summary,
)
from patron.engine.frames import EngineInputError

#: The time unit of the store's models: days (purchases on one day are one occasion).
TIME_UNIT = "D"
#: Quantiles of the next-purchase interval: earliest, expected (median), latest.
NEXT_PURCHASE_QUANTILES = (0.1, 0.5, 0.9)
#: Next-purchase dates further out than this are left empty: not expected within ten years.
MAX_NEXT_PURCHASE_DAYS = 3_650
#: Calibration frequencies shown one by one in the fit plots; higher ones are grouped.
PLOT_MAX_FREQUENCY = 7

_FIT_ERRORS = (ModelFitError, EngineInputError, ChurnModelError, ArithmeticError)


@dataclass
class ModelRunRecord:
    """One model's fit, as the ``ModelRun`` row the caller writes."""

    kind: str
    status: str
    data_start: dt.date | None
    calibration_end: dt.date
    data_end: dt.date
    validated: bool = False
    time_unit: str = TIME_UNIT
    customers: int = 0
    parameters: dict[str, Any] = field(default_factory=dict)
    standard_errors: dict[str, Any] = field(default_factory=dict)
    log_likelihood: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    duration_seconds: float = 0.0


@dataclass
class Predictions:
    """Per-customer predictions (``customer_id`` and :data:`PREDICTION_COLUMNS`) and the runs."""

    customers: pl.DataFrame
    model_runs: list[ModelRunRecord]


#: The prediction columns of :attr:`Predictions.customers`, with their Polars types.
PREDICTION_COLUMNS: dict[str, Any] = {
    "clv": pl.Float64,
    "p_alive": pl.Float64,
    "expected_purchases_90d": pl.Float64,
    "churn_probability": pl.Float64,
    "churn_reasons": pl.String,  # JSON text
    "next_purchase_expected_at": pl.Date,
    "next_purchase_earliest": pl.Date,
    "next_purchase_latest": pl.Date,
}


def predict_customers(
    orders: pl.DataFrame, as_of: dt.date, settings: PredictionSettings | None = None
) -> Predictions:
    """Fit BG/NBD, Gamma-Gamma and the churn model on ``orders`` as of ``as_of`` and predict.

    ``orders`` is a Polars order table (``order_summary``) of counted orders; only orders up to
    the end of ``as_of`` count. Returns one row per customer with an order by then, each
    prediction null where its model could not be fitted, and one record per model.
    """
    settings = settings or PredictionSettings()
    settings.check(as_of)
    orders = orders.filter(pl.col("ordered_at").dt.date() <= as_of)
    data_start: dt.date | None = (
        orders["ordered_at"].min().date() if orders.height else None  # type: ignore[union-attr]
    )
    summary = rfm_summary(
        orders,
        "customer_id",
        "ordered_at",
        "net_amount",
        observation_end=as_of,
        time_unit=TIME_UNIT,
    )
    window = {"data_start": data_start, "calibration_end": as_of, "data_end": as_of}
    customers = summary.select("customer_id")
    runs: list[ModelRunRecord] = []

    purchases, purchase_run = _fit(
        PredictiveModelChoices.BG_NBD, window, lambda: BetaGeoModel().fit(summary)
    )
    spend_data = _spend_data(summary)
    spend, spend_run = _fit(
        PredictiveModelChoices.GAMMA_GAMMA,
        window,
        lambda: GammaGammaModel().fit(spend_data.filter(pl.col("frequency") > 0)),
    )
    if isinstance(purchases, BetaGeoModel):
        _describe_transaction_fit(purchase_run, purchases, summary)
        horizon = float(settings.horizon_days)
        alive = purchases.p_alive(summary)
        expected = purchases.expected_purchases(horizon, summary)
        if _degenerate(purchase_run, alive, expected):
            purchases = None
        else:
            customers = customers.with_columns(
                pl.Series("p_alive", alive), pl.Series("expected_purchases_90d", expected)
            ).hstack(_next_purchase_dates(purchases, summary, as_of))
    if isinstance(spend, GammaGammaModel):
        _describe_spend_fit(spend_run, spend, spend_data)
        if isinstance(purchases, BetaGeoModel):
            clv = customer_lifetime_value(
                purchases,
                spend,
                spend_data,
                months=settings.clv_months,
                discount_rate=settings.discount_rate,
                time_unit=TIME_UNIT,
            )
            if not _degenerate(spend_run, clv):
                customers = customers.with_columns(pl.Series("clv", clv))
                spend_run.metrics["total_customer_equity"] = float(np.sum(clv))
    if settings.validate and settings.calibration_end is not None:
        _validate(purchase_run, spend_run, orders, as_of, settings.calibration_end)
    runs += [purchase_run, spend_run]

    churn_window = {**window, "calibration_end": as_of - dt.timedelta(days=settings.horizon_days)}
    churn, churn_run = _fit(
        PredictiveModelChoices.CHURN,
        churn_window,
        lambda: ChurnModel(horizon_days=settings.horizon_days).fit(orders, as_of),
    )
    churn_run.validated = True
    if isinstance(churn, ChurnModel):
        churn_run.customers = int(churn.metrics_["validation"]["customers"])
        churn_run.parameters = {"horizon_days": settings.horizon_days}
        churn_run.metrics = json_safe(churn.metrics_)
        scored = churn.predict(orders, as_of)
        customers = customers.join(
            scored.select(
                "customer_id",
                "churn_probability",
                pl.col("reasons")
                .map_elements(_reasons_json, return_dtype=pl.String)
                .alias("churn_reasons"),
            ),
            on="customer_id",
            how="left",
        )
    runs.append(churn_run)

    for name, dtype in PREDICTION_COLUMNS.items():
        if name not in customers.columns:
            customers = customers.with_columns(pl.lit(None, dtype=dtype).alias(name))
    customers = customers.with_columns(pl.col("churn_reasons").fill_null("[]"))
    return Predictions(
        customers=customers.select("customer_id", *PREDICTION_COLUMNS), model_runs=runs
    )


def _fit(
    kind: str, window: dict[str, Any], fit: Callable[[], Any]
) -> tuple[Any | None, ModelRunRecord]:
    """Run ``fit`` and record it; a model that cannot be fitted is recorded as failed."""
    began = time.perf_counter()
    record = ModelRunRecord(kind=kind, status=AnalysisRunStatusChoices.SUCCEEDED, **window)
    try:
        model = fit()
    except _FIT_ERRORS as error:
        record.status = AnalysisRunStatusChoices.FAILED
        record.error = str(error)
        model = None
    record.duration_seconds = time.perf_counter() - began
    return model, record


def _degenerate(record: ModelRunRecord, *predictions: Any) -> bool:
    """Whether a fitted model predicts something that is not a finite number for a customer
    (with one or two customers the likelihood has no proper maximum and the parameters run
    off to extremes); if so the run is kept as failed, saying why, and its predictions stay
    empty rather than stored as NaN."""
    bad = sum(int(np.count_nonzero(~np.isfinite(np.asarray(values)))) for values in predictions)
    if bad == 0:
        return False
    record.status = AnalysisRunStatusChoices.FAILED
    record.error = (
        f"the fit is degenerate on this data: {bad} prediction(s) are not finite numbers "
        f"(parameters {json_safe(record.parameters)}); more customers with repeat purchases "
        "are needed"
    )
    return True


def _spend_data(summary: pl.DataFrame) -> pl.DataFrame:
    """The summary as the spend model reads it.

    A repeat customer whose repeat orders were all refunded has a mean spend of 0, which the
    Gamma-Gamma model cannot take: their spend counts as unknown (no repeat purchase), so
    they get the shop's mean spend rather than an error for the whole shop.
    """
    return summary.with_columns(
        pl.when(pl.col("monetary_value") > 0)
        .then(pl.col("frequency"))
        .otherwise(0.0)
        .alias("frequency")
    )


def _describe_transaction_fit(
    record: ModelRunRecord, model: BetaGeoModel, summary: pl.DataFrame
) -> None:
    record.customers = summary.height
    record.parameters = dict(model.params_)
    record.standard_errors = json_safe(dict(model.params_se_))
    record.log_likelihood = float(model.log_likelihood_)
    record.metrics.update(
        {
            "repeat_customers": int((summary["frequency"] > 0).sum()),
            "repeat_purchases": float(summary["frequency"].sum()),
        }
    )
    record.diagnostics["frequency_histogram"] = _rows(
        frequency_histogram(model, summary, max_frequency=PLOT_MAX_FREQUENCY)
    )


def _describe_spend_fit(
    record: ModelRunRecord, model: GammaGammaModel, spend_data: pl.DataFrame
) -> None:
    repeat = spend_data.filter(pl.col("frequency") > 0)
    record.customers = repeat.height
    record.parameters = dict(model.params_)
    record.standard_errors = json_safe(dict(model.params_se_))
    record.log_likelihood = float(model.log_likelihood_)
    expected = model.expected_spend(repeat)
    record.metrics.update(
        {
            "population_mean_spend": _finite(
                model.params_["p"] * model.params_["gamma"] / (model.params_["q"] - 1.0)
            ),
            "observed_mean_spend": (
                float(np.mean(repeat["monetary_value"].to_numpy())) if repeat.height else None
            ),
            "expected_mean_spend": float(np.mean(expected)) if expected.size else None,
        }
    )


def _validate(
    purchase_run: ModelRunRecord,
    spend_run: ModelRunRecord,
    orders: pl.DataFrame,
    as_of: dt.date,
    calibration_end: dt.date,
) -> None:
    """Fit both models up to ``calibration_end`` and compare with the holdout that follows."""
    calibration = rfm_summary(
        orders,
        "customer_id",
        "ordered_at",
        "net_amount",
        observation_end=as_of,
        calibration_end=calibration_end,
        time_unit=TIME_UNIT,
    )
    duration = float((as_of - calibration_end).days)
    if purchase_run.status == AnalysisRunStatusChoices.SUCCEEDED:
        purchase_run.validated = True
        try:
            model = BetaGeoModel().fit(calibration)
        except _FIT_ERRORS as error:
            purchase_run.metrics["validation"] = {"error": str(error)}
        else:
            expected = model.expected_purchases(duration, calibration)
            actual = calibration["frequency_holdout"].to_numpy()
            purchase_run.metrics["validation"] = {
                "calibration_end": calibration_end.isoformat(),
                "holdout_days": duration,
                "customers": calibration.height,
                "parameters": dict(model.params_),
                "log_likelihood": float(model.log_likelihood_),
                "holdout_purchases_actual": float(actual.sum()),
                "holdout_purchases_expected": float(expected.sum()),
                "total_error": _relative(float(expected.sum()), float(actual.sum())),
                "mean_absolute_error": float(np.mean(np.abs(expected - actual))),
                "correlation": _correlation(expected, actual),
            }
            purchase_run.diagnostics["conditional_expectations"] = _rows(
                conditional_expectations(model, calibration, max_frequency=PLOT_MAX_FREQUENCY)
            )
            purchase_run.diagnostics["tracking"] = _rows(
                cumulative_tracking(
                    model,
                    orders,
                    "customer_id",
                    "ordered_at",
                    calibration_end=calibration_end,
                    observation_end=as_of,
                    time_unit=TIME_UNIT,
                )
            )
    if spend_run.status == AnalysisRunStatusChoices.SUCCEEDED:
        spend_run.validated = True
        spend_data = _spend_data(calibration)
        try:
            spend = GammaGammaModel().fit(spend_data.filter(pl.col("frequency") > 0))
        except _FIT_ERRORS as error:
            spend_run.metrics["validation"] = {"error": str(error)}
        else:
            buyers = spend_data.filter(
                (pl.col("frequency") > 0) & (pl.col("frequency_holdout") > 0)
            )
            expected = spend.expected_spend(buyers)
            actual = buyers["monetary_value_holdout"].to_numpy()
            spend_run.metrics["validation"] = {
                "calibration_end": calibration_end.isoformat(),
                "parameters": dict(spend.params_),
                "customers": buyers.height,
                "mean_spend_actual": float(actual.mean()) if actual.size else None,
                "mean_spend_expected": float(expected.mean()) if expected.size else None,
                "mean_absolute_error": (
                    float(np.mean(np.abs(expected - actual))) if actual.size else None
                ),
                "correlation": _correlation(expected, actual),
            }


def _next_purchase_dates(
    model: BetaGeoModel, summary: pl.DataFrame, as_of: dt.date
) -> pl.DataFrame:
    """Earliest, expected (median) and latest next-purchase dates, if the customer is active.

    The model gives days after ``as_of`` (the end of observation); they are rounded up to
    whole days, since a purchase on ``as_of`` itself was already seen. A date more than
    :data:`MAX_NEXT_PURCHASE_DAYS` away is left empty: a one-off buyer of a shop where most
    never return can have a median wait of decades, which no one should plan with.
    """
    interval = next_purchase(model, summary, quantiles=NEXT_PURCHASE_QUANTILES)
    names = {
        "next_purchase_earliest": NEXT_PURCHASE_QUANTILES[0],
        "next_purchase_expected_at": NEXT_PURCHASE_QUANTILES[1],
        "next_purchase_latest": NEXT_PURCHASE_QUANTILES[2],
    }
    columns = {}
    for name, quantile in names.items():
        whole_days = pl.col(_quantile_column(quantile)).ceil().clip(lower_bound=1)
        columns[name] = (
            pl.when(whole_days <= MAX_NEXT_PURCHASE_DAYS)
            .then(pl.lit(as_of) + pl.duration(days=whole_days.cast(pl.Int64)))
            .otherwise(None)
            .cast(pl.Date)
        )
    return interval.select(**columns)


def _quantile_column(quantile: float) -> str:
    return f"next_purchase_q{quantile * 100:g}"


def _reasons_json(reasons: Any) -> str:
    if reasons is None:
        return "[]"
    items = reasons.to_list() if isinstance(reasons, pl.Series) else list(reasons)
    return json.dumps(json_safe(items), ensure_ascii=False)


def _rows(frame: Any) -> list[dict[str, Any]]:
    """A small Polars result as JSON-ready rows."""
    table = frame if isinstance(frame, pl.DataFrame) else pl.DataFrame(frame)
    return [json_safe(row) for row in table.to_dicts()]


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as None and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _relative(estimate: float, actual: float) -> float | None:
    return (estimate - actual) / actual if actual else None


def _correlation(first: np.ndarray, second: np.ndarray) -> float | None:
    if first.size < 2 or np.std(first) == 0 or np.std(second) == 0:
        return None
    return float(np.corrcoef(first, second)[0, 1])
