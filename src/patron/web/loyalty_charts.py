"""Plotly figures of the loyalty overview: members per tier and points per month.

Each function takes what a selector of ``patron.loyalty.selectors`` returned and gives a figure
dictionary for ``json_script`` (drawn by ``static/web/charts.js``). Hover texts carry numbers
formatted for the active language (``1.23万`` in Chinese), as on the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from patron.loyalty.selectors import MonthPoints, TierSummary
from patron.web.analytics_charts import _layout
from patron.web.charts import BLUE, GREEN, figure_dict
from patron.web.formatting import format_count

_GREY = "#8c8c8c"
_GRID = "#f0f0f0"


def members_per_tier_figure(tiers: Sequence[TierSummary]) -> dict[str, Any]:
    """Members on each rung, lowest tier first (horizontal bars read long tier names)."""
    language = get_language()
    members_word = _("Members")
    names = [str(summary.tier) if summary.tier else _("No tier") for summary in tiers]
    figure = go.Figure(
        go.Bar(
            x=[summary.members for summary in tiers],
            y=names,
            orientation="h",
            marker={"color": BLUE, "opacity": 0.85},
            customdata=[[format_count(summary.members, language)] for summary in tiers],
            hovertemplate=f"%{{y}}<br>{members_word}: %{{customdata[0]}}<extra></extra>",
        )
    )
    figure.update_layout(
        _layout(
            showlegend=False,
            height=max(200, 80 + 48 * len(tiers)),
            margin={"l": 140, "r": 32, "t": 16, "b": 56},
            bargap=0.35,
            xaxis={
                "title": {"text": _("Members")},
                "rangemode": "tozero",
                "tickformat": ",d",
                "gridcolor": _GRID,
                # A few members would otherwise get fractional (and, rounded, repeated) ticks.
                **(
                    {"dtick": 1}
                    if max((summary.members for summary in tiers), default=0) <= 5
                    else {}
                ),
            },
            yaxis={"title": {"text": _("Tier")}, "automargin": True},
        )
    )
    return figure_dict(figure)


def points_by_month_figure(months: Sequence[MonthPoints]) -> dict[str, Any]:
    """Points issued, redeemed and expired per month (grouped bars, shop-local months)."""
    language = get_language()
    # Month labels as categories: the grouped bars then sit on their month's label (on a date
    # axis they would straddle the first of the month). Numeric months read in both languages.
    x = [f"{month.month:%Y-%m}" for month in months]
    figure = go.Figure()
    for name, values, colour in (
        (_("Issued"), [month.issued for month in months], BLUE),
        (_("Redeemed"), [month.redeemed for month in months], GREEN),
        (_("Expired"), [month.expired for month in months], _GREY),
    ):
        figure.add_trace(
            go.Bar(
                x=x,
                y=values,
                name=name,
                marker={"color": colour, "opacity": 0.85},
                customdata=[[format_count(value, language)] for value in values],
                hovertemplate=f"{name}: %{{customdata[0]}}<extra></extra>",
            )
        )
    figure.update_layout(
        _layout(
            barmode="group",
            hovermode="x unified",
            bargap=0.25,
            xaxis={"title": {"text": _("Month")}, "type": "category", "gridcolor": _GRID},
            yaxis={
                "title": {"text": _("Points per month")},
                "tickformat": ",d",
                "gridcolor": _GRID,
            },
        )
    )
    return figure_dict(figure)
