"""``patron recommend train`` and ``patron recommend evaluate``; the reason codes."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from patron.engine.recommend import ReasonChoices as EngineReasonChoices
from patron.recommend.choices import ReasonChoices
from patron.recommend.models import TrainingRun


def test_reason_codes_are_the_engines() -> None:
    assert ReasonChoices.values == [code.value for code in EngineReasonChoices]


def test_train_prints_the_counts_and_evaluate_the_report(tea_shop: dict) -> None:
    # given
    out = StringIO()
    # when
    call_command("recommend", "train", stdout=out)
    call_command("recommend", "evaluate", stdout=out)
    # then
    run = TrainingRun.objects.get()
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        f"Recommendations #{run.pk}: 7 customers, 6 products, "
        f"{run.interactions} interactions; lists for 7 customers, 2 basket rules, "
        f"in {run.duration_seconds:.1f} s"
    )
    assert lines[1] == (
        f"No evaluation in run #{run.pk}: no customer bought something new in the test days"
    )
    assert lines[2] == lines[1]


def test_evaluate_before_any_training_says_what_to_do(db: None) -> None:
    with pytest.raises(CommandError, match="run `patron recommend train`"):
        call_command("recommend", "evaluate")


def test_analyze_also_trains_the_recommendations_unless_told_not_to(tea_shop: dict) -> None:
    # given
    out = StringIO()
    # when
    call_command("analyze", "--no-models", "--no-recommendations", stdout=out)
    # then
    assert not TrainingRun.objects.exists()
    assert "Recommendations #" not in out.getvalue()
    # when
    call_command("analyze", "--no-models", stdout=out)
    # then it trains as of the analysis day (the last order's): the six buyers, not the viewer
    run = TrainingRun.objects.get()
    assert run.status == "succeeded"
    assert f"Recommendations #{run.pk}: 6 customers" in out.getvalue()
