"""Headless Debian Chromium for the browser tests, driven by Playwright (sync API)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from tests.conftest import require
from tests.web.conftest import STAFF_PASSWORD

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def logged_in_page(base: str, username: str, next_path: str) -> Iterator[Page]:
    """A 1440×900 English page of a fresh headless Chromium, logged in as ``username`` (whose
    password is ``STAFF_PASSWORD``) and sent on to ``next_path``; the browser closes after."""
    require(CHROMIUM.exists(), f"Debian's chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="en-US")
            page.goto(f"{base}/login/?next={next_path}")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", STAFF_PASSWORD)
            page.click("button.button-primary")
            yield page
        finally:
            browser.close()
