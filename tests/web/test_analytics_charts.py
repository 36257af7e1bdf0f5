"""The analytics figures and KPI cards explain themselves: values, hover texts, axis titles."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import translation

from patron.analytics.selectors import (
    CohortRow,
    GapBucket,
    KpiFigures,
    MigrationCell,
    SegmentMigration,
    SegmentSummary,
)
from patron.web.analytics_charts import (
    SEGMENT_PALETTE,
    CohortSummary,
    active_customers_trend_figure,
    cohort_revenue_figure,
    inter_purchase_figure,
    loyalty_rates_trend_figure,
    migration_sankey_figure,
    order_value_trend_figure,
    retention_heatmap_figure,
    segment_colours,
    segment_share_figure,
    segment_treemap_figure,
    summarise_cohorts,
)
from patron.web.analytics_views import kpi_cards, migration_table


def _summary(code: str, label: str, customers: int, revenue: str, share: float) -> SegmentSummary:
    return SegmentSummary(
        code=code,
        label=label,
        customers=customers,
        share=share,
        revenue=Decimal(revenue),
        revenue_share=share,
        mean_recency_days=None,
        mean_frequency=None,
        mean_monetary=None,
        mean_value_score=None,
    )


SUMMARIES = [
    _summary("champions", "Champions", 12_345, "2345678.90", 0.6),
    _summary("new", "New", 0, "0", 0.0),
    _summary("lost", "Lost", 8_230, "1234.50", 0.4),
]


def test_segment_colours_spread_over_the_palette_best_first() -> None:
    # when / then
    assert segment_colours(len(SEGMENT_PALETTE)) == list(SEGMENT_PALETTE)
    assert segment_colours(3) == [SEGMENT_PALETTE[0], SEGMENT_PALETTE[5], SEGMENT_PALETTE[10]]
    assert segment_colours(1) == [SEGMENT_PALETTE[0]]


def test_treemap_has_a_tile_per_non_empty_segment_with_formatted_figures_and_its_link() -> None:
    # given
    urls = {"champions": "/analytics/segments/rfm/champions/?run=3", "lost": "/x/lost/"}
    # when
    with translation.override("en"):
        english = segment_treemap_figure(SUMMARIES, "CNY", urls)["data"][0]
    with translation.override("zh-hans"):
        chinese = segment_treemap_figure(SUMMARIES, "CNY", urls)["data"][0]
    # then
    assert english["type"] == "treemap"
    assert english["ids"] == ["champions", "lost"]
    assert english["values"] == [12_345, 8_230]
    assert english["marker"]["colors"] == [SEGMENT_PALETTE[0], SEGMENT_PALETTE[10]]
    assert english["customdata"] == [
        ["12,345", "60.0%", "¥2.35M", "60.0%", "/analytics/segments/rfm/champions/?run=3"],
        ["8,230", "40.0%", "¥1,234.50", "40.0%", "/x/lost/"],
    ]
    assert english["hovertemplate"] == (
        "<b>%{label}</b><br>Customers: %{customdata[0]} (%{customdata[1]})"
        "<br>Revenue: %{customdata[2]} (%{customdata[3]})<extra></extra>"
    )
    assert chinese["customdata"][0][:3] == ["1.23万", "60.0%", "¥234.57万"]
    assert "客户: %{customdata[0]}" in chinese["hovertemplate"]


def test_share_bars_compare_customer_and_revenue_shares_in_percent() -> None:
    # when
    with translation.override("en"):
        figure = segment_share_figure(SUMMARIES)
    # then
    customers, revenue = figure["data"]
    assert (customers["name"], revenue["name"]) == ("Share of customers", "Share of revenue")
    assert customers["y"] == ["Champions", "New", "Lost"]
    assert customers["x"] == [0.6, 0.0, 0.4]
    assert figure["layout"]["xaxis"]["title"]["text"] == "Share (%)"
    assert figure["layout"]["xaxis"]["tickformat"] == ".0%"


COHORT_ROWS = [
    CohortRow(dt.date(2025, 1, 1), None, 0, 4, 4, 1.0, 5, Decimal("400.00")),
    CohortRow(dt.date(2025, 1, 1), None, 2, 4, 1, 0.25, 1, Decimal("50.50")),
    CohortRow(dt.date(2025, 2, 1), None, 0, 2, 2, 1.0, 2, Decimal("100.00")),
    CohortRow(dt.date(2025, 2, 1), None, 1, 2, 1, 0.5, 1, Decimal("20.00")),
    CohortRow(dt.date(2025, 3, 1), None, 0, 3, 3, 1.0, 3, Decimal("90.00")),
]
AS_OF = dt.date(2025, 3, 15)


def test_cohort_summaries_sum_revenue_and_read_month_one_retention() -> None:
    # when
    summaries = summarise_cohorts(COHORT_ROWS, AS_OF, "CNY")
    # then: nobody of January came back in February (0 %); March's month 1 is still ahead;
    # 450.50 / 4 = 112.625 rounds half up
    assert summaries == [
        CohortSummary(dt.date(2025, 1, 1), 4, Decimal("450.50"), Decimal("112.63"), 0.0),
        CohortSummary(dt.date(2025, 2, 1), 2, Decimal("120.00"), Decimal("60.00"), 0.5),
        CohortSummary(dt.date(2025, 3, 1), 3, Decimal("90.00"), Decimal("30.00"), None),
    ]


def test_retention_heatmap_fills_empty_months_with_zero_and_leaves_the_future_blank() -> None:
    # when
    with translation.override("en"):
        figure = retention_heatmap_figure(COHORT_ROWS, AS_OF)
    # then
    heatmap = figure["data"][0]
    assert heatmap["type"] == "heatmap"
    assert heatmap["x"] == [0, 1, 2]
    assert heatmap["y"] == ["2025-01", "2025-02", "2025-03"]
    assert heatmap["z"] == [[100.0, 0.0, 25.0], [100.0, 50.0, None], [100.0, None, None]]
    assert heatmap["customdata"][0] == [["4", "4"], ["0", "4"], ["1", "4"]]
    # the colour scale stops at the best retention after month 0
    assert (heatmap["zmin"], heatmap["zmax"]) == (0, 50.0)
    assert heatmap["hovertemplate"] == (
        "Cohort %{y} · Month %{x}<br>Retention: %{z:.1f}%"
        "<br>%{customdata[0]} of %{customdata[1]} customers bought<extra></extra>"
    )
    layout = figure["layout"]
    assert layout["xaxis"]["title"]["text"] == "Months since first purchase"
    assert layout["yaxis"]["title"]["text"] == "Cohort (month of first purchase)"
    assert layout["yaxis"]["autorange"] == "reversed"


def test_cohort_revenue_bars_and_revenue_per_customer_line() -> None:
    # given
    summaries = summarise_cohorts(COHORT_ROWS, AS_OF, "CNY")
    # when
    with translation.override("zh-hans"):
        figure = cohort_revenue_figure(summaries, "CNY")
    # then
    bars, line = figure["data"]
    assert bars["x"] == ["2025-01", "2025-02", "2025-03"]
    assert bars["y"] == [450.5, 120.0, 90.0]
    assert line["y"] == [112.63, 60.0, 30.0]
    assert line["customdata"] == ["¥112.63", "¥60.00", "¥30.00"]
    assert figure["layout"]["yaxis"]["title"]["text"] == "净销售额（CNY）"
    assert figure["layout"]["yaxis2"]["title"]["text"] == "人均销售额（CNY）"


def _figures(month: int, **values: object) -> KpiFigures:
    base: dict[str, object] = {
        "period_start": dt.date(2025, month, 1),
        "period_end": dt.date(2025, month, 28),
        "active_customers": 0,
        "new_customers": 0,
        "returning_customers": 0,
        "orders": 0,
        "revenue": Decimal(0),
        "repeat_purchase_rate": None,
        "retention_rate": None,
        "churn_rate": None,
        "purchase_frequency": None,
        "average_order_value": None,
        "average_inter_purchase_days": None,
        "median_inter_purchase_days": None,
        "top20_revenue_share": None,
    }
    base.update(values)
    return KpiFigures(**base)  # type: ignore[arg-type]


TREND = [
    _figures(1, active_customers=10, new_customers=10, repeat_purchase_rate=0.1),
    _figures(
        2,
        active_customers=12,
        new_customers=4,
        returning_customers=8,
        repeat_purchase_rate=0.25,
        retention_rate=0.8,
        average_order_value=Decimal("88.50"),
    ),
]


def test_kpi_trend_figures_plot_each_month_with_titled_axes() -> None:
    # when
    with translation.override("en"):
        active = active_customers_trend_figure(TREND)
        rates = loyalty_rates_trend_figure(TREND)
        order_value = order_value_trend_figure(TREND, "CNY")
    # then
    returning, new = active["data"]
    assert returning["x"] == ["2025-01-01", "2025-02-01"]
    assert (returning["y"], new["y"]) == ([0, 8], [10, 4])
    assert active["layout"]["barmode"] == "stack"
    assert active["layout"]["yaxis"]["title"]["text"] == "Active customers per month"
    repeat, retention = rates["data"]
    assert (repeat["y"], retention["y"]) == ([0.1, 0.25], [None, 0.8])
    assert retention["hovertemplate"] == "Retention rate: %{y:.1%}<extra></extra>"
    assert rates["layout"]["yaxis"]["tickformat"] == ".0%"
    assert order_value["data"][0]["y"] == [None, 88.5]
    assert order_value["data"][0]["hovertemplate"] == (
        "Average order value: ¥%{y:,.2f}<extra></extra>"
    )
    assert order_value["layout"]["yaxis"]["title"]["text"] == "Average order value (CNY)"
    assert order_value["layout"]["xaxis"]["title"]["text"] == "Month"


def test_inter_purchase_bars_give_counts_and_shares() -> None:
    # given
    buckets = [GapBucket("0-7", 3, 0.75), GapBucket(">365", 1, 0.25)]
    # when
    with translation.override("en"):
        figure = inter_purchase_figure(buckets)
    # then
    bars = figure["data"][0]
    assert (bars["x"], bars["y"]) == (["0-7", ">365"], [3, 1])
    assert bars["customdata"] == [["3", "75.0%"], ["1", "25.0%"]]
    assert figure["layout"]["xaxis"]["title"]["text"] == "Days since the customer's previous order"


MIGRATION = SegmentMigration(
    from_run_id=1,
    to_run_id=2,
    by="value_tier",
    codes=("top", "high", "medium", "low"),
    labels=("Top value", "High value", "Medium value", "Low value"),
    cells=(
        MigrationCell("top", "top", 5),
        MigrationCell("top", "high", 2),
        MigrationCell("medium", "high", 1),
        MigrationCell("medium", "low", 3),
    ),
)


def test_sankey_links_each_earlier_segment_to_the_later_one() -> None:
    # when
    with translation.override("en"):
        figure = migration_sankey_figure(MIGRATION, "Run #1", "Run #2")
    # then: nodes are the segments someone left (top, medium), then those reached
    sankey = figure["data"][0]
    assert sankey["node"]["label"] == [
        "Top value",
        "Medium value",
        "Top value",
        "High value",
        "Low value",
    ]
    assert sankey["link"]["source"] == [0, 0, 1, 1]
    assert sankey["link"]["target"] == [2, 3, 3, 4]
    assert sankey["link"]["value"] == [5, 2, 1, 3]
    assert sankey["link"]["hovertemplate"] == (
        "%{source.label} → %{target.label}: %{customdata} customers<extra></extra>"
    )
    assert [note["text"] for note in figure["layout"]["annotations"]] == [
        "<b>Run #1</b>",
        "<b>Run #2</b>",
    ]


def test_migration_table_has_rows_left_and_columns_reached() -> None:
    # when
    columns, rows = migration_table(MIGRATION)
    # then
    assert columns == [("top", "Top value"), ("high", "High value"), ("low", "Low value")]
    assert [(row.code, row.counts, row.total, row.stayed) for row in rows] == [
        ("top", [("top", 5), ("high", 2), ("low", 0)], 7, 5),
        ("medium", [("top", 0), ("high", 1), ("low", 3)], 4, 0),
    ]


def test_kpi_cards_compare_counts_relatively_and_rates_in_points() -> None:
    # given
    now = _figures(
        2,
        active_customers=12,
        orders=15,
        revenue=Decimal("1500.00"),
        repeat_purchase_rate=0.25,
        retention_rate=None,
        average_inter_purchase_days=20.0,
        median_inter_purchase_days=14.5,
    )
    before = _figures(
        1, active_customers=10, orders=0, revenue=Decimal("1000.00"), repeat_purchase_rate=0.2
    )
    # when
    with translation.override("en"):
        cards = {card.key: card for card in kpi_cards(now, before, "CNY")}
    # then
    assert len(cards) == 12
    assert (cards["active_customers"].value, cards["active_customers"].change) == (
        "12",
        Decimal("0.2"),
    )
    assert cards["orders"].change is None  # nothing to compare with
    assert (cards["revenue"].value, cards["revenue"].change) == ("¥1,500.00", Decimal("0.5"))
    assert cards["repeat_purchase_rate"].value == "25.0%"
    assert cards["repeat_purchase_rate"].point_change == Decimal("0.05")
    assert cards["repeat_purchase_rate"].change is None
    assert (cards["retention_rate"].value, cards["retention_rate"].point_change) == ("–", None)
    assert cards["average_inter_purchase_days"].value == "20.0 days"
    assert cards["average_inter_purchase_days"].hint == "Average; median 14.5 days"
