"""Plotly figures of the CLV, churn and model pages.

Each function takes what :mod:`patron.analytics.prediction_selectors` returned, or the
``diagnostics`` a :class:`~patron.analytics.models.ModelRun` kept, and gives a figure
dictionary for ``json_script`` (drawn by ``static/web/charts.js``). Hover texts carry numbers
formatted for the active language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import plotly.graph_objects as go
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from patron.analytics.prediction_selectors import ClvBin, ClvGroup
from patron.web.analytics_charts import _GRID, _ORANGE, _layout
from patron.web.charts import BLUE, GREEN, figure_dict
from patron.web.formatting import (
    format_count,
    format_money,
    format_money_compact,
    format_number,
    format_percent,
)

#: The model's line or bar (expected) next to the actuals (blue).
MODEL_COLOUR = _ORANGE


def _edge(amount: Decimal, currency: str) -> str:
    # Bin edges are round amounts: ¥300 reads better on a crowded axis than ¥300.00.
    text = format_money(amount, currency)
    return text.removesuffix(".00") if amount == amount.to_integral_value() else text


def clv_bin_label(clv_bin: ClvBin, currency: str) -> str:
    """``¥0–¥50`` for a bin, ``≥ ¥1,000`` for the open last bin."""
    low = _edge(clv_bin.low, currency)
    if clv_bin.high is None:
        return f"≥ {low}"
    return f"{low}–{_edge(clv_bin.high, currency)}"


def clv_histogram_figure(bins: Sequence[ClvBin], currency: str) -> dict[str, Any]:
    """Customers per CLV range (bars); the last bar holds the long tail above the 99th
    percentile."""
    language = get_language()
    total = sum(clv_bin.customers for clv_bin in bins)
    customers_word = _("Customers")
    figure = go.Figure(
        go.Bar(
            x=[clv_bin_label(clv_bin, currency) for clv_bin in bins],
            y=[clv_bin.customers for clv_bin in bins],
            marker={"color": BLUE, "opacity": 0.85},
            customdata=[
                [
                    format_count(clv_bin.customers, language),
                    format_percent(clv_bin.customers / total if total else 0.0),
                ]
                for clv_bin in bins
            ],
            hovertemplate=(
                f"%{{x}}<br>{customers_word}: %{{customdata[0]}} (%{{customdata[1]}})"
                "<extra></extra>"
            ),
        )
    )
    figure.update_layout(
        _layout(
            showlegend=False,
            bargap=0.08,
            xaxis={
                "title": {
                    "text": _("Customer lifetime value (%(currency)s)") % {"currency": currency}
                },
                "tickangle": -35,
            },
            yaxis={
                "title": {"text": customers_word},
                "rangemode": "tozero",
                "tickformat": ",d",
                "gridcolor": _GRID,
            },
            margin={"l": 64, "r": 32, "t": 16, "b": 96},
        )
    )
    return figure_dict(figure)


def clv_by_group_figure(groups: Sequence[ClvGroup], currency: str) -> dict[str, Any]:
    """Customer equity per group (bars) with the mean CLV per customer in the hover."""
    language = get_language()
    equity_word = _("Customer equity")
    customers_word = _("Customers")
    mean_word = _("Mean CLV")
    figure = go.Figure(
        go.Bar(
            x=[group.label for group in groups],
            y=[float(group.equity) for group in groups],
            marker={"color": BLUE, "opacity": 0.85},
            customdata=[
                [
                    format_money_compact(group.equity, currency, language),
                    format_percent(group.equity_share),
                    format_count(group.customers, language),
                    format_money(group.mean, currency) or "–",
                ]
                for group in groups
            ],
            hovertemplate=(
                f"<b>%{{x}}</b><br>{equity_word}: %{{customdata[0]}} (%{{customdata[1]}})"
                f"<br>{customers_word}: %{{customdata[2]}}<br>{mean_word}: %{{customdata[3]}}"
                "<extra></extra>"
            ),
        )
    )
    figure.update_layout(
        _layout(
            showlegend=False,
            bargap=0.3,
            xaxis={"tickangle": -25},
            yaxis={
                "title": {"text": f"{equity_word} ({currency})"},
                "rangemode": "tozero",
                "tickformat": ",.0f",
                "gridcolor": _GRID,
            },
            margin={"l": 72, "r": 32, "t": 16, "b": 96},
        )
    )
    return figure_dict(figure)


# --- model fit plots ---------------------------------------------------------------------


def frequency_histogram_figure(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Customers per number of repeat purchases in the fitted period: actual (blue) and what
    the fitted model expects (orange), side by side (Fader, Hardie & Lee 2005, figure 2)."""
    language = get_language()
    actual_word = _("Actual")
    model_word = _("Model")
    labels = [str(row["label"]) for row in rows]
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            x=labels,
            y=[row["actual"] for row in rows],
            name=actual_word,
            marker={"color": BLUE, "opacity": 0.85},
            customdata=[format_count(int(row["actual"]), language) for row in rows],
            hovertemplate=f"{actual_word}: %{{customdata}}<extra></extra>",
        )
    )
    figure.add_trace(
        go.Bar(
            x=labels,
            y=[float(row["expected"]) for row in rows],
            name=model_word,
            marker={"color": MODEL_COLOUR, "opacity": 0.85},
            customdata=[format_number(float(row["expected"]), 1) for row in rows],
            hovertemplate=f"{model_word}: %{{customdata}}<extra></extra>",
        )
    )
    figure.update_layout(
        _layout(
            barmode="group",
            bargap=0.25,
            hovermode="x unified",
            xaxis={
                "title": {"text": _("Repeat purchases in the fitted period")},
                "type": "category",
            },
            yaxis={
                "title": {"text": _("Customers")},
                "rangemode": "tozero",
                "gridcolor": _GRID,
            },
        )
    )
    return figure_dict(figure)


def tracking_figure(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Cumulative repeat purchases, actual and expected by the model fitted on the calibration
    period, day by day; the dotted line marks the calibration end, the last day not in the
    holdout (Fader, Hardie & Lee 2005, figure 3)."""
    fitted = [row for row in rows if not row.get("is_holdout")]
    calibration_end = str(fitted[-1]["period_end"]) if fitted else str(rows[0]["period_end"])
    days = [str(row["period_end"]) for row in rows]
    actual_word = _("Actual")
    model_word = _("Model")
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=days,
            y=[row["actual_cumulative"] for row in rows],
            name=actual_word,
            mode="lines",
            line={"color": BLUE, "width": 2},
            hovertemplate=f"{actual_word}: %{{y:,.0f}}<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=days,
            y=[float(row["expected_cumulative"]) for row in rows],
            name=model_word,
            mode="lines",
            line={"color": MODEL_COLOUR, "width": 2, "dash": "dash"},
            hovertemplate=f"{model_word}: %{{y:,.1f}}<extra></extra>",
        )
    )
    figure.update_layout(
        _layout(
            hovermode="x unified",
            xaxis={
                "title": {"text": _("Day")},
                "type": "date",
                "tickformat": "%Y-%m",
                "hoverformat": "%Y-%m-%d",
                "gridcolor": _GRID,
            },
            yaxis={
                "title": {"text": _("Cumulative repeat purchases")},
                "rangemode": "tozero",
                "tickformat": ",d",
                "gridcolor": _GRID,
            },
            shapes=[
                {
                    "type": "line",
                    "xref": "x",
                    "yref": "paper",
                    "x0": calibration_end,
                    "x1": calibration_end,
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": "rgba(0,0,0,0.45)", "width": 1, "dash": "dot"},
                }
            ],
            annotations=[
                {
                    "x": calibration_end,
                    "y": 1,
                    "xref": "x",
                    "yref": "paper",
                    "text": _("Calibration end"),
                    "showarrow": False,
                    "xanchor": "right",
                    "yanchor": "top",
                    "font": {"size": 11},
                }
            ],
        )
    )
    return figure_dict(figure)


def conditional_expectations_figure(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean repeat purchases in the holdout per number of repeat purchases in the calibration
    period: actual (blue) against the model's conditional expectation (orange) (Fader, Hardie
    & Lee 2005, figure 4)."""
    language = get_language()
    actual_word = _("Actual")
    model_word = _("Model")
    customers_word = _("Customers")
    labels = [str(row["label"]) for row in rows]
    counts = [format_count(int(row["customers"]), language) for row in rows]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=labels,
            y=[float(row["actual_mean"]) for row in rows],
            name=actual_word,
            mode="lines+markers",
            line={"color": BLUE, "width": 2},
            customdata=counts,
            hovertemplate=(
                f"{actual_word}: %{{y:.2f}} ({customers_word}: %{{customdata}})<extra></extra>"
            ),
        )
    )
    figure.add_trace(
        go.Scatter(
            x=labels,
            y=[float(row["expected_mean"]) for row in rows],
            name=model_word,
            mode="lines+markers",
            line={"color": MODEL_COLOUR, "width": 2, "dash": "dash"},
            hovertemplate=f"{model_word}: %{{y:.2f}}<extra></extra>",
        )
    )
    figure.update_layout(
        _layout(
            hovermode="x unified",
            xaxis={
                "title": {"text": _("Repeat purchases in the calibration period")},
                "type": "category",
            },
            yaxis={
                "title": {"text": _("Mean repeat purchases in the holdout")},
                "rangemode": "tozero",
                "gridcolor": _GRID,
            },
        )
    )
    return figure_dict(figure)


def churn_metrics_figure(scores: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """ROC-AUC and PR-AUC of the churn model and its baselines as grouped bars (higher is
    better); ``scores`` are (label, metrics) pairs."""
    figure = go.Figure()
    for key, name, colour in (
        ("roc_auc", "ROC-AUC", BLUE),
        ("pr_auc", "PR-AUC", GREEN),
    ):
        values = [metrics.get(key) for _label, metrics in scores]
        figure.add_trace(
            go.Bar(
                x=[label for label, _metrics in scores],
                y=values,
                name=name,
                marker={"color": colour, "opacity": 0.85},
                hovertemplate=f"{name}: %{{y:.3f}}<extra></extra>",
            )
        )
    figure.update_layout(
        _layout(
            barmode="group",
            bargap=0.3,
            height=280,
            yaxis={"range": [0, 1], "gridcolor": _GRID, "tickformat": ".1f"},
        )
    )
    return figure_dict(figure)
