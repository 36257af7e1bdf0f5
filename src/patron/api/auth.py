"""Who may call the API: machines with a bearer token, staff with their dashboard session."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth
from ninja.utils import check_csrf

from patron.api.errors import ApiError
from patron.api.tokens import authenticate_token


class BearerTokenAuth(HttpBearer):
    """``Authorization: Bearer ptn_...`` with a token from ``patron token create``."""

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        """The token's user, or ``None`` (401) for an unknown, revoked or expired token."""
        return authenticate_token(token)


class StaffSessionAuth(SessionAuth):
    """The dashboard's own calls: a logged-in staff member's session cookie, with CSRF.

    Unlike ninja's ``SessionAuth`` it checks CSRF only once a session user is found, so an
    anonymous client gets 401 (not a CSRF 403), and a signed-in non-staff user gets 403.
    """

    def __call__(self, request: HttpRequest) -> Any:
        user = request.user
        if not user.is_authenticated:
            return None
        if not user.is_staff:
            raise ApiError(403, "forbidden", "This API is open to staff accounts and API tokens.")
        csrf_required = self.csrf and not getattr(request, "_ninja_csrf_exempt", False)
        if csrf_required and check_csrf(request) is not None:
            raise ApiError(
                403,
                "csrf_failed",
                "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken "
                "header, or use an API token instead of the session.",
            )
        return user
