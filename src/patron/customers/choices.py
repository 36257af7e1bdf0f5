"""Choices of the customers app."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class GenderChoices(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")
    UNKNOWN = "unknown", _("Unknown")


class IdentityKindChoices(models.TextChoices):
    """Kinds of identifier that resolve to a customer, strongest first."""

    EXTERNAL_ID = "external_id", _("External id")
    EMAIL = "email", _("E-mail")
    PHONE = "phone", _("Phone")
    DEVICE = "device", _("Device")
