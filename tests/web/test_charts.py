"""The weekly orders and revenue figure explains itself: axis titles, units, hover values."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.utils import translation

from patron.orders.selectors import WeekFigures
from patron.web.charts import weekly_orders_revenue_figure

WEEKS = [
    WeekFigures(date(2026, 6, 15), 3, Decimal("1234.50")),
    WeekFigures(date(2026, 6, 22), 0, Decimal("0.00")),
    WeekFigures(date(2026, 6, 29), 12, Decimal("980.00")),
]


def test_figure_has_orders_bars_and_revenue_line_with_their_values() -> None:
    # when
    with translation.override("en"):
        figure = weekly_orders_revenue_figure(WEEKS, "CNY")
    # then
    bars, line = figure["data"]
    assert (bars["type"], bars["name"]) == ("bar", "Orders")
    assert bars["x"] == ["2026-06-15", "2026-06-22", "2026-06-29"]
    assert bars["y"] == [3, 0, 12]
    assert (line["type"], line["name"], line["yaxis"]) == ("scatter", "Revenue", "y2")
    assert line["y"] == [1234.5, 0.0, 980.0]
    assert line["hovertemplate"] == "Revenue: ¥%{y:,.2f}<extra></extra>"


def test_figure_axes_have_titles_with_units_in_the_active_language() -> None:
    # when
    with translation.override("zh-hans"):
        layout = weekly_orders_revenue_figure(WEEKS, "CNY")["layout"]
    # then
    assert layout["xaxis"]["title"]["text"] == "周（从周一起）"
    assert layout["yaxis"]["title"]["text"] == "每周订单数"
    assert layout["yaxis2"]["title"]["text"] == "每周销售额（CNY）"
    assert layout["hovermode"] == "x unified"
