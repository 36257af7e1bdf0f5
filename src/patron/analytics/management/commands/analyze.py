"""``patron analyze [--as-of DATE] [--engine polars|spark] [--new-days N --at-risk-days N
--lapsed-days N] [--ahp-matrix JSON] [--validate --calibration-end DATE] [--horizon-days N]
[--clv-months N] [--discount-rate R] [--no-models] [--no-recommendations]``: analyse the store's
customers, fit the predictive models and train the recommendations."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from patron.analytics.choices import (
    AnalysisEngineChoices,
    AnalysisRunStatusChoices,
    SegmentationChoices,
)
from patron.analytics.models import AnalysisRun
from patron.analytics.prediction_settings import PredictionSettings
from patron.analytics.selectors import segment_summary
from patron.analytics.services import AnalysisError, run_analysis
from patron.engine.lifecycle import LifecycleThresholds

THRESHOLD_OPTIONS = ("new_days", "at_risk_days", "lapsed_days")


def _day(text: str, option: str = "--as-of") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"{option} {text!r}: not a date (use YYYY-MM-DD)") from error


def _calibration_day(text: str) -> date:
    return _day(text, "--calibration-end")


class Command(BaseCommand):
    help = (
        "Compute every customer's RFM scores and segment, value class, lifecycle stage, AHP "
        "value score and behaviour segment, the cohorts and the KPI trend, and keep them as a "
        "new analysis run (earlier runs stay); fit the BG/NBD, Gamma-Gamma and churn models "
        "and keep each customer's CLV, P(alive), churn risk with reasons and next purchase date."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of",
            type=_day,
            default=None,
            help="last day counted, YYYY-MM-DD (default: the day of the latest order)",
        )
        parser.add_argument(
            "--engine",
            choices=AnalysisEngineChoices.values,
            default=AnalysisEngineChoices.POLARS,
            help="dataframe engine (polars, in-process; spark needs PySpark and Java)",
        )
        for option in THRESHOLD_OPTIONS:
            parser.add_argument(
                f"--{option.replace('_', '-')}",
                type=int,
                default=None,
                help="lifecycle threshold in days; give all three or none (derived)",
            )
        parser.add_argument(
            "--ahp-matrix",
            default=None,
            help=(
                "pairwise comparison matrix of the value score as JSON, rows and columns "
                "recency, frequency, monetary, tenure: [[1, 0.5, 0.33, 2], ...]"
            ),
        )
        parser.add_argument(
            "--validate",
            action="store_true",
            help="also fit the CLV models up to --calibration-end and compare with what followed",
        )
        parser.add_argument(
            "--calibration-end",
            type=_calibration_day,
            default=None,
            help="last day of the calibration period of --validate, YYYY-MM-DD",
        )
        defaults = PredictionSettings()
        parser.add_argument(
            "--horizon-days",
            type=int,
            default=defaults.horizon_days,
            help="churn horizon: no purchase in the next N days (default 90)",
        )
        parser.add_argument(
            "--clv-months",
            type=int,
            default=defaults.clv_months,
            help="months of customer lifetime value (default 12)",
        )
        parser.add_argument(
            "--discount-rate",
            type=float,
            default=defaults.discount_rate,
            help="monthly discount rate of the CLV (default 0.01)",
        )
        parser.add_argument("--no-models", action="store_true", help="skip the predictive models")
        parser.add_argument(
            "--no-recommendations",
            action="store_true",
            help="skip training the recommendations (patron recommend train)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        as_of = options["as_of"]
        if isinstance(as_of, str):  # call_command passes the value as given
            as_of = _day(as_of)
        try:
            run = run_analysis(
                as_of=as_of,
                engine=options["engine"],
                thresholds=_thresholds(options),
                ahp_matrix=_matrix(options["ahp_matrix"]),
                triggered_by="command",
                predictions=_prediction_settings(options),
                with_models=not options["no_models"],
            )
        except AnalysisError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Analysis #{run.pk} as of {run.as_of} on {run.engine}: {run.customers:,} "
                f"customers, {run.orders:,} orders, in {run.duration_seconds:.1f} s"
            )
        )
        thresholds = run.parameters["lifecycle_thresholds"]
        self.stdout.write(
            f"Lifecycle thresholds ({'derived' if thresholds['derived'] else 'given'}): new "
            f"{thresholds['new_days']} d, at risk {thresholds['at_risk_days']} d, lapsed "
            f"{thresholds['lapsed_days']} d; AHP consistency ratio "
            f"{run.parameters['ahp']['consistency_ratio']:.3f}; behaviour segments k = "
            f"{run.parameters['behaviour']['k']}"
        )
        for by, label in SegmentationChoices.choices:
            self.stdout.write(f"{label}:")
            for summary in segment_summary(run, by):
                self.stdout.write(
                    f"  {summary.label:<32} {summary.customers:>8,}  "
                    f"{summary.share:6.1%} of customers  {summary.revenue_share:6.1%} of revenue"
                )
        self._report_models(run)
        if not options.get("no_recommendations"):
            self._train_recommendations(run)

    def _train_recommendations(self, run: AnalysisRun) -> None:
        """``patron recommend train`` on the same data, after the analysis so that the
        popular products per segment use its segments. Reached through the command, not an
        import: the recommend app sits above analytics. Its failure does not undo the
        analysis; it is reported."""
        try:
            call_command("recommend", "train", "--as-of", run.as_of.isoformat(), stdout=self.stdout)
        except CommandError as error:
            self.stdout.write(self.style.WARNING(f"Recommendations not trained: {error}"))

    def _report_models(self, run: AnalysisRun) -> None:
        """One line per fitted model: parameters and the headline metric, or why it failed."""
        for model_run in run.model_runs.order_by("id"):
            label = model_run.get_kind_display()
            if model_run.status != AnalysisRunStatusChoices.SUCCEEDED:
                self.stdout.write(self.style.WARNING(f"{label}: not fitted: {model_run.error}"))
                continue
            fitted = ", ".join(
                f"{name} {value:.4g}"
                for name, value in model_run.parameters.items()
                if isinstance(value, float)
            )
            line = f"{label}: {model_run.customers:,} customers"
            if fitted:
                line += f"; {fitted}"
            validation = model_run.metrics.get("validation") or {}
            if "holdout_purchases_expected" in validation:
                line += (
                    f"; holdout purchases {validation['holdout_purchases_expected']:,.0f} "
                    f"expected, {validation['holdout_purchases_actual']:,.0f} actual"
                )
            churn = model_run.metrics.get("model") or {}
            baseline = model_run.metrics.get("bgnbd") or {}
            if "roc_auc" in churn:
                line += f"; ROC-AUC {churn['roc_auc']:.3f}"
                if "roc_auc" in baseline:
                    line += f" (BG/NBD baseline {baseline['roc_auc']:.3f})"
            self.stdout.write(line)


def _thresholds(options: dict[str, Any]) -> LifecycleThresholds | None:
    """The lifecycle thresholds given on the command line, or None to derive them."""
    given = {name: options.get(name) for name in THRESHOLD_OPTIONS}
    if all(value is None for value in given.values()):
        return None
    missing = [f"--{name.replace('_', '-')}" for name, value in given.items() if value is None]
    if missing:
        raise CommandError(f"give all three lifecycle thresholds; missing {', '.join(missing)}")
    days = {name: int(value) for name, value in given.items() if value is not None}
    if any(value <= 0 for value in days.values()):
        raise CommandError("lifecycle thresholds are days and must be positive")
    if days["lapsed_days"] <= days["at_risk_days"]:
        raise CommandError("--lapsed-days must be more than --at-risk-days")
    return LifecycleThresholds(**days)


def _prediction_settings(options: dict[str, Any]) -> PredictionSettings:
    """The predictive models' settings from the command line, checked."""
    calibration_end = options.get("calibration_end")
    if isinstance(calibration_end, str):
        calibration_end = _calibration_day(calibration_end)
    validate = bool(options.get("validate"))
    if validate and calibration_end is None:
        raise CommandError("--validate needs --calibration-end DATE")
    if calibration_end is not None and not validate:
        raise CommandError("--calibration-end is used only with --validate")
    defaults = PredictionSettings()
    return PredictionSettings(
        horizon_days=int(options.get("horizon_days", defaults.horizon_days)),
        clv_months=int(options.get("clv_months", defaults.clv_months)),
        discount_rate=float(options.get("discount_rate", defaults.discount_rate)),
        validate=validate,
        calibration_end=calibration_end,
    )


def _matrix(text: str | None) -> list[list[float]] | None:
    """The AHP matrix given as JSON, or None for the default; the engine checks its shape."""
    if text is None:
        return None
    try:
        rows = json.loads(text)
        return [[float(value) for value in row] for row in rows]
    except (ValueError, TypeError) as error:
        raise CommandError(
            f"--ahp-matrix {text!r}: not a JSON list of rows of numbers ({error})"
        ) from error
