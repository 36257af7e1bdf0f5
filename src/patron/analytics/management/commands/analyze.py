"""``patron analyze [--as-of DATE] [--engine polars|spark] [--new-days N --at-risk-days N
--lapsed-days N] [--ahp-matrix JSON]``: analyse the store's customers."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patron.analytics.choices import AnalysisEngineChoices, SegmentationChoices
from patron.analytics.selectors import segment_summary
from patron.analytics.services import AnalysisError, run_analysis
from patron.engine.lifecycle import LifecycleThresholds

THRESHOLD_OPTIONS = ("new_days", "at_risk_days", "lapsed_days")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"--as-of {text!r}: not a date (use YYYY-MM-DD)") from error


class Command(BaseCommand):
    help = (
        "Compute every customer's RFM scores and segment, value class, lifecycle stage, AHP "
        "value score and behaviour segment, the cohorts and the KPI trend, and keep them as a "
        "new analysis run (earlier runs stay)."
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
