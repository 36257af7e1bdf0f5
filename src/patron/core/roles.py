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
    return not role_names(user).isdisjoint(roles)


#: Attribute caching a user's role names on the user object (one query per request).
_ROLES_CACHE = "_patron_role_names"


def role_names(user: Any) -> frozenset[str]:
    """The names of ``user``'s groups, read once per user object: a request's page checks,
    masking decisions and audit share one query, and a role change counts from the next
    request (a new user object)."""
    cached: frozenset[str] | None = getattr(user, _ROLES_CACHE, None)
    if cached is not None:
        return cached
    groups = getattr(user, "groups", None)
    names = frozenset(groups.values_list("name", flat=True)) if groups is not None else frozenset()
    if user.pk is not None:
        setattr(user, _ROLES_CACHE, names)
    return names


def can_configure_loyalty(user: Any) -> bool:
    """Whether ``user`` may change the loyalty programme: a superuser, an administrator or a
    loyalty manager. Marketers, analysts and service agents may only look."""
    return has_any_role(user, LOYALTY_CONFIGURING_ROLES)


class PageAreaChoices(models.TextChoices):
    """Areas of the dashboard; each page belongs to one (``area_required`` in web.views)."""

    OVERVIEW = "overview", _("Overview")
    CUSTOMERS = "customers", _("Customers")
    ANALYTICS = "analytics", _("Analytics")
    RECOMMENDATIONS = "recommendations", _("Recommendations")
    LOYALTY = "loyalty", _("Loyalty")
    PRIVACY = "privacy", _("Privacy")


_ALL_ROLES = frozenset(StaffRoleChoices)

#: Which dashboard areas each role may open (403 elsewhere). Customer pages are open to every
#: role, but only :data:`UNMASKED_ROLES` read personal data there unmasked. Service agents
#: work on customers and points questions (customers, loyalty read-only), not on analyses;
#: the privacy area (audit log) is the administrators'. Staff users in no role group see the
#: overview only. Changing the loyalty set-up stays with :data:`LOYALTY_CONFIGURING_ROLES`.
PAGE_AREAS: dict[str, frozenset[str]] = {
    PageAreaChoices.OVERVIEW: _ALL_ROLES,
    PageAreaChoices.CUSTOMERS: _ALL_ROLES,
    PageAreaChoices.ANALYTICS: frozenset(
        {
            StaffRoleChoices.ADMIN,
            StaffRoleChoices.ANALYST,
            StaffRoleChoices.MARKETER,
            StaffRoleChoices.LOYALTY_MANAGER,
        }
    ),
    PageAreaChoices.RECOMMENDATIONS: frozenset(
        {StaffRoleChoices.ADMIN, StaffRoleChoices.MARKETER, StaffRoleChoices.ANALYST}
    ),
    PageAreaChoices.LOYALTY: _ALL_ROLES,
    PageAreaChoices.PRIVACY: frozenset({StaffRoleChoices.ADMIN}),
}

#: Roles that read customers' personal data unmasked (each read is audited). Loyalty
#: managers configure the programme and answer to figures, not to individual customers, so
#: they see masked data like analysts and marketers.
UNMASKED_ROLES = (StaffRoleChoices.ADMIN, StaffRoleChoices.SERVICE_AGENT)


def may_open(user: Any, area: str) -> bool:
    """Whether ``user`` may open the dashboard pages of ``area`` (a :class:`PageAreaChoices`
    value): superusers always, others when one of their roles is allowed there."""
    if area not in PAGE_AREAS:
        raise ValueError(
            f"unknown page area {area!r}; use one of: {', '.join(PageAreaChoices.values)}"
        )
    return has_any_role(user, PAGE_AREAS[area])


def sees_unmasked_personal_data(user: Any) -> bool:
    """Whether ``user`` reads personal data unmasked: a superuser, an administrator or a
    service agent. Everyone else (and anonymous callers, and tokens of users in no role)
    sees it masked."""
    return has_any_role(user, UNMASKED_ROLES)
