"""Security headers and the content security policy on every response."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.test import Client, RequestFactory
from pytest_django.fixtures import Settings

from patron.core.security import SecurityHeadersMiddleware


@pytest.fixture(autouse=True)
def plain_static_storage(settings: Settings) -> None:
    """Pages render without collectstatic: unhashed static URLs (as tests/web does)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture
def staff_client(db: None) -> Client:
    client = Client()
    user = User.objects.create_user("sec", password="x-pass-1", is_staff=True)
    # Pages open by role: an administrator may open them all.
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    client.force_login(user)
    return client


def directives(policy: str) -> dict[str, list[str]]:
    """A policy's directives and their sources."""
    parsed: dict[str, list[str]] = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        parsed[name] = sources
    return parsed


def assert_common_headers(response: HttpResponse) -> None:
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]
    assert directives(response["Content-Security-Policy"])["frame-ancestors"] == ["'none'"]


@pytest.mark.parametrize("url", ["/", "/customers/", "/loyalty/rules/", "/analytics/kpis/"])
def test_dashboard_pages_carry_a_policy_without_inline_scripts(
    staff_client: Client, url: str
) -> None:
    # when
    response = staff_client.get(url)
    # then
    assert response.status_code == 200
    assert_common_headers(response)
    policy = directives(response["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    # and the page has no inline script the policy would block (JSON data blocks are inert)
    html = response.content.decode()
    for tag in html.split("<script")[1:]:
        opening = tag.split(">", 1)[0]
        assert "src=" in opening or 'type="application/json"' in opening, opening


def test_the_login_page_and_the_api_docs_carry_the_headers(db: None) -> None:
    for url in ("/login/", "/api/docs"):
        response = Client().get(url)
        assert response.status_code == 200
        assert_common_headers(response)
        assert directives(response["Content-Security-Policy"])["script-src"] == ["'self'"]


@pytest.mark.parametrize("url", ["/api/v1/loyalty/tiers", "/api/v1/openapi.json", "/api/nowhere"])
def test_api_answers_carry_a_policy_that_allows_nothing(db: None, url: str) -> None:
    response = Client().get(url)
    assert response["Content-Type"].startswith("application/json")
    assert_common_headers(response)
    assert directives(response["Content-Security-Policy"])["default-src"] == ["'none'"]


def test_a_template_asking_for_a_nonce_gets_it_allowed() -> None:
    # given: a view whose template has an inline script with the request's nonce
    template = engines["django"].from_string(
        '<script nonce="{{ request.csp_nonce }}">console.log(1)</script>'
    )

    def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse(template.render({}, request))

    # when
    response = SecurityHeadersMiddleware(view)(RequestFactory().get("/"))
    # then: the policy allows exactly that nonce
    nonce = response.content.decode().split('nonce="')[1].split('"')[0]
    assert len(nonce) >= 20
    assert directives(response["Content-Security-Policy"])["script-src"] == [
        "'self'",
        f"'nonce-{nonce}'",
    ]


def test_a_page_without_a_nonce_gets_none_in_its_policy() -> None:
    response = SecurityHeadersMiddleware(lambda request: HttpResponse("<p>hi</p>"))(
        RequestFactory().get("/")
    )
    assert "nonce" not in response["Content-Security-Policy"]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_charts_draw_under_the_policy_without_a_violation(live_server: object) -> None:
    # given: a staff user and a shop with orders (created before the browser's event loop)
    from django.utils import timezone

    from tests.conftest import require
    from tests.web.browser import CHROMIUM, logged_in_page
    from tests.web.conftest import STAFF_PASSWORD, make_small_shop

    user = User.objects.create_user("mei", password=STAFF_PASSWORD, is_staff=True)
    # Pages open by role; get_or_create: the live server's flushes drop the
    # migration's groups.
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    make_small_shop(timezone.now())
    require(CHROMIUM.exists(), f"Debian's chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import expect

    base = str(live_server.url)  # type: ignore[attr-defined]
    with logged_in_page(base, "mei", "/") as page:
        violations: list[str] = []
        page.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        # when: the overview draws its Plotly chart, and the API docs page its Swagger UI
        page.goto(f"{base}/")
        expect(page.locator(".chart .main-svg").first).to_be_visible()
        page.goto(f"{base}/api/docs")
        expect(page.locator(".swagger-ui .info .title").first).to_be_visible()
        # then: nothing was refused by the policy
        assert violations == []
