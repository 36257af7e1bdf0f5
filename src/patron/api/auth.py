"""Who may call the API: machines with a scoped bearer token, staff with their dashboard
session, each limited by the role of its user.

Every endpoint needs one token scope (:class:`ScopeChoices`): ``read`` for a GET, and for a
write the scope its handler declares with :func:`requires_scope`; a write that declares none
needs ``admin``, so that a forgotten declaration refuses rather than lets through.
Every endpoint also declares the permission it needs (:func:`requires_permission`, an
:class:`~patron.core.roles.ApiPermissionChoices`); ``patron.core.roles.API_PERMISSIONS`` says
which roles have it, and an endpoint that declares none is open to administrators only.
:func:`apply_access` gives each operation of a router its own authentication callbacks when
the router is mounted (``patron.api.v1``): right after a caller is authenticated they check
the token's scope (a set lookup on the token row that authentication reads anyway) and the
user's role (one query for the user's groups, cached on the user), before the body is read.
Staff sessions are not scoped: only their role decides.
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
from patron.core.roles import ApiPermissionChoices, caller_roles, has_permission, roles_with

ViewFunction = TypeVar("ViewFunction", bound=Callable[..., Any])

#: The attribute :func:`requires_scope` puts on a handler.
SCOPE_ATTRIBUTE = "patron_api_scope"
#: The attribute :func:`requires_permission` puts on a handler.
PERMISSION_ATTRIBUTE = "patron_api_permission"
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


def requires_permission(
    permission: ApiPermissionChoices,
) -> Callable[[ViewFunction], ViewFunction]:
    """Declare the permission (and so the roles, ``patron.core.roles.API_PERMISSIONS``) a
    handler needs; put it under the ``@router.<method>`` line, beside :func:`requires_scope`::

    @router.post("/members/{id}/redemptions", ...)
    @requires_scope(ScopeChoices.LOYALTY)
    @requires_permission(ApiPermissionChoices.LOYALTY_OPERATE)
    def redeem(request, ...): ...
    """

    def declare(view_func: ViewFunction) -> ViewFunction:
        setattr(view_func, PERMISSION_ATTRIBUTE, permission)
        return view_func

    return declare


def permission_for(view_func: Callable[..., Any]) -> ApiPermissionChoices | None:
    """The permission an operation declares, ``None`` when it declares none (then only
    administrators may call it)."""
    declared: ApiPermissionChoices | None = getattr(view_func, PERMISSION_ATTRIBUTE, None)
    return declared


def check_permission(request: HttpRequest, user: Any, permission: str | None) -> None:
    """Refuse (403 ``forbidden``, naming the permission and the roles that have it) a
    ``user`` whose role lacks ``permission`` (``None``: an operation that declares none)."""
    if has_permission(user, permission):
        return
    allowed = sorted(roles_with(permission))
    held = ", ".join(sorted(caller_roles(user)))
    needs = (
        f"needs the '{permission}' permission, which these roles have"
        if permission is not None
        else "declares no permission, so only these roles may call it"
    )
    raise ApiError(
        403,
        "forbidden",
        f"{request.method} {request.path} {needs}: {', '.join(allowed)} (this caller is: "
        f"{held}). Use a token or session of a user in one of those groups (docs/privacy.md, "
        "API permissions).",
        required_permission=None if permission is None else str(permission),
        allowed_roles=allowed,
    )


class BearerTokenAuth(HttpBearer):
    """``Authorization: Bearer ptn_...`` with a token from ``patron token create`` that has
    ``scope`` (the scope follows the method when ``None``: read or admin), of a user whose
    role has ``permission`` (administrators only when ``None``)."""

    def __init__(
        self, scope: ScopeChoices | None = None, permission: ApiPermissionChoices | None = None
    ) -> None:
        super().__init__()
        self.scope = scope
        self.permission = permission

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        """The token's user, or ``None`` (401) for an unknown, revoked or expired token;
        a 429 over the token's rate limit, a 403 naming the scope the token lacks or the
        permission its user's role lacks."""
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
        check_permission(request, api_token.user, self.permission)
        request.api_token = api_token  # type: ignore[attr-defined]
        return api_token.user


class StaffSessionAuth(SessionAuth):
    """The dashboard's own calls: a logged-in staff member's session cookie, with CSRF.

    Unlike ninja's ``SessionAuth`` it checks CSRF only once a session user is found, so an
    anonymous client gets 401 (not a CSRF 403), and a signed-in non-staff user gets 403.
    The user's role must have ``permission`` (administrators only when ``None``).
    """

    def __init__(self, permission: ApiPermissionChoices | None = None) -> None:
        super().__init__()
        self.permission = permission

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
        check_permission(request, user, self.permission)
        return user


def api_auth(
    scope: ScopeChoices | None = None, permission: ApiPermissionChoices | None = None
) -> list[Callable[..., Any]]:
    """The authentication callbacks of an endpoint that needs ``scope`` from a token and
    ``permission`` from the caller's role (administrators only when ``None``)."""
    return [BearerTokenAuth(scope, permission), StaffSessionAuth(permission)]


def apply_access(router: Router) -> None:
    """Give every operation of ``router`` that sets no ``auth`` of its own the callbacks of
    its scope (:func:`scope_for`) and permission (:func:`permission_for`), and name both,
    with the roles that have the permission, in the OpenAPI schema."""
    for path_view in router.path_operations.values():
        for operation in path_view.operations:
            if operation.auth_param is not NOT_SET:
                continue
            scope = scope_for(operation.view_func, operation.methods)
            permission = permission_for(operation.view_func)
            callbacks = api_auth(scope, permission)
            operation.auth_param = callbacks
            operation.auth_callbacks = callbacks
            roles = sorted(roles_with(permission))
            operation.openapi_extra = {
                **(operation.openapi_extra or {}),
                "x-token-scope": scope.value,
                "x-roles": roles,
            }
            if permission is not None:
                operation.openapi_extra["x-permission"] = permission.value
            note = (
                f"Token scope: `{scope.value}`. Permission: `{permission}`, roles: "
                f"{', '.join(f'`{role}`' for role in roles)} (and superusers)."
                if permission is not None
                else f"Token scope: `{scope.value}`. Administrators only (no permission declared)."
            )
            operation.description = (
                f"{operation.description}\n\n{note}" if operation.description else note
            )
