"""The loyalty overview and a member panel in a real browser, in English and in Chinese,
with screenshots under ``test-artifacts/browser-loyalty/``.

As in test_browser.py, the data is created through the loyalty functions before Playwright's
event loop starts, and the pages are served by pytest-django's live server thread.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from patron.loyalty.programme import configure_programme, get_programme
from patron.loyalty.tiers import define_tier
from tests.web.browser import logged_in_page
from tests.web.conftest import STAFF_PASSWORD
from tests.web.test_loyalty_views import _members

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_loyalty_overview_and_member_panel_in_both_languages(
    live_server: object, artifacts_dir: Path
) -> None:
    # given a loyalty manager and a programme with three members (see _members)
    user = User.objects.create_user("mei", password=STAFF_PASSWORD, is_staff=True)
    # get_or_create: the live server's flushes between tests drop the migration's groups.
    user.groups.add(Group.objects.get_or_create(name="loyalty_manager")[0])
    programme = configure_programme(
        get_programme(),
        name="Tea Club 茶友会",
        expiry_policy="months_after_earning",
        expiry_months=12,
        point_value_amount=Decimal("0.01"),
    )
    define_tier("Silver 银卡", 0, programme=programme)
    define_tier("Gold 金卡", 1000, earn_multiplier=Decimal("1.5"), has_free_shipping=True)
    _members(timezone.now())
    base = str(live_server.url)  # type: ignore[attr-defined]
    shots = artifacts_dir / "browser-loyalty"
    shots.mkdir(exist_ok=True)
    from playwright.sync_api import expect

    with logged_in_page(base, "mei", "/loyalty/") as page:
        # when the overview opens, then its figures are shown and both charts drawn
        expect(page.locator("h1.page-title")).to_have_text("Programme overview")
        expect(page.locator("a.menu-item.is-active")).to_contain_text("Programme overview")
        expect(page.locator("[data-kpi=liability] .kpi-value")).to_have_text("¥12.00")
        expect(page.locator("[data-kpi=redemption_rate] .kpi-value")).to_have_text("25.0%")
        month_bars = "[data-plotly-figure=loyalty-points-month-figure] .barlayer"
        tier_bars = "[data-plotly-figure=loyalty-tiers-figure] .barlayer"
        expect(page.locator(month_bars)).to_have_count(1)
        expect(page.locator(tier_bars)).to_have_count(1)
        page.screenshot(path=shots / "01-overview-en.png", full_page=True)

        # when a member's customer page opens, then the panel shows balances and ledger
        page.goto(f"{base}/customers/C-LI/")
        panel = page.locator("[data-card=loyalty]")
        expect(panel.locator("[data-balance=available] .score-value")).to_have_text("1,000")
        expect(panel.locator("[data-field=tier] .tag").first).to_have_text("Gold 金卡")
        expect(panel.locator("table[data-table=ledger] tbody tr")).to_have_count(3)
        panel.scroll_into_view_if_needed()
        page.screenshot(path=shots / "02-member-panel-en.png", full_page=True)

        # when the language is switched to Chinese, then both pages speak Chinese
        page.goto(f"{base}/loyalty/")
        page.click("button.lang-option[value=zh-hans]")
        expect(page.locator("h1.page-title")).to_have_text("积分计划概览")
        expect(page.locator("[data-kpi=liability] .kpi-label")).to_have_text("未兑积分负债")
        expect(page.locator(month_bars)).to_have_count(1)
        page.screenshot(path=shots / "03-overview-zh.png", full_page=True)
        page.goto(f"{base}/customers/C-LI/")
        expect(panel.locator(".card-title")).to_have_text("会员积分")
        expect(panel.locator("[data-entry=redeem] .ledger-kind")).to_have_text("已兑换")
        page.screenshot(path=shots / "04-member-panel-zh.png", full_page=True)

        # and the manager's settings form is there, in Chinese
        page.goto(f"{base}/loyalty/programme/")
        expect(page.locator("h1.page-title")).to_have_text("积分计划设置")
        expect(page.locator("form[data-form=programme] input[name=name]")).to_have_value(
            "Tea Club 茶友会"
        )
        page.screenshot(path=shots / "05-programme-settings-zh.png", full_page=True)
