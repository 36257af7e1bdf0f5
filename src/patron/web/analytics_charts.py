"""Plotly figures of the analytics pages: segments, cohorts, KPI trends and segment migration.

Each function takes what a selector of ``patron.analytics.selectors`` returned and gives a
figure dictionary for ``json_script`` (drawn by ``static/web/charts.js``). Hover texts carry
numbers already formatted for the active language by :mod:`patron.web.formatting`, so that
``¥1.23万`` reads the same in a chart as on the page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import plotly.graph_objects as go
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from patron.analytics.selectors import (
    CohortRow,
    GapBucket,
    KpiFigures,
    SegmentMigration,
    SegmentSummary,
)
from patron.core.money import round_for_currency
from patron.web.charts import BLUE, FONT, GREEN, figure_dict
from patron.web.formatting import (
    currency_symbol,
    format_count,
    format_money,
    format_money_compact,
    format_percent,
)

#: Segment colours, best segment first: blues and greens for the customers to keep, warm
#: colours for those slipping away, grey for the lost. Fewer segments sample it evenly.
SEGMENT_PALETTE = (
    "#0958d9",
    "#1677ff",
    "#69b1ff",
    "#13c2c2",
    "#52c41a",
    "#95de64",
    "#fadb14",
    "#faad14",
    "#fa8c16",
    "#f5222d",
    "#8c8c8c",
)
_ORANGE = "#fa8c16"
_GRID = "#f0f0f0"
#: A period of the cohort heatmap that has not happened yet (after the run's as-of month).
_NOT_YET = None


def segment_colours(count: int) -> list[str]:
    """``count`` colours of :data:`SEGMENT_PALETTE`, best first, spread over the palette."""
    if count <= 1:
        return list(SEGMENT_PALETTE[:count])
    last = len(SEGMENT_PALETTE) - 1
    return [SEGMENT_PALETTE[round(index * last / (count - 1))] for index in range(count)]


def _layout(**overrides: Any) -> dict[str, Any]:
    """The dashboard's common chart layout (font, transparent background, margins)."""
    layout: dict[str, Any] = {
        "font": {"family": FONT, "size": 12, "color": "rgba(0,0,0,0.65)"},
        "margin": {"l": 64, "r": 32, "t": 16, "b": 56},
        "height": 340,
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "legend": {"orientation": "h", "x": 0, "y": 1.14},
    }
    layout.update(overrides)
    return layout


def _month_label(month: dt.date) -> str:
    # Numeric months read the same in both languages (Plotly only knows English month names).
    return f"{month:%Y-%m}"


# --- segments ------------------------------------------------------------------------------


def segment_treemap_figure(
    summaries: Sequence[SegmentSummary], currency: str, urls: Mapping[str, str]
) -> dict[str, Any]:
    """A treemap of the segments: each tile's area is its customers, its text and hover give
    customers, share, net revenue and revenue share. Empty segments have no tile.

    ``urls`` maps a segment code to its customer list; the link is the last item of each
    tile's ``customdata``, which ``charts.js`` follows when the tile is clicked.
    """
    language = get_language()
    colours = dict(zip((s.code for s in summaries), segment_colours(len(summaries)), strict=True))
    shown = [summary for summary in summaries if summary.customers > 0]
    customers_word = _("Customers")
    revenue_word = _("Revenue")
    trace = go.Treemap(
        ids=[summary.code for summary in shown],
        labels=[summary.label for summary in shown],
        parents=["" for _summary in shown],
        values=[summary.customers for summary in shown],
        marker={"colors": [colours[summary.code] for summary in shown], "line": {"width": 2}},
        customdata=[
            [
                format_count(summary.customers, language),
                format_percent(summary.share),
                format_money_compact(summary.revenue, currency, language),
                format_percent(summary.revenue_share),
                urls.get(summary.code, ""),
            ]
            for summary in shown
        ],
        texttemplate="<b>%{label}</b><br>%{customdata[0]} · %{customdata[1]}<br>%{customdata[2]}",
        hovertemplate=(
            f"<b>%{{label}}</b><br>{customers_word}: %{{customdata[0]}} (%{{customdata[1]}})"
            f"<br>{revenue_word}: %{{customdata[2]}} (%{{customdata[3]}})<extra></extra>"
        ),
        textposition="middle center",
        tiling={"pad": 2},
        sort=False,
    )
    figure = go.Figure(trace)
    figure.update_layout(_layout(margin={"l": 0, "r": 0, "t": 0, "b": 0}, height=440))
    return figure_dict(figure)


def segment_share_figure(summaries: Sequence[SegmentSummary]) -> dict[str, Any]:
    """Each segment's share of the customers beside its share of net revenue (horizontal
    bars, best segment on top): where a small segment earns much, and the reverse."""
    labels = [summary.label for summary in summaries]
    customers_name = _("Share of customers")
    revenue_name = _("Share of revenue")
    figure = go.Figure()
    for name, values, colour in (
        (customers_name, [summary.share for summary in summaries], BLUE),
        (revenue_name, [summary.revenue_share for summary in summaries], GREEN),
    ):
        figure.add_trace(
            go.Bar(
                y=labels,
                x=values,
                name=name,
                orientation="h",
                marker={"color": colour},
                hovertemplate=f"{name}: %{{x:.1%}}<extra></extra>",
            )
        )
    figure.update_layout(
        _layout(
            height=max(260, 34 * len(summaries) + 100),
            margin={"l": 150, "r": 24, "t": 16, "b": 56},
            barmode="group",
            bargap=0.3,
            hovermode="y unified",
            xaxis={
                "title": {"text": _("Share (%)")},
                "tickformat": ".0%",
                "rangemode": "tozero",
                "gridcolor": _GRID,
            },
            yaxis={"autorange": "reversed", "automargin": True},
        )
    )
    return figure_dict(figure)


# --- cohorts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortSummary:
    """One cohort as the cohort page lists it: size, net revenue up to the as-of day, and
    the share of it buying again in the month after its first."""

    cohort_month: dt.date
    customers: int
    revenue: Decimal
    revenue_per_customer: Decimal
    second_month_retention: float | None


def _months_between(first: dt.date, last: dt.date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def summarise_cohorts(
    rows: Sequence[CohortRow], as_of: dt.date, currency: str
) -> list[CohortSummary]:
    """Per cohort (oldest first): its size, the sum of its monthly revenue, revenue per
    customer (rounded to the currency), and its month-1 retention (0 when nobody came back,
    None when that month lies after ``as_of``). Presentation sums of the run's sparse cohort
    rows."""
    cohorts: dict[dt.date, list[CohortRow]] = {}
    for row in rows:
        cohorts.setdefault(row.cohort_month, []).append(row)
    summaries = []
    for month in sorted(cohorts):
        cells = cohorts[month]
        size = cells[0].cohort_size
        revenue = sum((cell.revenue for cell in cells), Decimal(0))
        month_one = [cell.retention_rate for cell in cells if cell.period == 1]
        reached = _months_between(month, as_of) >= 1
        summaries.append(
            CohortSummary(
                cohort_month=month,
                customers=size,
                revenue=revenue,
                revenue_per_customer=round_for_currency(revenue / size, currency)
                if size
                else revenue,
                second_month_retention=(month_one[0] if month_one else 0.0) if reached else None,
            )
        )
    return summaries


def retention_heatmap_figure(rows: Sequence[CohortRow], as_of: dt.date) -> dict[str, Any]:
    """Retention by cohort month (rows, oldest on top) and months since the first purchase
    (columns), in percent; a month nobody of a cohort bought in is 0 %, a month after
    ``as_of`` is blank. The colour scale stops at the highest retention after month 0, so
    that month 0 (always 100 %) does not wash out the others. Hover: the customers."""
    language = get_language()
    months = sorted({row.cohort_month for row in rows})
    cells = {(row.cohort_month, row.period): row for row in rows}
    sizes = {row.cohort_month: row.cohort_size for row in rows}
    periods = _months_between(months[0], as_of) + 1 if months else 0
    z: list[list[float | None]] = []
    customdata: list[list[list[str]]] = []
    for month in months:
        reached = _months_between(month, as_of)
        z_row: list[float | None] = []
        data_row: list[list[str]] = []
        for period in range(periods):
            cell = cells.get((month, period))
            active = cell.active_customers if cell else 0
            if period > reached:
                z_row.append(_NOT_YET)
            else:
                z_row.append(round(100 * active / sizes[month], 1) if sizes[month] else 0.0)
            data_row.append([format_count(active, language), format_count(sizes[month], language)])
        z.append(z_row)
        customdata.append(data_row)
    later = [value for row in z for value in row[1:] if value is not None]
    cohort_word = _("Cohort")
    month_word = _("Month")
    retention_word = _("Retention")
    bought_again = _("%(active)s of %(size)s customers bought") % {
        "active": "%{customdata[0]}",
        "size": "%{customdata[1]}",
    }
    trace = go.Heatmap(
        x=list(range(periods)),
        y=[_month_label(month) for month in months],
        z=z,
        customdata=customdata,
        zmin=0,
        zmax=max(later, default=100.0) or 1.0,
        colorscale="Blues",
        colorbar={"title": {"text": _("Retention (%)")}, "ticksuffix": "%"},
        hoverongaps=False,
        xgap=1,
        ygap=1,
        hovertemplate=(
            f"{cohort_word} %{{y}} · {month_word} %{{x}}<br>{retention_word}: %{{z:.1f}}%"
            f"<br>{bought_again}<extra></extra>"
        ),
        # Numbers in the cells only while they still fit.
        texttemplate="%{z:.0f}" if periods <= 24 and len(months) <= 36 else "",
        textfont={"size": 10},
    )
    figure = go.Figure(trace)
    figure.update_layout(
        _layout(
            height=max(340, 24 * len(months) + 130),
            margin={"l": 80, "r": 24, "t": 16, "b": 56},
            xaxis={
                "title": {"text": _("Months since first purchase")},
                "dtick": 1 if periods <= 24 else 3,
                "showgrid": False,
                "zeroline": False,
            },
            yaxis={
                "title": {"text": _("Cohort (month of first purchase)")},
                "type": "category",
                "autorange": "reversed",
                "showgrid": False,
            },
        )
    )
    return figure_dict(figure)


def cohort_revenue_figure(cohorts: Sequence[CohortSummary], currency: str) -> dict[str, Any]:
    """Net revenue of each cohort up to the as-of day (bars, left axis) and its revenue per
    customer (line, right axis)."""
    language = get_language()
    labels = [_month_label(cohort.cohort_month) for cohort in cohorts]
    revenue_name = _("Revenue")
    per_customer_name = _("Revenue per customer")
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            x=labels,
            y=[float(cohort.revenue) for cohort in cohorts],
            name=revenue_name,
            marker={"color": BLUE, "opacity": 0.85},
            customdata=[
                [
                    format_money_compact(cohort.revenue, currency, language),
                    format_count(cohort.customers, language),
                ]
                for cohort in cohorts
            ],
            hovertemplate=(
                f"{revenue_name}: %{{customdata[0]}} · {_('Customers')}: %{{customdata[1]}}"
                "<extra></extra>"
            ),
        )
    )
    figure.add_trace(
        go.Scatter(
            x=labels,
            y=[float(cohort.revenue_per_customer) for cohort in cohorts],
            name=per_customer_name,
            yaxis="y2",
            mode="lines+markers",
            line={"color": _ORANGE, "width": 2},
            customdata=[format_money(cohort.revenue_per_customer, currency) for cohort in cohorts],
            hovertemplate=f"{per_customer_name}: %{{customdata}}<extra></extra>",
        )
    )
    figure.update_layout(
        _layout(
            margin={"l": 72, "r": 72, "t": 16, "b": 56},
            hovermode="x unified",
            xaxis={"title": {"text": _("Cohort (month of first purchase)")}, "type": "category"},
            yaxis={
                "title": {"text": _("Net revenue (%(currency)s)") % {"currency": currency}},
                "rangemode": "tozero",
                "tickformat": ",.0f",
                "gridcolor": _GRID,
            },
            yaxis2={
                "title": {
                    "text": _("Revenue per customer (%(currency)s)") % {"currency": currency}
                },
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
                "showgrid": False,
                "tickmode": "auto",
                "tickformat": ",.0f",
            },
        )
    )
    return figure_dict(figure)


# --- KPIs ----------------------------------------------------------------------------------


def _trend_x(trend: Sequence[KpiFigures]) -> list[str]:
    return [figures.period_start.isoformat() for figures in trend]


def _month_axis() -> dict[str, Any]:
    return {
        "title": {"text": _("Month")},
        "type": "date",
        "tickformat": "%Y-%m",
        "hoverformat": "%Y-%m",
        "gridcolor": _GRID,
    }


def active_customers_trend_figure(trend: Sequence[KpiFigures]) -> dict[str, Any]:
    """Active customers per month, stacked: returning (first order before the month) and new."""
    returning_name = _("Returning customers")
    new_name = _("New customers")
    figure = go.Figure()
    for name, values, colour in (
        (returning_name, [figures.returning_customers for figures in trend], BLUE),
        (new_name, [figures.new_customers for figures in trend], GREEN),
    ):
        figure.add_trace(
            go.Bar(
                x=_trend_x(trend),
                y=values,
                name=name,
                marker={"color": colour, "opacity": 0.85},
                hovertemplate=f"{name}: %{{y:,}}<extra></extra>",
            )
        )
    figure.update_layout(
        _layout(
            barmode="stack",
            hovermode="x unified",
            xaxis=_month_axis(),
            yaxis={
                "title": {"text": _("Active customers per month")},
                "rangemode": "tozero",
                "tickformat": ",d",
                "gridcolor": _GRID,
            },
        )
    )
    return figure_dict(figure)


def loyalty_rates_trend_figure(trend: Sequence[KpiFigures]) -> dict[str, Any]:
    """Repeat purchase rate and retention rate per month, in percent; a month without a
    previous month to compare with has no retention point."""
    figure = go.Figure()
    for name, values, colour in (
        (_("Repeat purchase rate"), [figures.repeat_purchase_rate for figures in trend], BLUE),
        (_("Retention rate"), [figures.retention_rate for figures in trend], GREEN),
    ):
        figure.add_trace(
            go.Scatter(
                x=_trend_x(trend),
                y=values,
                name=name,
                mode="lines+markers",
                line={"color": colour, "width": 2},
                hovertemplate=f"{name}: %{{y:.1%}}<extra></extra>",
            )
        )
    figure.update_layout(
        _layout(
            hovermode="x unified",
            xaxis=_month_axis(),
            yaxis={
                "title": {"text": _("Rate (%)")},
                "tickformat": ".0%",
                "rangemode": "tozero",
                "gridcolor": _GRID,
            },
        )
    )
    return figure_dict(figure)


def order_value_trend_figure(trend: Sequence[KpiFigures], currency: str) -> dict[str, Any]:
    """Average order value per month (net of refunds) in the shop's currency."""
    name = _("Average order value")
    symbol = currency_symbol(currency).strip()
    figure = go.Figure(
        go.Scatter(
            x=_trend_x(trend),
            y=[
                None if figures.average_order_value is None else float(figures.average_order_value)
                for figures in trend
            ],
            name=name,
            mode="lines+markers",
            line={"color": _ORANGE, "width": 2},
            hovertemplate=f"{name}: {symbol}%{{y:,.2f}}<extra></extra>",
        )
    )
    figure.update_layout(
        _layout(
            hovermode="x unified",
            showlegend=False,
            xaxis=_month_axis(),
            yaxis={
                "title": {"text": _("Average order value (%(currency)s)") % {"currency": currency}},
                "rangemode": "tozero",
                "tickformat": ",.0f",
                "gridcolor": _GRID,
            },
        )
    )
    return figure_dict(figure)


def inter_purchase_figure(buckets: Sequence[GapBucket]) -> dict[str, Any]:
    """The distribution of days between a customer's consecutive orders (bars per range)."""
    language = get_language()
    gaps_word = _("Repeat orders")
    figure = go.Figure(
        go.Bar(
            x=[bucket.label for bucket in buckets],
            y=[bucket.gaps for bucket in buckets],
            marker={"color": BLUE, "opacity": 0.85},
            customdata=[
                [format_count(bucket.gaps, language), format_percent(bucket.share)]
                for bucket in buckets
            ],
            hovertemplate=(
                f"%{{x}} {_('days')}<br>{gaps_word}: %{{customdata[0]}} (%{{customdata[1]}})"
                "<extra></extra>"
            ),
        )
    )
    figure.update_layout(
        _layout(
            showlegend=False,
            bargap=0.2,
            xaxis={"title": {"text": _("Days since the customer's previous order")}},
            yaxis={
                "title": {"text": _("Repeat orders")},
                "rangemode": "tozero",
                "tickformat": ",d",
                "gridcolor": _GRID,
            },
        )
    )
    return figure_dict(figure)


# --- segment migration ---------------------------------------------------------------------


def migration_sankey_figure(
    migration: SegmentMigration, from_title: str, to_title: str
) -> dict[str, Any]:
    """Customers flowing from their segment in the earlier run (left) to their segment in the
    later one (right). Only segments someone is in appear; a link's width is its customers,
    its colour that of the segment they came from."""
    language = get_language()
    colours = dict(zip(migration.codes, segment_colours(len(migration.codes)), strict=True))
    labels = dict(zip(migration.codes, migration.labels, strict=True))
    sources = [
        code for code in migration.codes if any(c.from_code == code for c in migration.cells)
    ]
    targets = [code for code in migration.codes if any(c.to_code == code for c in migration.cells)]
    source_index = {code: index for index, code in enumerate(sources)}
    target_index = {code: len(sources) + index for index, code in enumerate(targets)}
    customers_word = _("customers")
    trace = go.Sankey(
        arrangement="snap",
        node={
            "label": [labels[code] for code in sources] + [labels[code] for code in targets],
            "color": [colours[code] for code in sources] + [colours[code] for code in targets],
            "pad": 12,
            "thickness": 16,
            "line": {"width": 0},
            "hovertemplate": f"%{{label}}: %{{value:,}} {customers_word}<extra></extra>",
        },
        link={
            "source": [source_index[cell.from_code] for cell in migration.cells],
            "target": [target_index[cell.to_code] for cell in migration.cells],
            "value": [cell.customers for cell in migration.cells],
            "color": [_transparent(colours[cell.from_code]) for cell in migration.cells],
            "customdata": [format_count(cell.customers, language) for cell in migration.cells],
            "hovertemplate": (
                f"%{{source.label}} → %{{target.label}}: %{{customdata}} {customers_word}"
                "<extra></extra>"
            ),
        },
    )
    figure = go.Figure(trace)
    figure.update_layout(
        _layout(
            height=max(420, 30 * max(len(sources), len(targets)) + 80),
            margin={"l": 16, "r": 16, "t": 40, "b": 16},
            annotations=[
                {
                    "text": f"<b>{title}</b>",
                    "x": x,
                    "y": 1.0,
                    "xref": "paper",
                    "yref": "paper",
                    "yanchor": "bottom",
                    "xanchor": anchor,
                    "showarrow": False,
                }
                for title, x, anchor in ((from_title, 0, "left"), (to_title, 1, "right"))
            ],
        )
    )
    return figure_dict(figure)


def _transparent(colour: str, alpha: float = 0.35) -> str:
    red, green, blue = (int(colour[index : index + 2], 16) for index in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"
