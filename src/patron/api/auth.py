"""Who may call the API: machines with a scoped bearer token, staff with their dashboard
session.

Every endpoint needs one token scope (:class:`ScopeChoices`): ``read`` for a GET, and for a
write the scope its handler declares with :func:`requires_scope`; a write that declares none
needs ``admin``, so that a forgotten declaration refuses rather than lets through.
:func:`apply_scopes` gives each operation of a router its own authentication callbacks when
the router is mounted (``patron.api.v1``), so the check costs a set lookup on the token row
that authentication reads anyway. Staff sessions are not scoped: their role decides.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.http import HttpRequest
from ninja import Router
from ninja.constants import NOT_SET
from ninja.security import HttpBearer, SessionAuth
from ninja.utils import check_csrf

from patron.api.choices import ScopeChoices
from patron.api.errors import ApiError
from patron.api.ratelimit import check_credential_rate
from patron.api.tokens import authenticate_token

ViewFunction = TypeVar("ViewFunction", bound=Callable[..., Any])

#: The attribute :func:`requires_scope` puts on a handler.
SCOPE_ATTRIBUTE = "patron_api_scope"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def requires_scope(scope: ScopeChoices) -> Callable[[ViewFunction], ViewFunction]:
    """Declare the token scope a handler needs; put it under the ``@router.<method>`` line::

    @router.post("/members/{id}/redemptions", ...)
    @requires_scope(ScopeChoices.LOYALTY)
    def redeem(request, ...): ...
    """

    def declare(view_func: ViewFunction) -> ViewFunction:
        setattr(view_func, SCOPE_ATTRIBUTE, scope)
        return view_func

    return declare


def scope_for(view_func: Callable[..., Any], methods: list[str]) -> ScopeChoices:
    """The scope an operation needs: the declared one, else ``read`` for a read and
    ``admin`` for a write."""
    declared: ScopeChoices | None = getattr(view_func, SCOPE_ATTRIBUTE, None)
    if declared is not None:
        return declared
    return ScopeChoices.READ if set(methods) <= SAFE_METHODS else ScopeChoices.ADMIN


class BearerTokenAuth(HttpBearer):
    """``Authorization: Bearer ptn_...`` with a token from ``patron token create`` that has
    ``scope`` (the scope follows the method when ``None``: read or admin)."""

    def __init__(self, scope: ScopeChoices | None = None) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        """The token's user, or ``None`` (401) for an unknown, revoked or expired token;
        a 429 over the token's rate limit, a 403 naming the scope the token lacks."""
        api_token = authenticate_token(token)
        if api_token is None:
            return None
        check_credential_rate("token", api_token.pk)
        scope = self.scope or (
            ScopeChoices.READ if request.method in SAFE_METHODS else ScopeChoices.ADMIN
        )
        if not api_token.has_scope(scope):
            granted = ", ".join(api_token.scopes.split()) or "none"
            raise ApiError(
                403,
                "insufficient_scope",
                f"This token lacks the {scope.value!r} scope that {request.method} "
                f"{request.path} needs (it has: {granted}). Create a token with "
                f"`patron token create --scope {scope.value} ...`.",
                headers={
                    "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope.value}"'
                },
                required_scope=scope.value,
            )
        request.api_token = api_token  # type: ignore[attr-defined]
        return api_token.user


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
        check_credential_rate("user", user.pk)
        return user


def api_auth(scope: ScopeChoices | None = None) -> list[Callable[..., Any]]:
    """The authentication callbacks of an endpoint that needs ``scope`` from a token."""
    return [BearerTokenAuth(scope), StaffSessionAuth()]


def apply_scopes(router: Router) -> None:
    """Give every operation of ``router`` that sets no ``auth`` of its own the callbacks of
    its scope (:func:`scope_for`), and name the scope in the OpenAPI schema."""
    for path_view in router.path_operations.values():
        for operation in path_view.operations:
            if operation.auth_param is not NOT_SET:
                continue
            scope = scope_for(operation.view_func, operation.methods)
            callbacks = api_auth(scope)
            operation.auth_param = callbacks
            operation.auth_callbacks = callbacks
            operation.openapi_extra = {
                **(operation.openapi_extra or {}),
                "x-token-scope": scope.value,
            }
            note = f"Token scope: `{scope.value}`."
            operation.description = (
                f"{operation.description}\n\n{note}" if operation.description else note
            )
