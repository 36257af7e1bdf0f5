"""Sign-in lockout: after repeated failures a username (or an address) is refused for a while.

``LOGIN_MAX_FAILURES`` (5) failed sign-ins for one username, or ``LOGIN_MAX_FAILURES_PER_ADDRESS``
(20) from one client address, within ``LOGIN_FAILURE_WINDOW_SECONDS`` (15 minutes) lock it out
for ``LOGIN_LOCKOUT_SECONDS`` (15 minutes) from the last failure: every attempt is refused,
the right password too, so that guessing learns nothing. A successful sign-in clears the
username's failures. Failures are rows of :class:`~patron.api.models.LoginFailure` in the
database, so every server process (each worker) sees the same count.

:class:`LockoutModelBackend` applies it to every password check (the dashboard's login, the
admin's, any ``authenticate()`` call). A refused attempt goes through Django's usual failure
path, so the ``user_login_failed`` signal fires for it as for a wrong password.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from patron.api.models import LoginFailure
from patron.core.security import LOGIN_LOCKOUT_ATTRIBUTE, Lockout, client_address

_USERNAME_LENGTH = LoginFailure._meta.get_field("username").max_length or 150


def _normalise(username: str) -> str:
    # Case-folded so that "Admin" and "admin" share one count.
    return username.strip().casefold()[:_USERNAME_LENGTH]


def _lockout_for(filters: Q, limit: int, reason: str, now: datetime) -> Lockout | None:
    """The lockout of the failures matching ``filters``: the last ``limit`` of them fell
    within one window, and the lockout since the newest has not ended."""
    if limit < 1:
        return None
    window = timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    lockout = timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    recent = list(
        LoginFailure.objects.filter(filters, attempted_at__gt=now - window - lockout)
        .order_by("-attempted_at")
        .values_list("attempted_at", flat=True)[:limit]
    )
    if len(recent) < limit or recent[0] - recent[-1] > window:
        return None
    until = recent[0] + lockout
    return Lockout(until, reason) if until > now else None


def login_lockout(
    username: str, address: str | None, *, now: datetime | None = None
) -> Lockout | None:
    """The lockout in force for ``username`` or ``address``, or ``None``."""
    now = now or timezone.now()
    by_username = _lockout_for(
        Q(username=_normalise(username)), settings.LOGIN_MAX_FAILURES, "username", now
    )
    if by_username is not None or not address:
        return by_username
    return _lockout_for(Q(address=address), settings.LOGIN_MAX_FAILURES_PER_ADDRESS, "address", now)


def record_login_failure(
    username: str, address: str | None, *, now: datetime | None = None
) -> None:
    """Record a failed sign-in, and forget failures too old to count any more."""
    now = now or timezone.now()
    horizon = now - timedelta(
        seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS + settings.LOGIN_LOCKOUT_SECONDS
    )
    LoginFailure.objects.filter(attempted_at__lt=horizon).delete()
    LoginFailure.objects.create(username=_normalise(username), address=address, attempted_at=now)


def clear_login_failures(username: str) -> None:
    """Forget a username's failures (after it signed in)."""
    LoginFailure.objects.filter(username=_normalise(username)).delete()


def _address(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # The column holds IP addresses only; a socket path or a missing address counts as none.
    try:
        return str(ipaddress.ip_address(client_address(request)))
    except ValueError:
        return None


class LockoutModelBackend(ModelBackend):
    """Django's username and password check, refused while a lockout is in force.

    The lockout is put on the request (``request.patron_login_lockout``) so that the login
    form can say how long it lasts.
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        """The user, or ``None`` for wrong credentials; raises ``PermissionDenied`` (which
        ends ``authenticate()`` as a failure) while the username or address is locked out."""
        username = username or kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        address = _address(request)
        lockout = login_lockout(username, address)
        if lockout is not None:
            if request is not None:
                setattr(request, LOGIN_LOCKOUT_ATTRIBUTE, lockout)
            raise PermissionDenied("sign-in locked out after repeated failures")
        user = super().authenticate(request, username=username, password=password)
        if user is None:
            record_login_failure(username, address)
            lockout = login_lockout(username, address)
            if lockout is not None and request is not None:
                setattr(request, LOGIN_LOCKOUT_ATTRIBUTE, lockout)
        else:
            clear_login_failures(username)
        return user
