"""Staff roles and what they may do. Each role is a Django auth ``Group`` named by its
codename (created by migration ``web.0001_staff_roles``); the dashboard and the API both ask
here, so a token and a staff session of the same user may do the same things."""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from patron.core.sql import fetch_all, quote


class StaffRoleChoices(models.TextChoices):
    """The staff roles of DESIGN.md: the value is the group's name."""

    ADMIN = "admin", _("Administrator")
    LOYALTY_MANAGER = "loyalty_manager", _("Loyalty manager")
    MARKETER = "marketer", _("Marketer")
    SERVICE_AGENT = "service_agent", _("Service agent")
    ANALYST = "analyst", _("Analyst")


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


@cache
def _group_names_sql(user_model: type[models.Model]) -> str:
    """The statement reading a user's group names, worked out once per user model: every API
    request reads the caller's roles, and compiling the ORM query cost more CPU than running
    it (0.5 ms a request)."""
    field: Any = user_model._meta.get_field("groups")
    membership = field.remote_field.through._meta
    group = field.related_model._meta
    member_column = membership.get_field(field.m2m_field_name()).column
    group_column = membership.get_field(field.m2m_reverse_field_name()).column
    return (
        f"SELECT g.{quote(group.get_field('name').column)} FROM {quote(group.db_table)} g "
        f"JOIN {quote(membership.db_table)} m ON m.{quote(group_column)} = "
        f"g.{quote(group.pk.column)} WHERE m.{quote(member_column)} = %s"
    )


def role_names(user: Any) -> frozenset[str]:
    """The names of ``user``'s groups, read once per user object: a request's permission and
    page checks, masking decisions and audit share one query, and a role change counts from
    the next request (a new user object). Empty for anonymous users."""
    cached: frozenset[str] | None = getattr(user, _ROLES_CACHE, None)
    if cached is not None:
        return cached
    if getattr(user, "pk", None) is None:
        return frozenset()
    rows = fetch_all(_group_names_sql(user._meta.model), [user.pk])
    names = frozenset(name for (name,) in rows)
    setattr(user, _ROLES_CACHE, names)
    return names


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
#: overview only. What each role may call in the API is :data:`API_PERMISSIONS`.
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


class ApiPermissionChoices(models.TextChoices):
    """What an API operation lets its caller do; each operation declares one
    (``patron.api.auth.requires_permission``) and :data:`API_PERMISSIONS` says who has it.
    The values are shown as they are (API errors, the schema, docs/privacy.md), so they
    carry no translated label."""

    CUSTOMERS_READ = "customers.read"
    ANALYTICS_READ = "analytics.read"
    LOYALTY_READ = "loyalty.read"
    LOYALTY_CONFIGURE = "loyalty.configure"
    LOYALTY_OPERATE = "loyalty.operate"
    COUPONS_CONFIGURE = "coupons.configure"
    COUPONS_CHECKOUT = "coupons.checkout"
    RECOMMENDATIONS_READ = "recommendations.read"
    RECOMMENDATIONS_FEEDBACK = "recommendations.feedback"
    INGEST_WRITE = "ingest.write"
    CONSENTS_READ = "consents.read"
    CONSENTS_WRITE = "consents.write"
    PRIVACY_REQUESTS = "privacy.requests"
    PRIVACY_CORRECT = "privacy.correct"


#: Callers in no role group, in :data:`API_PERMISSIONS` beside the roles. ``integration``: a
#: user who is not staff, the account the shop's own systems call with (a token of
#: ``shop-sync``): they send data in and run the checkout's point and coupon moves, and read
#: (masked), but never change the set-up nor touch data subject requests. ``staff``: a staff
#: user not (yet) given a role: reads only (masked), no writes, until an administrator puts
#: them in a group.
INTEGRATION = "integration"
STAFF_WITHOUT_ROLE = "staff"

_ADMIN = StaffRoleChoices.ADMIN.value
_LOYALTY_MANAGER = StaffRoleChoices.LOYALTY_MANAGER.value
_MARKETER = StaffRoleChoices.MARKETER.value
_SERVICE_AGENT = StaffRoleChoices.SERVICE_AGENT.value
_ANALYST = StaffRoleChoices.ANALYST.value
#: Who reads (masked unless :data:`UNMASKED_ROLES`): every role and every caller in no role.
_READERS = frozenset(
    {_ADMIN, _LOYALTY_MANAGER, _MARKETER, _SERVICE_AGENT, _ANALYST, INTEGRATION, STAFF_WITHOUT_ROLE}
)

#: Which roles (and :data:`INTEGRATION`, :data:`STAFF_WITHOUT_ROLE`) have each API
#: permission; superusers have all. Service agents answer customers: they move points for a
#: complaint, give a coupon use back, record consents and correct profiles. Marketers make
#: coupons and read analyses and recommendations. Loyalty managers set up and run the
#: programme and its coupons. Analysts read. Only administrators handle data subject requests.
#: The reads follow the dashboard's areas (``PAGE_AREAS``) where a role has none: loyalty
#: managers and service agents read no recommendations, service agents no analyses.
API_PERMISSIONS: dict[str, frozenset[str]] = {
    ApiPermissionChoices.CUSTOMERS_READ: _READERS,
    ApiPermissionChoices.ANALYTICS_READ: _READERS - {_SERVICE_AGENT},
    ApiPermissionChoices.LOYALTY_READ: _READERS,
    ApiPermissionChoices.LOYALTY_CONFIGURE: frozenset({_ADMIN, _LOYALTY_MANAGER}),
    ApiPermissionChoices.LOYALTY_OPERATE: frozenset(
        {_ADMIN, _LOYALTY_MANAGER, _SERVICE_AGENT, INTEGRATION}
    ),
    ApiPermissionChoices.COUPONS_CONFIGURE: frozenset({_ADMIN, _LOYALTY_MANAGER, _MARKETER}),
    ApiPermissionChoices.COUPONS_CHECKOUT: frozenset(
        {_ADMIN, _LOYALTY_MANAGER, _SERVICE_AGENT, INTEGRATION}
    ),
    ApiPermissionChoices.RECOMMENDATIONS_READ: _READERS - {_LOYALTY_MANAGER, _SERVICE_AGENT},
    ApiPermissionChoices.RECOMMENDATIONS_FEEDBACK: frozenset({_ADMIN, INTEGRATION}),
    ApiPermissionChoices.INGEST_WRITE: frozenset({_ADMIN, INTEGRATION}),
    ApiPermissionChoices.CONSENTS_READ: _READERS,
    ApiPermissionChoices.CONSENTS_WRITE: frozenset({_ADMIN, _SERVICE_AGENT, INTEGRATION}),
    ApiPermissionChoices.PRIVACY_REQUESTS: frozenset({_ADMIN}),
    ApiPermissionChoices.PRIVACY_CORRECT: frozenset({_ADMIN, _SERVICE_AGENT}),
}

#: Who may call an operation that declares no permission: administrators (and superusers)
#: only, so that a forgotten declaration refuses rather than lets through.
UNDECLARED_PERMISSION_ROLES = frozenset({_ADMIN})


def roles_with(permission: str | None) -> frozenset[str]:
    """The roles (and caller kinds in no role) that have ``permission``; administrators only
    for ``None`` (an operation that declares none)."""
    if permission is None:
        return UNDECLARED_PERMISSION_ROLES
    return API_PERMISSIONS[permission]


def caller_roles(user: Any) -> frozenset[str]:
    """What :data:`API_PERMISSIONS` knows ``user`` as: their role names, or
    :data:`STAFF_WITHOUT_ROLE` / :data:`INTEGRATION` for a staff / other user in no role
    (empty for anonymous callers). Reads the groups once per user (:func:`role_names`)."""
    if user is None or not user.is_authenticated:
        return frozenset()
    names = role_names(user)
    if names:
        return names
    return frozenset({STAFF_WITHOUT_ROLE if user.is_staff else INTEGRATION})


def has_permission(user: Any, permission: str | None) -> bool:
    """Whether ``user`` has the API permission ``permission`` (``None``: an undeclared one):
    superusers always, others when one of :func:`caller_roles` has it."""
    if user is None or not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    return not caller_roles(user).isdisjoint(roles_with(permission))


def can_configure_loyalty(user: Any) -> bool:
    """Whether ``user`` may change the loyalty programme (the dashboard's forms and the API's
    set-up writes): superusers, administrators and loyalty managers."""
    return has_permission(user, ApiPermissionChoices.LOYALTY_CONFIGURE)
