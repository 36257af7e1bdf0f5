"""Staff roles and what they may do. Each role is a Django auth ``Group`` named by its
codename (created by migration ``web.0001_staff_roles``); the dashboard and the API both ask
here, so a token and a staff session of the same user may do the same things."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class StaffRoleChoices(models.TextChoices):
    """The staff roles of DESIGN.md: the value is the group's name."""

    ADMIN = "admin", _("Administrator")
    LOYALTY_MANAGER = "loyalty_manager", _("Loyalty manager")
    MARKETER = "marketer", _("Marketer")
    SERVICE_AGENT = "service_agent", _("Service agent")
    ANALYST = "analyst", _("Analyst")


#: Roles that may change the loyalty programme's set-up; every other role may only look.
LOYALTY_CONFIGURING_ROLES = (StaffRoleChoices.ADMIN, StaffRoleChoices.LOYALTY_MANAGER)


def has_any_role(user: Any, roles: Collection[str]) -> bool:
    """Whether ``user`` is a superuser or in one of the groups ``roles`` (False for anonymous
    users and for None)."""
    if user is None or not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    groups = getattr(user, "groups", None)
    return bool(groups is not None and groups.filter(name__in=roles).exists())


def can_configure_loyalty(user: Any) -> bool:
    """Whether ``user`` may change the loyalty programme: a superuser, an administrator or a
    loyalty manager. Marketers, analysts and service agents may only look."""
    return has_any_role(user, LOYALTY_CONFIGURING_ROLES)
