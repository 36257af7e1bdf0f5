"""``patron analyze [--as-of DATE] [--engine polars|spark]``: analyse the store's customers."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patron.analytics.choices import AnalysisEngineChoices, SegmentationChoices
from patron.analytics.selectors import segment_summary
from patron.analytics.services import AnalysisError, run_analysis


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

    def handle(self, *args: Any, **options: Any) -> None:
        as_of = options["as_of"]
        if isinstance(as_of, str):  # call_command passes the value as given
            as_of = _day(as_of)
        try:
            run = run_analysis(as_of=as_of, engine=options["engine"], triggered_by="command")
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
