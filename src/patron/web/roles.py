"""Staff roles. Each is a Django auth ``Group`` named by its codename, created by migration
``web.0001_staff_roles``; later issues attach permissions to them."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class StaffRoleChoices(models.TextChoices):
    """The staff roles of DESIGN.md: the value is the group's name."""

    ADMIN = "admin", _("Administrator")
    LOYALTY_MANAGER = "loyalty_manager", _("Loyalty manager")
    MARKETER = "marketer", _("Marketer")
    SERVICE_AGENT = "service_agent", _("Service agent")
    ANALYST = "analyst", _("Analyst")
