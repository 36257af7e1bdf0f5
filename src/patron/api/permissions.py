"""What a caller's role lets it do. A token acts as its user, so a token and a staff session
of the same user may do the same things.

Staff roles are auth groups named by ``patron.web.roles.StaffRoleChoices`` (the API may not
import the dashboard, so the names it needs are spelled here). Any caller may read the
loyalty programme; only administrators and loyalty managers change its set-up, as on the
dashboard (``patron.web.loyalty_views.CONFIGURING_ROLES``).
"""

from __future__ import annotations

from collections.abc import Collection

from django.http import HttpRequest

from patron.api.errors import ApiError

#: Roles (group names) that may change the loyalty programme's set-up.
LOYALTY_CONFIGURING_ROLES = ("admin", "loyalty_manager")


def has_any_role(request: HttpRequest, roles: Collection[str]) -> bool:
    """Whether the caller's user (the token's, or the session's) is a superuser or in one of
    the groups ``roles``."""
    user = getattr(request, "auth", None) or request.user
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return bool(user.groups.filter(name__in=roles).exists())


def require_loyalty_configurer(request: HttpRequest) -> None:
    """Refuse (403 ``forbidden``) a caller who may not change the loyalty programme."""
    if not has_any_role(request, LOYALTY_CONFIGURING_ROLES):
        raise ApiError(
            403,
            "forbidden",
            "Only administrators and loyalty managers change the loyalty programme: use a "
            "token of a user in the loyalty_manager or admin group.",
        )
