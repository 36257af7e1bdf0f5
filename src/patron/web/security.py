"""The dashboard's sign-in form, which says when and for how long a lockout refuses it."""

from __future__ import annotations

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import ngettext

from patron.core.security import LOGIN_LOCKOUT_ATTRIBUTE, Lockout


class LockoutAuthenticationForm(AuthenticationForm):
    """Django's login form; while the sign-in lockout (``patron.api.lockout``) refuses an
    attempt, its error says so instead of "wrong username or password"."""

    def get_invalid_login_error(self) -> ValidationError:
        """The lockout's message when one is in force, else Django's usual one."""
        return lockout_error(self.request) or super().get_invalid_login_error()


class LockoutAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin site's login form, with the same lockout message."""

    def get_invalid_login_error(self) -> ValidationError:
        """The lockout's message when one is in force, else the admin's usual one."""
        return lockout_error(self.request) or super().get_invalid_login_error()


def lockout_error(request: HttpRequest | None) -> ValidationError | None:
    """The error that explains the lockout that refused ``request``'s sign-in, if one did."""
    lockout: Lockout | None = getattr(request, LOGIN_LOCKOUT_ATTRIBUTE, None)
    if lockout is None:
        return None
    minutes = lockout.minutes_left(timezone.now())
    if lockout.reason == "address":
        message = ngettext(
            "Too many failed logins from this address: logging in is blocked for "
            "%(minutes)d more minute. Try again later.",
            "Too many failed logins from this address: logging in is blocked for "
            "%(minutes)d more minutes. Try again later.",
            minutes,
        )
    else:
        message = ngettext(
            "Too many failed logins for this username: it is locked for %(minutes)d more "
            "minute, even with the right password. Try again later or ask an administrator.",
            "Too many failed logins for this username: it is locked for %(minutes)d more "
            "minutes, even with the right password. Try again later or ask an administrator.",
            minutes,
        )
    return ValidationError(message, code="locked_out", params={"minutes": minutes})
