"""Security headers on every response, and the client's address behind trusted proxies.

Django's ``SecurityMiddleware`` already sends ``X-Content-Type-Options: nosniff``,
``Referrer-Policy`` and ``Cross-Origin-Opener-Policy`` (and HSTS in production), and
``XFrameOptionsMiddleware`` sends ``X-Frame-Options: DENY``; this middleware adds the content
security policy and the permissions policy, which Django 5.2 does not have.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import SimpleLazyObject

#: The dashboard's policy. Scripts come only from Patron's own static files (Plotly's bundle
#: and ``web/*.js``; figures travel as ``json_script`` data, which is not executed), or carry
#: the request's nonce. Styles allow 'unsafe-inline' because Plotly writes <style> elements
#: and style attributes as it draws; a style cannot run code.
DASHBOARD_POLICY = (
    "default-src 'self'; "
    "script-src 'self'{nonce}; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; "
    "font-src 'self' data:; "
    "connect-src 'self'; "
    "object-src 'none'; "
    "base-uri 'none'; "
    "form-action 'self'; "
    "frame-ancestors 'none'"
)
#: JSON answers are never rendered as pages: nothing may load from them or frame them.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: Browser features no page of Patron uses.
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=(), interest-cohort=()"
)
_JSON_TYPES = ("application/json", "application/problem+json")
#: Where the sign-in lockout (``patron.api.lockout``) leaves a refused attempt's lockout for
#: the login form to explain.
LOGIN_LOCKOUT_ATTRIBUTE = "patron_login_lockout"


@dataclass(frozen=True)
class Lockout:
    """A sign-in lockout in force: until when, and whether the ``username`` or the
    ``address`` caused it."""

    until: datetime
    reason: str

    def minutes_left(self, now: datetime) -> int:
        """Whole minutes until it ends, at least 1."""
        return max(1, -(-int((self.until - now).total_seconds()) // 60))


def client_address(request: HttpRequest) -> str:
    """The client's IP address: ``REMOTE_ADDR``, or with ``PATRON_PROXY_COUNT`` proxies in
    front, the address the outermost trusted proxy saw (``X-Forwarded-For`` counted from the
    right, so a client cannot choose it by sending the header itself)."""
    proxies: int = settings.PROXY_COUNT
    if proxies:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return str(request.META.get("REMOTE_ADDR") or "unknown")


class SecurityHeadersMiddleware:
    """Adds ``Content-Security-Policy`` and ``Permissions-Policy`` to every response.

    A template that cannot avoid an inline ``<script>`` gives it
    ``nonce="{{ request.csp_nonce }}"``: the nonce is made only when a template asks for it,
    and only then allowed by the policy.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        nonces: list[str] = []

        def make_nonce() -> str:
            nonces.append(secrets.token_urlsafe(16))
            return nonces[0]

        request.csp_nonce = SimpleLazyObject(make_nonce)  # type: ignore[attr-defined]
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            content_type = response.get("Content-Type", "")
            if content_type.startswith(_JSON_TYPES):
                response["Content-Security-Policy"] = API_POLICY
            else:
                nonce = f" 'nonce-{nonces[0]}'" if nonces else ""
                response["Content-Security-Policy"] = DASHBOARD_POLICY.format(nonce=nonce)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response
