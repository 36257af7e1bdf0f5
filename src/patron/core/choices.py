"""Choices shared by several apps."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ChannelChoices(models.TextChoices):
    """Where a customer signed up or an order was placed."""

    WEB = "web", _("Web shop")
    APP = "app", _("App")
    MINI_PROGRAM = "mini_program", _("Mini-program")
    MARKETPLACE = "marketplace", _("Marketplace")
    STORE = "store", _("Store")
