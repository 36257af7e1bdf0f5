"""Choices of the privacy app: consent purposes, channels and sources, and audit actions."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class ConsentPurposeChoices(models.TextChoices):
    """What the customer's data may be used for. Marketing is asked per channel; the other
    purposes are not tied to a channel."""

    MARKETING = "marketing", _("Marketing")
    PERSONALISATION = "personalisation", _("Personalisation and profiling")
    ANALYTICS = "analytics", _("Analytics")


class ConsentChannelChoices(models.TextChoices):
    """Where marketing may reach the customer."""

    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")
    WECHAT = "wechat", _("WeChat")
    APP_PUSH = "app_push", _("App push")


class ConsentSourceChoices(models.TextChoices):
    """Where a consent decision was collected."""

    API = "api", _("API")
    DASHBOARD = "dashboard", _("Dashboard")
    IMPORT = "import", _("Import")
    CHECKOUT = "checkout", _("Checkout")
    MEMBER_PORTAL = "member_portal", _("Member portal")


#: Purposes asked per channel; every other purpose has no channel (stored as "").
CHANNEL_PURPOSES = (ConsentPurposeChoices.MARKETING,)


class AuditActionChoices(models.TextChoices):
    """What an audit event records."""

    PII_READ = "pii_read", _("Personal data read")
    EXPORT = "export", _("Data export")
    ERASURE = "erasure", _("Erasure")
    CORRECTION = "correction", _("Correction")
    ROLE_CHANGE = "role_change", _("Role change")
    PERMISSION_CHANGE = "permission_change", _("Permission change")
    POINTS_ADJUSTMENT = "points_adjustment", _("Points adjustment")
    LOGIN = "login", _("Login")
    LOGIN_FAILED = "login_failed", _("Failed login")
    LOGOUT = "logout", _("Logout")
    CONSENT_CHANGE = "consent_change", _("Consent change")
    TOKEN_CHANGE = "token_change", _("API token change")
    KEY_ROTATION = "key_rotation", _("Key rotation")


class PrivacyRequestKindChoices(models.TextChoices):
    """What a data subject asked for."""

    ACCESS = "access", _("Access")
    EXPORT = "export", _("Export (portability)")
    CORRECTION = "correction", _("Correction")
    ERASURE = "erasure", _("Erasure")


class PrivacyRequestStatusChoices(models.TextChoices):
    """Where a data subject request stands."""

    RECEIVED = "received", _("Received")
    IN_PROGRESS = "in_progress", _("In progress")
    DONE = "done", _("Done")
    REFUSED = "refused", _("Refused")


#: Statuses of a request that has been answered.
CLOSED_REQUEST_STATUSES = (PrivacyRequestStatusChoices.DONE, PrivacyRequestStatusChoices.REFUSED)
