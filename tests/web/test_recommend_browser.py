"""Recommendations in a real browser: a customer page with the list and its reasons, in
English and Chinese, and the evaluation page, with screenshots under
``test-artifacts/browser-recommend/``.

The shop (300 demo customers) is imported and trained before Playwright's event loop
starts; the pages are served by pytest-django's live server thread.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User

from patron.demo.generator import DemoWorld
from patron.recommend.models import Recommendation
from patron.recommend.services import train_recommendations
from tests.recommend.conftest import demo_shop, recommend_world  # noqa: F401  (the shop shown)
from tests.web.browser import logged_in_page
from tests.web.conftest import STAFF_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_customer_recommendations_and_evaluation_page(
    live_server: object,
    artifacts_dir: Path,
    demo_shop: DemoWorld,  # noqa: F811
) -> None:
    # given a trained demo shop and a customer with a precomputed list
    user = User.objects.create_user("lin", password=STAFF_PASSWORD, is_staff=True)
    # Pages open by role; get_or_create: the live server's flushes drop the
    # migration's groups.
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    run = train_recommendations(triggered_by="test")
    first = (
        Recommendation.objects.filter(run=run, rank=1)
        .select_related("customer")
        .order_by("customer__external_id")
        .first()
    )
    assert first is not None
    customer = first.customer.external_id
    base = str(live_server.url)  # type: ignore[attr-defined]
    shots = artifacts_dir / "browser-recommend"
    shots.mkdir(exist_ok=True)
    from playwright.sync_api import expect

    with logged_in_page(base, "lin", f"/customers/{customer}/") as page:
        # when the customer page opens, then ten recommendations show, each with a reason
        panel = page.locator("[data-card=recommendations]")
        rows = panel.locator("table[data-table=recommendations] tbody tr")
        expect(rows).to_have_count(10)
        expect(panel.locator(".card-extra")).to_have_text(f"Precomputed by training #{run.pk}")
        reasons = rows.locator("td.reason").all_inner_texts()
        assert all(
            reason.startswith(("Because you bought ", "Often bought with ", "Popular "))
            for reason in reasons
        ), reasons
        panel.scroll_into_view_if_needed()
        page.screenshot(path=shots / "01-customer-en.png", full_page=True)

        # when the evaluation page opens, then every recommender has its row
        page.goto(f"{base}/analytics/recommendations/")
        expect(page.locator("h1.page-title")).to_have_text("Recommendations")
        expect(page.locator("a.menu-item.is-active")).to_contain_text("Recommendations")
        expect(page.locator("table[data-table=report] tbody tr")).to_have_count(len(run.report))
        expect(page.locator("tr[data-recommender=hybrid] .tag")).to_have_text("served")
        page.screenshot(path=shots / "02-evaluation-en.png", full_page=True)

        # when the language is switched to Chinese, then both pages speak Chinese
        page.click("button.lang-option[value=zh-hans]")
        expect(page.locator("h1.page-title")).to_have_text("商品推荐")
        expect(page.locator("[data-card=report] .card-title")).to_have_text("评估报告")
        page.screenshot(path=shots / "03-evaluation-zh.png", full_page=True)
        page.goto(f"{base}/customers/{customer}/")
        expect(panel.locator(".card-title")).to_have_text("为该客户推荐")
        reasons = rows.locator("td.reason").all_inner_texts()
        assert all(
            reason.startswith(("因为您买过", "常与", "当前热销", "与您相似的顾客喜欢"))
            for reason in reasons
        ), reasons
        panel.scroll_into_view_if_needed()
        page.screenshot(path=shots / "04-customer-zh.png", full_page=True)
