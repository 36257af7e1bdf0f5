"""What a caller's role lets it do (``patron.core.roles``). A token acts as its user, so a
token and a staff session of the same user may do the same things. Any caller may read the
loyalty programme; only administrators and loyalty managers change its set-up, as on the
dashboard.
"""

from __future__ import annotations

from django.http import HttpRequest

from patron.api.errors import ApiError
from patron.core.roles import can_configure_loyalty


def require_loyalty_configurer(request: HttpRequest) -> None:
    """Refuse (403 ``forbidden``) a caller who may not change the loyalty programme."""
    # The token's user, or the session's.
    if not can_configure_loyalty(getattr(request, "auth", None) or request.user):
        raise ApiError(
            403,
            "forbidden",
            "Only administrators and loyalty managers change the loyalty programme: use a "
            "token of a user in the loyalty_manager or admin group.",
        )
