"""Dashboard pages of the recommendations: the evaluation report and the basket rules, and the
panel of the customer page. Views only read through ``patron.recommend.selectors``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy

from patron.core.roles import PageAreaChoices
from patron.recommend.models import TrainingRun
from patron.recommend.selectors import latest_training_run, strongest_rules, training_runs
from patron.web.views import area_required

RULES_SHOWN = 20
RUNS_SHOWN = 10

#: What each row of the report is, in words (a name not listed is shown as it is).
RECOMMENDER_LABELS = {
    "popularity": gettext_lazy("Popularity (baseline)"),
    "als_default": gettext_lazy("ALS, default settings"),
    "trending": gettext_lazy("Trending (decayed popularity)"),
    "item_knn": gettext_lazy("Item neighbours (cosine)"),
    "ease": gettext_lazy("EASE"),
    "hybrid": gettext_lazy("Hybrid"),
}


@dataclass(frozen=True)
class ReportRow:
    """One recommender's figures in the report, for the table."""

    name: str
    label: str
    is_served: bool
    metrics: dict[str, Any]
    ndcg_vs_popularity: float | None


def report_rows(run: TrainingRun) -> list[ReportRow]:
    """The run's report with labels and each NDCG@10 as a multiple of popularity's."""
    popularity = next((r["ndcg"] for r in run.report if r["recommender"] == "popularity"), None)
    return [
        ReportRow(
            name=row["recommender"],
            label=str(RECOMMENDER_LABELS.get(row["recommender"], row["recommender"])),
            is_served=row["recommender"] == run.recommender,
            metrics=row,
            ndcg_vs_popularity=(row["ndcg"] / popularity) if popularity else None,
        )
        for row in run.report
    ]


@area_required(PageAreaChoices.RECOMMENDATIONS)
def recommendations_page(request: HttpRequest) -> HttpResponse:
    """The latest training's evaluation report (metrics per recommender), its strongest
    bought-together rules and the latest runs."""
    run = latest_training_run()
    return render(
        request,
        "web/recommend/overview.html",
        {
            "run": run,
            "rows": report_rows(run) if run else [],
            "rules": strongest_rules(run, RULES_SHOWN) if run else [],
            "runs": training_runs(RUNS_SHOWN),
            "nav": "recommendations",
        },
    )
