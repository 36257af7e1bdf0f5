"""``patron recommend train [--as-of DATE] [...]`` and ``patron recommend evaluate [--run N]``:
train the recommenders on the store, and print a run's evaluation report."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patron.recommend.config import TrainingSettings
from patron.recommend.models import TrainingRun
from patron.recommend.selectors import latest_training_run
from patron.recommend.services import RecommendError, train_recommendations

REPORT_COLUMNS = (
    ("precision", "precision@10"),
    ("recall", "recall@10"),
    ("ndcg", "NDCG@10"),
    ("map", "MAP@10"),
    ("coverage", "coverage"),
    ("diversity", "diversity"),
    ("fit_seconds", "fit s"),
)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"--as-of {text!r}: not a date (use YYYY-MM-DD)") from error


def report_lines(run: TrainingRun) -> list[str]:
    """The run's evaluation report as a text table, one line per recommender."""
    evaluation = run.evaluation or {}
    if not run.report:
        reason = evaluation.get("skipped", "no report")
        return [f"No evaluation in run #{run.pk}: {reason}"]
    header = f"{'recommender':<14}" + "".join(f"{label:>14}" for _, label in REPORT_COLUMNS)
    lines = [
        f"Evaluation of run #{run.pk}: trained before {evaluation.get('cut', '?')}, tested on "
        f"the next {evaluation.get('test_days', '?')} days, {run.report[0]['customers']:,} "
        "customers, k = 10",
        header,
    ]
    for row in run.report:
        cells = "".join(
            f"{'-' if row.get(name) is None else format(row[name], '.4f'):>14}"
            for name, _ in REPORT_COLUMNS
        )
        marker = " *" if row["recommender"] == run.recommender else ""
        lines.append(f"{row['recommender']:<14}{cells}{marker}")
    by_name = {row["recommender"]: row for row in run.report}
    served, popularity = by_name.get(run.recommender), by_name.get("popularity")
    if served and popularity and popularity["ndcg"]:
        line = f"{run.recommender} NDCG@10 / popularity = {served['ndcg'] / popularity['ndcg']:.2f}"
        als = by_name.get("als_default")
        if als and als["ndcg"]:
            line += f"; / ALS (defaults) = {served['ndcg'] / als['ndcg']:.2f}"
        lines.append(line)
    return lines


class Command(BaseCommand):
    help = (
        "Recommendations: `train` fits and evaluates the recommenders on the store and "
        "precomputes the lists, neighbours and basket rules; `evaluate` prints a run's report."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="train|evaluate")
        train = actions.add_parser("train", help="train, evaluate and precompute")
        defaults = TrainingSettings()
        train.add_argument(
            "--as-of",
            type=_day,
            default=None,
            help="last day of data, YYYY-MM-DD (default: up to the latest order or event)",
        )
        train.add_argument(
            "--active-days",
            type=int,
            default=defaults.active_days,
            help="precompute lists only for customers active in the last N days "
            "(default: every customer with an order or event)",
        )
        train.add_argument(
            "--list-length", type=int, default=defaults.list_length, help="list length (20)"
        )
        train.add_argument(
            "--half-life-days",
            type=float,
            default=defaults.half_life_days,
            help="half-life of the interactions' weight in days (15)",
        )
        train.add_argument(
            "--diversity",
            type=float,
            default=defaults.diversity,
            help="weight of the MMR diversity re-ranking, 0 to 1 (0.2)",
        )
        train.add_argument(
            "--test-days",
            type=int,
            default=defaults.test_days,
            help="days at the end held out for the evaluation (30)",
        )
        train.add_argument(
            "--no-evaluation", action="store_true", help="skip the evaluation report"
        )
        train.add_argument(
            "--min-support",
            type=float,
            default=defaults.min_support,
            help="basket rules: least share of orders with both products (0.001)",
        )
        evaluate = actions.add_parser("evaluate", help="print a training run's report")
        evaluate.add_argument(
            "--run", type=int, default=None, help="training run id (default: the latest)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "evaluate":
            self._evaluate(options.get("run"))
            return
        as_of = options.get("as_of")
        if isinstance(as_of, str):  # call_command passes the value as given
            as_of = _day(as_of)
        defaults = TrainingSettings()
        training = TrainingSettings(
            active_days=options.get("active_days", defaults.active_days),
            list_length=int(options.get("list_length", defaults.list_length)),
            half_life_days=options.get("half_life_days", defaults.half_life_days),
            diversity=float(options.get("diversity", defaults.diversity)),
            test_days=int(options.get("test_days", defaults.test_days)),
            evaluate=not options.get("no_evaluation", False),
            min_support=float(options.get("min_support", defaults.min_support)),
        )
        try:
            run = train_recommendations(as_of, training, triggered_by="command")
        except RecommendError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Recommendations #{run.pk}: {run.customers:,} customers, {run.products:,} "
                f"products, {run.interactions:,} interactions; lists for "
                f"{run.recommended_customers:,} customers, {run.rules:,} basket rules, "
                f"in {run.duration_seconds:.1f} s"
            )
        )
        for line in report_lines(run):
            self.stdout.write(line)

    def _evaluate(self, run_id: int | None) -> None:
        if run_id is None:
            run = latest_training_run()
            if run is None:
                raise CommandError("no training has succeeded yet: run `patron recommend train`")
        else:
            found = TrainingRun.objects.filter(pk=run_id).first()
            if found is None:
                raise CommandError(f"no training run #{run_id}")
            run = found
        for line in report_lines(run):
            self.stdout.write(line)
