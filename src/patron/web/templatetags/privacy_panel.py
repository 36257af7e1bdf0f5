"""Template tags of the privacy pages: the customer page's consent and data subject request
panels (which the customer view does not have to know about) and whether the audit log is in
the navigation."""

from __future__ import annotations

from typing import Any

from django import template

from patron.core.roles import StaffRoleChoices
from patron.customers.models import Customer
from patron.privacy.audit import SESSION_ROLES_KEY
from patron.web.privacy_views import consent_panel, requests_panel

register = template.Library()


@register.simple_tag(takes_context=True)
def consent_panel_for(context: template.Context, customer: Customer) -> dict[str, Any]:
    """The consent panel's data for ``customer`` as the signed-in user may use it:
    ``{% consent_panel_for customer as consent %}``."""
    return consent_panel(customer, _user(context))


@register.simple_tag(takes_context=True)
def requests_panel_for(context: template.Context, customer: Customer) -> dict[str, Any]:
    """The data subject request panel's data for ``customer`` and the signed-in user:
    ``{% requests_panel_for customer as dsr %}``."""
    return requests_panel(customer, _user(context))


def _user(context: template.Context) -> Any:
    request = context.get("request")
    return getattr(request, "user", None)


@register.simple_tag(takes_context=True)
def audit_log_visible(context: template.Context) -> bool:
    """Whether the audit log link is in the navigation: for superusers and for members of
    the ``admin`` group as of their login (read from the session, so no page pays a query;
    the audit page itself checks the role again)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    roles = request.session.get(SESSION_ROLES_KEY, ()) if request is not None else ()
    return StaffRoleChoices.ADMIN.value in roles
