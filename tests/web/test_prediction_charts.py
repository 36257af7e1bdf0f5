"""The figures of the CLV, churn and model pages carry the data they are given."""

from __future__ import annotations

from decimal import Decimal

from django.utils import translation

from patron.analytics.prediction_selectors import ClvBin, ClvGroup
from patron.web import prediction_charts as charts

FREQUENCY_ROWS = [
    {"frequency": 0, "label": "0", "actual": 49, "expected": 46.17},
    {"frequency": 1, "label": "1", "actual": 33, "expected": 35.02},
    {"frequency": 2, "label": "2+", "actual": 21, "expected": 21.81},
]
TRACKING_ROWS = [
    {
        "period_end": "2025-01-30",
        "actual_cumulative": 10,
        "expected_cumulative": 9.5,
        "is_holdout": False,
    },
    {
        "period_end": "2025-01-31",
        "actual_cumulative": 12,
        "expected_cumulative": 11.0,
        "is_holdout": False,
    },
    {
        "period_end": "2025-02-01",
        "actual_cumulative": 13,
        "expected_cumulative": 12.4,
        "is_holdout": True,
    },
]
CONDITIONAL_ROWS = [
    {"label": "0", "customers": 37, "actual_mean": 0.35, "expected_mean": 0.42},
    {"label": "1", "customers": 28, "actual_mean": 0.68, "expected_mean": 0.72},
]


def test_clv_histogram_figure_has_a_bar_per_bin_with_its_customers() -> None:
    bins = [
        ClvBin(Decimal(0), Decimal(50), 12),
        ClvBin(Decimal(50), Decimal(100), 5),
        ClvBin(Decimal(100), None, 3),
    ]

    with translation.override("en"):
        figure = charts.clv_histogram_figure(bins, "CNY")

    bar = figure["data"][0]
    assert bar["y"] == [12, 5, 3]
    assert bar["x"] == ["¥0–¥50", "¥50–¥100", "≥ ¥100"]
    assert bar["customdata"][0] == ["12", "60.0%"]


def test_clv_by_group_figure_has_the_equity_of_each_group() -> None:
    groups = [
        ClvGroup("champions", "Champions", 10, 10, Decimal("1234.50"), Decimal("123.45"), 0.75),
        ClvGroup("lost", "Lost", 30, 28, Decimal("411.50"), Decimal("14.70"), 0.25),
    ]

    with translation.override("zh-hans"):
        figure = charts.clv_by_group_figure(groups, "CNY")

    bar = figure["data"][0]
    assert bar["x"] == ["Champions", "Lost"]
    assert bar["y"] == [1234.5, 411.5]
    assert bar["customdata"][0][1] == "75.0%"
    assert "客户资产" in figure["layout"]["yaxis"]["title"]["text"]


def test_frequency_histogram_figure_sets_actual_beside_the_model() -> None:
    figure = charts.frequency_histogram_figure(FREQUENCY_ROWS)

    actual, model = figure["data"]
    assert actual["x"] == ["0", "1", "2+"]
    assert actual["y"] == [49, 33, 21]
    assert model["y"] == [46.17, 35.02, 21.81]
    assert figure["layout"]["barmode"] == "group"


def test_tracking_figure_marks_the_last_fitted_day() -> None:
    figure = charts.tracking_figure(TRACKING_ROWS)

    actual, model = figure["data"]
    assert actual["y"] == [10, 12, 13]
    assert model["y"] == [9.5, 11.0, 12.4]
    assert figure["layout"]["shapes"][0]["x0"] == "2025-01-31"


def test_conditional_expectations_figure_has_the_means_per_bucket() -> None:
    figure = charts.conditional_expectations_figure(CONDITIONAL_ROWS)

    actual, model = figure["data"]
    assert actual["x"] == ["0", "1"]
    assert actual["y"] == [0.35, 0.68]
    assert model["y"] == [0.42, 0.72]
    assert actual["customdata"] == ["37", "28"]


def test_churn_metrics_figure_has_roc_and_pr_auc_per_score() -> None:
    scores = [
        ("Churn model", {"roc_auc": 0.81, "pr_auc": 0.9}),
        ("BG/NBD", {"roc_auc": 0.77, "pr_auc": 0.88}),
    ]

    figure = charts.churn_metrics_figure(scores)

    roc, pr = figure["data"]
    assert roc["x"] == ["Churn model", "BG/NBD"]
    assert roc["y"] == [0.81, 0.77]
    assert pr["y"] == [0.9, 0.88]
