"""The analytics pages in a real browser: a demo shop analysed with ``run_analysis``, each
page drawn by Plotly in headless Chromium, in English and in Chinese, with screenshots.

As in test_browser.py, the data is created before Playwright's event loop starts and the
pages are served by pytest-django's live server thread.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection

from patron.analytics.choices import RfmSegmentChoices
from patron.demo.generator import DemoWorld
from tests.web.browser import logged_in_page
from tests.web.conftest import STAFF_PASSWORD, make_analysed_shop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _largest_segment(run_id: int) -> tuple[str, int]:
    """The RFM segment with the most customers in the run and its size, by plain SQL."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rfm_segment, COUNT(*) FROM analytics_customeranalysis WHERE run_id = %s "
            "GROUP BY rfm_segment ORDER BY COUNT(*) DESC, rfm_segment LIMIT 1",
            [run_id],
        )
        code, size = cursor.fetchone()
    return str(code), int(size)


def _drawn(name: str, part: str) -> str:
    """The selector of an element Plotly drew inside the figure ``name`` of a page."""
    return f"[data-plotly-figure={name}-figure] {part}"


def test_analytics_pages_draw_their_charts_in_both_languages(
    live_server: object, artifacts_dir: Path, analytics_world: DemoWorld
) -> None:
    # given an analysed demo shop (two runs) and a staff user, created before the browser
    user = User.objects.create_user("mei", password=STAFF_PASSWORD, is_staff=True)
    # Pages open by role; get_or_create: the live server's flushes drop the
    # migration's groups.
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    shop = make_analysed_shop(analytics_world)
    segment, segment_size = _largest_segment(shop.latest.pk)
    segment_label = str(RfmSegmentChoices(segment).label)
    first_customer = (
        shop.latest.customer_rows.filter(rfm_segment=segment)
        .order_by("customer__external_id")
        .values_list("customer__external_id", flat=True)
        .first()
    )
    base = str(live_server.url)  # type: ignore[attr-defined]
    shots = artifacts_dir / "browser-analytics"
    shots.mkdir(exist_ok=True)
    from playwright.sync_api import expect

    with logged_in_page(base, "mei", "/analytics/segments/") as page:
        # when the RFM page opens, then the treemap and share bars are drawn
        expect(page.locator("h1.page-title")).to_have_text("Customer segments")
        expect(page.locator(_drawn("segment-treemap", ".treemap"))).to_be_visible()
        expect(page.locator(_drawn("segment-treemap", "g.slice"))).not_to_have_count(0)
        expect(page.locator(_drawn("segment-share", ".main-svg")).first).to_be_visible()
        expect(page.locator("table[data-table=segments] tbody tr")).to_have_count(11)
        page.screenshot(path=shots / "01-segments-en.png", full_page=True)

        # when the value classes are chosen, then the eight classes are listed
        page.click("a.tab[data-by=value_class]")
        expect(page.locator("table[data-table=segments] tbody tr")).to_have_count(8)
        expect(page.locator(_drawn("segment-treemap", ".treemap"))).to_be_visible()
        page.screenshot(path=shots / "02-value-classes-en.png", full_page=True)

        # when the largest RFM segment is clicked, then its customers are listed
        page.click("a.tab[data-by=rfm]")
        page.click(f"tr[data-segment={segment}] td:first-child a")
        expect(page.locator("h1.page-title")).to_have_text(segment_label)
        rows = page.locator("table[data-table=segment-customers] tbody tr")
        expect(rows).to_have_count(min(segment_size, 25))
        expect(rows.first).to_have_attribute("data-customer", str(first_customer))
        page.screenshot(path=shots / "03-segment-customers-en.png", full_page=True)

        # when a customer of it is opened, then the page shows the customer's scores
        rows.first.locator("a").click()
        expect(page.locator("[data-card=analysis] [data-score=r] .score-value")).to_be_visible()
        page.screenshot(path=shots / "04-customer-scores-en.png", full_page=True)

        # when the segment's tile of the treemap is clicked, then its customers are listed
        page.goto(f"{base}/analytics/segments/")
        page.locator(_drawn("segment-treemap", "g.slice")).filter(has_text=segment_label).click()
        expect(page.locator("h1.page-title")).to_have_text(segment_label)
        expect(rows).to_have_count(min(segment_size, 25))

        # when the cohort page opens, then the retention heatmap and revenue bars are drawn
        page.goto(f"{base}/analytics/cohorts/")
        expect(page.locator(_drawn("retention-heatmap", ".heatmaplayer"))).to_have_count(1)
        expect(page.locator(_drawn("cohort-revenue", ".barlayer"))).to_have_count(1)
        page.screenshot(path=shots / "05-cohorts-en.png", full_page=True)
        # and one channel's cohorts are a click away
        page.locator("nav.tabs a.tab").nth(1).click()
        expect(page.locator("nav.tabs a.tab.is-active")).not_to_have_attribute("data-channel", "")
        expect(page.locator(_drawn("retention-heatmap", ".heatmaplayer"))).to_have_count(1)

        # when the KPI page opens, then cards and four charts are drawn
        page.goto(f"{base}/analytics/kpis/")
        expect(page.locator(".kpi[data-kpi]")).to_have_count(12)
        for figure in ("inter-purchase", "active-trend", "rates-trend", "aov-trend"):
            expect(page.locator(_drawn(figure, ".main-svg")).first).to_be_visible()
        page.screenshot(path=shots / "06-kpis-en.png", full_page=True)

        # when the migration page opens, then the Sankey diagram of the two runs is drawn
        page.goto(f"{base}/analytics/migration/")
        expect(page.locator(_drawn("migration-sankey", ".sankey"))).to_have_count(1)
        expect(page.locator("table[data-table=migration]")).to_be_visible()
        page.screenshot(path=shots / "07-migration-en.png", full_page=True)

        # when the staff user switches to Chinese, then every page speaks Chinese
        page.goto(f"{base}/analytics/segments/")
        page.click("button.lang-option[value=zh-hans]")
        expect(page.locator("h1.page-title")).to_have_text("客户分群")
        expect(page.locator("table[data-table=segments]")).to_contain_text("冠军客户")
        expect(page.locator(_drawn("segment-treemap", ".treemap"))).to_be_visible()
        page.screenshot(path=shots / "08-segments-zh.png", full_page=True)
        page.click(f"tr[data-segment={segment}] td:first-child a")
        expect(page.locator("a.button[data-action=export]")).to_have_text("导出 CSV")
        page.screenshot(path=shots / "09-segment-customers-zh.png", full_page=True)
        page.goto(f"{base}/analytics/cohorts/")
        expect(page.locator("h1.page-title")).to_have_text("同期群留存")
        expect(page.locator(_drawn("retention-heatmap", ".heatmaplayer"))).to_have_count(1)
        page.screenshot(path=shots / "10-cohorts-zh.png", full_page=True)
        page.goto(f"{base}/analytics/kpis/")
        expect(page.locator("h1.page-title")).to_have_text("忠诚度指标")
        expect(page.locator("[data-kpi=repeat_purchase_rate] .kpi-label")).to_have_text("复购率")
        expect(page.locator(_drawn("rates-trend", ".main-svg")).first).to_be_visible()
        page.screenshot(path=shots / "11-kpis-zh.png", full_page=True)
        page.goto(f"{base}/analytics/migration/")
        expect(page.locator("h1.page-title")).to_have_text("分群迁移")
        expect(page.locator(_drawn("migration-sankey", ".sankey"))).to_have_count(1)
        page.screenshot(path=shots / "12-migration-zh.png", full_page=True)
        page.goto(f"{base}/customers/{first_customer}/")
        expect(page.locator("[data-card=analysis] .card-title")).to_have_text("评分与分群")
        page.screenshot(path=shots / "13-customer-scores-zh.png", full_page=True)


def test_prediction_pages_draw_their_charts_in_both_languages(
    live_server: object, artifacts_dir: Path, analytics_world: DemoWorld
) -> None:
    # given the demo shop analysed with validated models and a staff user
    from patron.analytics.choices import PredictiveModelChoices
    from patron.analytics.models import AnalysisRun, ModelRun
    from patron.analytics.prediction_settings import PredictionSettings
    from patron.analytics.services import run_analysis
    from tests.web.test_prediction_views import (
        CALIBRATION_END,
        REASONS,
        _import,
        ranked,
        read_rows,
    )

    user = User.objects.create_user("mei", password=STAFF_PASSWORD, is_staff=True)
    # Pages open by role; get_or_create: the live server's flushes drop the
    # migration's groups.
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    _import(analytics_world)
    run: AnalysisRun = run_analysis(
        triggered_by="test",
        predictions=PredictionSettings(validate=True, calibration_end=CALIBRATION_END),
    )
    top = ranked(read_rows(run))[0].external_id
    run.customer_rows.filter(customer__external_id=top).update(churn_reasons=REASONS)
    bgnbd = ModelRun.objects.get(analysis=run, kind=PredictiveModelChoices.BG_NBD)
    churn = ModelRun.objects.get(analysis=run, kind=PredictiveModelChoices.CHURN)
    riskiest = (
        run.customer_rows.exclude(clv=None)
        .exclude(churn_probability=None)
        .order_by("-churn_probability")
        .values_list("customer__external_id", flat=True)
        .first()
    )
    likely = run.customer_rows.exclude(clv=None).filter(churn_probability__gte=0.9).count()
    base = str(live_server.url)  # type: ignore[attr-defined]
    shots = artifacts_dir / "browser-predictions"
    shots.mkdir(exist_ok=True)
    from playwright.sync_api import expect

    with logged_in_page(base, "mei", "/analytics/clv/") as page:
        # when the CLV page opens, then the distribution and equity bars are drawn
        expect(page.locator("h1.page-title")).to_have_text("Customer lifetime value")
        expect(page.locator(_drawn("clv-histogram", ".barlayer"))).to_have_count(1)
        expect(page.locator(_drawn("clv-group", ".barlayer"))).to_have_count(1)
        expect(page.locator("table[data-table=top-clv] tbody tr")).to_have_count(20)
        page.screenshot(path=shots / "01-clv-en.png", full_page=True)
        page.click("a.tab[data-by=channel]")
        expect(page.locator("a.tab.is-active")).to_have_attribute("data-by", "channel")
        expect(page.locator(_drawn("clv-group", ".barlayer"))).to_have_count(1)

        # when the churn page opens, then customers are listed with their reasons
        page.goto(f"{base}/analytics/churn/")
        rows = page.locator("table[data-table=churn-customers] tbody tr")
        expect(rows).to_have_count(25)
        expect(
            page.locator("[data-table=churn-customers] [data-field=reasons] div").first
        ).to_be_visible()
        expect(page.locator("table[data-table=churn-scores] tbody tr")).to_have_count(3)
        page.screenshot(path=shots / "02-churn-en.png", full_page=True)
        # and the probability filter narrows the list
        page.fill("input[name=min_probability]", "90")
        page.click("form.period-form button[type=submit]")
        expect(page).to_have_url(re.compile(r"min_probability=90"))
        expect(rows).to_have_count(min(likely, 25))

        # when the model pages open, then the fit plots are drawn
        page.goto(f"{base}/analytics/models/")
        expect(page.locator("table[data-table=model-runs] tbody tr")).to_have_count(3)
        page.screenshot(path=shots / "03-models-en.png", full_page=True)
        page.goto(f"{base}/analytics/models/{bgnbd.pk}/")
        for figure in ("frequency-histogram", "tracking", "conditional"):
            expect(page.locator(_drawn(figure, ".main-svg")).first).to_be_visible()
        page.screenshot(path=shots / "04-bgnbd-model-en.png", full_page=True)
        page.goto(f"{base}/analytics/models/{churn.pk}/")
        expect(page.locator(_drawn("churn-scores", ".barlayer"))).to_have_count(1)
        page.screenshot(path=shots / "05-churn-model-en.png", full_page=True)

        # when the staff user switches to Chinese, then the pages speak Chinese
        page.goto(f"{base}/analytics/churn/")
        page.click("button.lang-option[value=zh-hans]")
        expect(page.locator("h1.page-title")).to_have_text("流失风险")
        expect(page.locator("a.button[data-action=export]")).to_have_text("导出为营销人群")
        expect(rows.first.locator("[data-field=reasons] div").first).to_have_text(REASONS[0]["zh"])
        page.screenshot(path=shots / "06-churn-zh.png", full_page=True)
        page.goto(f"{base}/analytics/clv/")
        expect(page.locator("h1.page-title")).to_have_text("客户终身价值")
        expect(page.locator(_drawn("clv-histogram", ".barlayer"))).to_have_count(1)
        page.screenshot(path=shots / "07-clv-zh.png", full_page=True)
        page.goto(f"{base}/customers/{riskiest}/")
        expect(page.locator("[data-card=predictions] [data-score=churn]")).to_be_visible()
        page.screenshot(path=shots / "08-customer-predictions-zh.png", full_page=True)
