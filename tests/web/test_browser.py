"""The dashboard in a real browser: headless Debian Chromium driven by Playwright.

Playwright's sync API runs an event loop in this thread, and Django refuses synchronous
database calls inside one (SynchronousOnlyOperation): the data is created before Playwright
starts, and the pages are served by pytest-django's live server thread.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from tests.conftest import require
from tests.web.browser import CHROMIUM, CHROMIUM_ARGS
from tests.web.conftest import STAFF_PASSWORD, make_small_shop

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_logs_in_switches_language_finds_a_customer_and_opens_the_page(
    live_server: object, artifacts_dir: Path
) -> None:
    # given a staff user and a small shop (created before the browser's event loop starts)
    user = User.objects.create_user("mei", password=STAFF_PASSWORD, is_staff=True)
    # Pages open by role; get_or_create: the live server's flushes drop the
    # migration's groups.
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    make_small_shop(timezone.now())
    base = str(live_server.url)  # type: ignore[attr-defined]
    shots = artifacts_dir / "browser"
    shots.mkdir(exist_ok=True)
    require(CHROMIUM.exists(), f"Debian's chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="en-US")
        try:
            # when the staff user logs in
            page.goto(f"{base}/")
            expect(page.locator("h1.login-title")).to_have_text("Staff login")
            page.screenshot(path=shots / "01-login.png")
            page.fill("input[name=username]", "mei")
            page.fill("input[name=password]", STAFF_PASSWORD)
            page.click("button.button-primary")
            # then the overview shows the figures and draws the chart
            expect(page.locator("h1.page-title")).to_have_text("Overview")
            expect(page.locator("[data-kpi=revenue] .kpi-value")).to_have_text("¥1,874.40")
            expect(page.locator(".chart .main-svg").first).to_be_visible()
            page.screenshot(path=shots / "02-overview-en.png", full_page=True)

            # when they switch to Chinese
            page.click("button.lang-option[value=zh-hans]")
            # then the interface speaks Chinese
            expect(page.locator("h1.page-title")).to_have_text("概览")
            expect(page.locator("[data-kpi=repeat_rate] .kpi-label")).to_have_text("复购率")
            page.screenshot(path=shots / "03-overview-zh.png", full_page=True)

            # when they search a customer by phone, written with spaces
            page.click("a.menu-item[href='/customers/']")
            page.fill("input[name=q]", "138 1234 5678")
            page.click("form.search button[type=submit]")
            # then exactly that customer is listed
            rows = page.locator("table.table tbody tr")
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("李娜")
            page.screenshot(path=shots / "04-search-zh.png", full_page=True)

            # when they open the customer page
            rows.first.locator("a").click()
            # then it shows the customer, an order with its line, and the timeline
            expect(page.locator("h1.page-title")).to_have_text("李娜")
            expect(page.locator("[data-order=O-1001]")).to_contain_text("西湖龙井 Longjing tea")
            expect(page.locator("[data-order=O-1001]")).to_contain_text("¥258.00")
            expect(page.locator(".timeline-item")).to_have_count(3)
            expect(page.locator("body")).to_contain_text("订单记录")
            page.screenshot(path=shots / "05-customer-zh.png", full_page=True)
        finally:
            browser.close()
