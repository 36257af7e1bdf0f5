"""Plotly figures of the dashboard, built on the server and drawn by ``static/web/charts.js``."""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
from django.utils.translation import gettext as _

from patron.orders.selectors import WeekFigures
from patron.web.formatting import currency_symbol

BLUE = "#1677ff"
GREEN = "#52c41a"
FONT = (
    '-apple-system, BlinkMacSystemFont, "Segoe UI", "PingFang SC", "Hiragino Sans GB", '
    '"Microsoft YaHei", "Noto Sans CJK SC", "Helvetica Neue", Arial, sans-serif'
)


def weekly_orders_revenue_figure(weeks: list[WeekFigures], currency: str) -> dict[str, Any]:
    """Orders (bars, left axis) and net revenue (line, right axis) per week, as a Plotly
    figure dictionary ready for ``json_script``."""
    starts = [week.week_start.isoformat() for week in weeks]
    symbol = currency_symbol(currency).strip()
    orders_name = _("Orders")
    revenue_name = _("Revenue")
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            x=starts,
            y=[week.orders for week in weeks],
            name=orders_name,
            marker={"color": BLUE, "opacity": 0.85},
            hovertemplate=f"{orders_name}: %{{y:,}}<extra></extra>",
        )
    )
    figure.add_trace(
        go.Scatter(
            x=starts,
            y=[float(week.revenue) for week in weeks],
            name=revenue_name,
            yaxis="y2",
            mode="lines",
            line={"color": GREEN, "width": 2},
            hovertemplate=f"{revenue_name}: {symbol}%{{y:,.2f}}<extra></extra>",
        )
    )
    figure.update_layout(
        font={"family": FONT, "size": 12, "color": "rgba(0,0,0,0.65)"},
        margin={"l": 64, "r": 72, "t": 16, "b": 48},
        height=340,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        hovermode="x unified",
        legend={"orientation": "h", "x": 0, "y": 1.12},
        bargap=0.25,
        xaxis={
            "title": {"text": _("Week (starting Monday)")},
            "type": "date",
            # Plotly ships English month names only; numeric months read well in both languages.
            "tickformat": "%Y-%m",
            # The unified hover label's title: the week's Monday.
            "hoverformat": "%Y-%m-%d",
            "gridcolor": "#f0f0f0",
        },
        yaxis={
            "title": {"text": _("Orders per week")},
            "gridcolor": "#f0f0f0",
            "rangemode": "tozero",
            "tickformat": ",d",
            # Few orders a week would otherwise get fractional (and, rounded, repeated) ticks.
            **({"dtick": 1} if max((week.orders for week in weeks), default=0) <= 5 else {}),
        },
        yaxis2={
            "title": {"text": _("Revenue per week (%(currency)s)") % {"currency": currency}},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
            # Plotly would otherwise align these ticks to the orders axis, at odd values.
            "tickmode": "auto",
            "tickformat": ",.0f",
        },
    )
    return figure_dict(figure)


def figure_dict(figure: go.Figure) -> dict[str, Any]:
    """A figure as plain JSON data (what ``json_script`` embeds and ``charts.js`` draws)."""
    result: dict[str, Any] = json.loads(figure.to_json())
    return result
