"""The analytics pages of the dashboard, on a demo shop analysed twice.

Expected figures are read from the store with plain SQL (the runs' customer rows, the orders)
and summed in plain Python here, then compared with what the pages print.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client

from patron.analytics.models import AnalysisRun
from tests.analytics.conftest import StoreCustomer, store_customers
from tests.web.conftest import STAFF_PASSWORD, AnalysedShop, SmallShop

pytestmark = pytest.mark.django_db

ANALYTICS_URLS = [
    "/analytics/segments/",
    "/analytics/segments/rfm/champions/",
    "/analytics/segments/rfm/champions/export.csv",
    "/analytics/cohorts/",
    "/analytics/kpis/",
    "/analytics/migration/",
]


def _text(html: bytes) -> str:
    """The page's text with tags removed and white space collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html.decode())).strip()


def _cells(html: bytes, attribute: str, value: str) -> list[str]:
    """The texts of the cells (th and td) of the table row ``<tr {attribute}="{value}">``."""
    match = re.search(rf'<tr {attribute}="{re.escape(value)}">(.*?)</tr>', html.decode(), re.S)
    assert match, f"no row {attribute}={value}"
    cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", match.group(1), re.S)
    return [_text(cell.encode()) for cell in cells]


def _kpi(html: bytes, name: str) -> str:
    match = re.search(
        rf'data-kpi="{name}">.*?class="kpi-value"[^>]*>([^<]*)<', html.decode(), re.DOTALL
    )
    assert match, f"no KPI card {name}"
    return match.group(1).strip()


def _sql(query: str, parameters: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, parameters)
        return list(cursor.fetchall())


def _money(amount: Decimal) -> str:
    return f"¥{amount.quantize(Decimal('0.01')):,}"


# --- access and empty states -----------------------------------------------------------


@pytest.mark.parametrize("url", ANALYTICS_URLS)
def test_anonymous_visitor_is_sent_to_the_login_page(client: Client, url: str) -> None:
    # when
    response = client.get(url)
    # then
    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


@pytest.mark.parametrize("url", ANALYTICS_URLS)
def test_signed_in_user_who_is_not_staff_is_refused(client: Client, url: str) -> None:
    # given
    client.force_login(User.objects.create_user("visitor", password=STAFF_PASSWORD))
    # when
    response = client.get(url)
    # then
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("url", "title"),
    [
        ("/analytics/segments/", "Customer segments"),
        ("/analytics/cohorts/", "Cohort retention"),
        ("/analytics/kpis/", "Loyalty KPIs"),
        ("/analytics/migration/", "Segment migration"),
    ],
)
def test_pages_before_any_analysis_say_to_run_patron_analyze(
    staff_client: Client, small_shop: SmallShop, url: str, title: str
) -> None:
    # when
    response = staff_client.get(url)
    # then
    text = _text(response.content)
    assert response.status_code == 200
    assert f"{title} " in text
    assert "No analysis yet Run patron analyze to score every customer" in text
    assert "data-plotly-figure" not in response.content.decode()


def test_customer_page_before_any_analysis_says_how_scores_arrive(
    staff_client: Client, small_shop: SmallShop
) -> None:
    # when
    text = _text(staff_client.get("/customers/C-0001/").content)
    # then
    assert "Scores and segments Not analysed yet: scores appear after patron analyze" in text


# --- segments --------------------------------------------------------------------------


def test_segments_page_lists_each_rfm_segment_with_its_customers_and_revenue(
    staff_client: Client, analysed_shop: AnalysedShop
) -> None:
    # given the latest run's rows, grouped with plain SQL
    run = analysed_shop.latest
    groups = {
        str(code): (int(customers), Decimal(str(revenue)))
        for code, customers, revenue in _sql(
            "SELECT rfm_segment, COUNT(*), SUM(monetary) FROM analytics_customeranalysis "
            "WHERE run_id = %s GROUP BY rfm_segment",
            [run.pk],
        )
    }
    total = sum(customers for customers, _ in groups.values())
    # when
    response = staff_client.get("/analytics/segments/")
    # then
    assert response.status_code == 200
    assert _kpi(response.content, "customers") == str(total)
    for code, (customers, revenue) in groups.items():
        cells = _cells(response.content, "data-segment", code)
        assert cells[1:4] == [
            str(customers),
            f"{Decimal(100 * customers) / total:.1f}%",
            _money(revenue),
        ]
    assert _cells(response.content, "data-segment", "champions")[0] == "Champions"
    assert response.content.decode().count("<tr data-segment=") == 11
    assert 'data-plotly-figure="segment-treemap-figure"' in response.content.decode()


def test_segments_page_switches_segmentation_and_speaks_chinese(
    staff_client: Client, analysed_shop: AnalysedShop
) -> None:
    # given the value classes of the latest run, counted with plain SQL
    counts = dict(
        _sql(
            "SELECT value_class, COUNT(*) FROM analytics_customeranalysis WHERE run_id = %s "
            "GROUP BY value_class",
            [analysed_shop.latest.pk],
        )
    )
    # when
    response = staff_client.get(
        "/analytics/segments/", {"by": "value_class"}, HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    # then
    text = _text(response.content)
    assert "客户分群 分析 #" in text
    assert response.content.decode().count("<tr data-segment=") == 8
    cells = _cells(response.content, "data-segment", "important_value")
    assert cells[:2] == ["重要价值客户", str(counts.get("important_value", 0))]
    assert '<a class="tab is-active" data-by="value_class"' in response.content.decode()


def test_segment_click_through_lists_its_customers_25_a_page_linked_to_their_pages(
    staff_client: Client, analysed_shop: AnalysedShop
) -> None:
    # given the low value tier of the latest run (the lowest 40 %), by plain SQL
    run = analysed_shop.latest
    members = [
        str(external_id)
        for (external_id,) in _sql(
            "SELECT c.external_id FROM analytics_customeranalysis a "
            "JOIN customers_customer c ON c.id = a.customer_id "
            "WHERE a.run_id = %s AND a.value_tier = 'low' ORDER BY c.external_id",
            [run.pk],
        )
    ]
    assert 25 < len(members) <= 75
    segments_page = staff_client.get("/analytics/segments/", {"by": "value_tier"})
    link = f"/analytics/segments/value_tier/low/?run={run.pk}"
    assert f'href="{link}"' in segments_page.content.decode()
    # when
    first = staff_client.get(link)
    second = staff_client.get(link + "&page=2")
    # then
    assert re.findall(r'<tr data-customer="([^"]+)">', first.content.decode()) == members[:25]
    assert f'href="/customers/{members[0]}/"' in first.content.decode()
    assert f"Low value Value tier · {len(members)} customers" in _text(first.content)
    assert f'href="?run={run.pk}&amp;page=2"' in first.content.decode()
    assert re.findall(r'<tr data-customer="([^"]+)">', second.content.decode()) == members[25:50]


def test_segment_export_downloads_its_customers_and_scores_as_csv(
    staff_client: Client, analysed_shop: AnalysedShop
) -> None:
    # given the rows of the "lost" segment in the earlier run, read with plain SQL
    run = analysed_shop.earlier
    expected = [
        (str(external_id), str(segment), Decimal(str(monetary)).quantize(Decimal("0.01")), r)
        for external_id, segment, monetary, r in _sql(
            "SELECT c.external_id, a.rfm_segment, a.monetary, a.r_score "
            "FROM analytics_customeranalysis a JOIN customers_customer c ON c.id = a.customer_id "
            "WHERE a.run_id = %s AND a.rfm_segment = 'lost' ORDER BY c.external_id",
            [run.pk],
        )
    ]
    assert expected
    # when
    response = staff_client.get(f"/analytics/segments/rfm/lost/export.csv?run={run.pk}")
    # then
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="patron-run{run.pk}-rfm-lost.csv"'
    )
    assert response.content.startswith("\ufeff".encode())  # Excel then reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert [
        (
            row["external_id"],
            row["rfm_segment"],
            Decimal(row["monetary"]).quantize(Decimal("0.01")),
            int(row["r_score"]),
        )
        for row in rows
    ] == expected
    assert {row["as_of"] for row in rows} == {run.as_of.isoformat()}


def test_unknown_segment_run_or_channel_is_404(
    staff_client: Client, analysed_shop: AnalysedShop
) -> None:
    # given addresses naming what does not exist (one shop for all: building it takes seconds)
    urls = [
        "/analytics/segments/?by=nonsense",
        "/analytics/segments/rfm/no_such_segment/",
        "/analytics/segments/nonsense/champions/",
        "/analytics/segments/rfm/lost/export.csv?run=999999",
        "/analytics/cohorts/?channel=carrier-pigeon",
        "/analytics/migration/?from=999999",
    ]
    # when
    statuses = {url: staff_client.get(url).status_code for url in urls}
    # then
    assert statuses == dict.fromkeys(urls, 404)


# --- cohorts ---------------------------------------------------------------------------


def test_cohort_page_lists_cohorts_by_first_order_month_and_channel(
    staff_client: Client, analysed_shop: AnalysedShop
) -> None:
    # given each customer's first counted order up to the run's as-of day (plain SQL + Python)
    run = analysed_shop.latest
    customers = store_customers(run.as_of)
    sizes = Counter(f"{c.order_days[0]:%Y-%m}" for c in customers.values())
    revenue: dict[str, Decimal] = {}
    for customer in customers.values():
        month = f"{customer.order_days[0]:%Y-%m}"
        revenue[month] = revenue.get(month, Decimal(0)) + customer.monetary
    web = Counter(
        f"{c.order_days[0]:%Y-%m}" for c in customers.values() if c.first_channel == "web"
    )
    # when
    everyone = staff_client.get("/analytics/cohorts/")
    web_only = staff_client.get("/analytics/cohorts/", {"channel": "web", "run": str(run.pk)})
    # then
    html = everyone.content.decode()
    assert re.findall(r'<tr data-cohort="([^"]+)">', html) == sorted(sizes, reverse=True)
    for month, size in sizes.items():
        cells = _cells(everyone.content, "data-cohort", month)
        assert (cells[1], cells[3]) == (str(size), _money(revenue[month]))
    assert 'data-plotly-figure="retention-heatmap-figure"' in html
    assert 'data-plotly-figure="cohort-revenue-figure"' in html
    web_html = web_only.content.decode()
    assert re.findall(r'<tr data-cohort="([^"]+)">', web_html) == sorted(web, reverse=True)
    for month, size in web.items():
        assert _cells(web_only.content, "data-cohort", month)[1] == str(size)
    assert "Retention by cohort: first order in Web shop" in _text(web_only.content)


# --- KPIs ------------------------------------------------------------------------------


def _period_figures(
    customers: dict[str, StoreCustomer], start: dt.date, end: dt.date
) -> tuple[int, int, int, Decimal]:
    """Active customers, new customers, orders and net revenue of a period, in plain Python."""
    active = new = orders = 0
    revenue = Decimal(0)
    for customer in customers.values():
        days, nets = customer.order_days, customer.order_nets
        inside = [net for day, net in zip(days, nets, strict=True) if start <= day <= end]
        if inside:
            active += 1
            new += start <= days[0]
            orders += len(inside)
            revenue += sum(inside, Decimal(0))
    return active, new, orders, revenue


def test_kpi_page_shows_the_last_30_days_to_the_run_against_the_30_before(
    staff_client: Client, analysed_shop: AnalysedShop
) -> None:
    # given the orders of the store, read with plain SQL
    as_of = analysed_shop.latest.as_of
    customers = store_customers(as_of)
    start = as_of - dt.timedelta(days=29)
    active, new, orders, revenue = _period_figures(customers, start, as_of)
    before = _period_figures(customers, start - dt.timedelta(days=30), start - dt.timedelta(1))
    # when
    response = staff_client.get("/analytics/kpis/")
    # then
    text = _text(response.content)
    assert response.status_code == 200
    assert f"{start} to {as_of} (30 days), against {start - dt.timedelta(days=30)}" in text
    assert _kpi(response.content, "active_customers") == str(active)
    assert _kpi(response.content, "new_customers") == str(new)
    assert _kpi(response.content, "returning_customers") == str(active - new)
    assert _kpi(response.content, "orders") == str(orders)
    assert _kpi(response.content, "revenue") == _money(revenue)
    change = (Decimal(orders) - before[2]) / before[2] * 100
    sign = "▲ +" if change > 0 else "▼ " if change < 0 else "＝ +"
    assert f"{sign}{change.quantize(Decimal('0.1'))}%" in text
    for figure in ("inter-purchase", "active-trend", "rates-trend", "aov-trend"):
        assert f'data-plotly-figure="{figure}-figure"' in response.content.decode()


def test_kpi_page_of_a_chosen_period_in_chinese(
    staff_client: Client, analysed_shop: AnalysedShop
) -> None:
    # given
    customers = store_customers(analysed_shop.latest.as_of)
    start, end = dt.date(2025, 1, 1), dt.date(2025, 3, 31)
    active, _new, orders, _revenue = _period_figures(customers, start, end)
    # when
    response = staff_client.get(
        "/analytics/kpis/", {"start": "2025-01-01", "end": "2025-03-31"}, HTTP_ACCEPT_LANGUAGE="zh"
    )
    # then
    text = _text(response.content)
    assert "2025-01-01 至 2025-03-31（90 天），对比 2024-10-03 至 2024-12-31" in text
    assert _kpi(response.content, "active_customers") == str(active)
    assert _kpi(response.content, "orders") == str(orders)
    assert "活跃客户" in text
    assert "复购率" in text


def test_kpi_page_refuses_a_period_ending_before_it_starts(
    staff_client: Client, analysed_shop: AnalysedShop
) -> None:
    # when
    response = staff_client.get("/analytics/kpis/", {"start": "2025-05-01", "end": "2025-04-01"})
    # then
    assert response.status_code == 400
    assert "The period must not end before it starts." in _text(response.content)
    assert 'data-kpi="orders"' not in response.content.decode()


# --- migration -------------------------------------------------------------------------


def test_migration_page_compares_the_latest_two_runs_with_plain_sql_counts(
    staff_client: Client, analysed_shop: AnalysedShop
) -> None:
    # given the moves of the customers in both runs, counted with plain SQL
    earlier, latest = analysed_shop.earlier, analysed_shop.latest
    moves = {
        (str(a), str(b)): int(n)
        for a, b, n in _sql(
            "SELECT a.rfm_segment, b.rfm_segment, COUNT(*) FROM analytics_customeranalysis a "
            "JOIN analytics_customeranalysis b ON b.customer_id = a.customer_id "
            "WHERE a.run_id = %s AND b.run_id = %s GROUP BY a.rfm_segment, b.rfm_segment",
            [earlier.pk, latest.pk],
        )
    }
    both = sum(moves.values())
    stayed = sum(n for (a, b), n in moves.items() if a == b)
    # when
    response = staff_client.get("/analytics/migration/")
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert (
        f"RFM segment: analysis #{earlier.pk} ({earlier.as_of}) to analysis #{latest.pk} "
        f"({latest.as_of})" in _text(response.content)
    )
    assert _kpi(response.content, "both") == str(both)
    assert _kpi(response.content, "stayed") == str(stayed)
    assert _kpi(response.content, "moved") == str(both - stayed)
    columns = re.findall(r'<th class="num" data-to="([^"]+)">', html)
    for source in {a for a, _ in moves}:
        cells = _cells(response.content, "data-from", source)
        counts = [moves.get((source, target), 0) for target in columns]
        assert cells[1:-1] == [str(n) if n else "·" for n in counts]
        assert cells[-1] == str(sum(counts))
    assert 'data-plotly-figure="migration-sankey-figure"' in html


def test_migration_page_with_one_run_says_a_second_is_needed(
    staff_client: Client, analysed_shop: AnalysedShop
) -> None:
    # given only the latest run remains
    AnalysisRun.objects.filter(pk=analysed_shop.earlier.pk).delete()
    # when
    text = _text(staff_client.get("/analytics/migration/").content)
    # then
    assert "Segment migration needs two analyses" in text
    assert "patron analyze --as-of YYYY-MM-DD" in text


# --- customer page ---------------------------------------------------------------------


def test_customer_page_shows_the_latest_scores_in_chinese(
    staff_client: Client, analysed_shop: AnalysedShop
) -> None:
    # given one customer's row of the latest run, read with plain SQL
    run = analysed_shop.latest
    external_id, recency, frequency, r, f, m, score = _sql(
        "SELECT c.external_id, a.recency_days, a.frequency, a.r_score, a.f_score, a.m_score, "
        "a.value_score FROM analytics_customeranalysis a "
        "JOIN customers_customer c ON c.id = a.customer_id "
        "WHERE a.run_id = %s AND a.rfm_segment = 'champions' ORDER BY c.external_id LIMIT 1",
        [run.pk],
    )[0]
    # when
    response = staff_client.get(f"/customers/{external_id}/", HTTP_ACCEPT_LANGUAGE="zh-hans")
    # then
    text = _text(response.content)
    assert f"评分与分群 分析 #{run.pk}，截至 {run.as_of}" in text
    assert f"最近购买 {r} /5 距最近一次下单 {recency} 天" in text
    assert f"购买频次 {f} /5 {frequency} 笔订单" in text
    assert f"消费金额 {m} /5" in text
    assert f"价值得分 {Decimal(str(score)).quantize(Decimal('0.1'))} /100" in text
    assert "RFM 分群 冠军客户" in text
    assert f'href="/analytics/segments/rfm/champions/?run={run.pk}"' in response.content.decode()


def test_segment_list_and_customer_page_queries_do_not_grow_with_the_rows(
    staff_client: Client, analysed_shop: AnalysedShop, django_assert_num_queries: Any
) -> None:
    # given a full page of the low value tier, and one of its customers
    run = analysed_shop.latest
    link = f"/analytics/segments/value_tier/low/?run={run.pk}"
    (external_id,) = _sql(
        "SELECT c.external_id FROM analytics_customeranalysis a "
        "JOIN customers_customer c ON c.id = a.customer_id "
        "WHERE a.run_id = %s ORDER BY c.external_id LIMIT 1",
        [run.pk],
    )[0]
    # when / then: session, user, the user's roles, run, count, the page's rows with their
    # customers
    with django_assert_num_queries(6):
        assert staff_client.get(link).status_code == 200
    # and the customer page adds the customer's row in the latest run to its twelve, the
    # recommendation panel's consent read, the consent panel its current consents and their
    # history, the data subject request panel the customer's requests, the user's roles and
    # the audit event of the unmasked read
    with django_assert_num_queries(19):
        assert staff_client.get(f"/customers/{external_id}/").status_code == 200
