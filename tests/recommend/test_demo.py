"""``patron demo`` trains the recommendations after the analysis."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from patron.demo.services import build_demo_shop
from patron.recommend.models import Recommendation, TrainingRun


def test_the_demo_shop_is_built_with_recommendations(db: None, tmp_path: Path) -> None:
    # when
    report = build_demo_shop(customers=300, seed=1, as_of=dt.date(2025, 6, 1), home=tmp_path)
    # then
    run = TrainingRun.objects.get()
    assert report.recommendation_run_id == run.pk
    assert (run.status, run.triggered_by) == ("succeeded", "demo")
    assert run.recommended_customers == Recommendation.objects.values("customer").distinct().count()
    assert run.recommended_customers > 0
