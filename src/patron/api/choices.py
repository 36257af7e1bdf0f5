"""Choices of the API app."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ScopeChoices(models.TextChoices):
    """What a token may do. Each endpoint needs one scope (``read`` for every GET); a token
    carries any set of them, and its user's role still decides the rest."""

    INGEST = "ingest", _("ingest: send customers, products, orders and events")
    LOYALTY = "loyalty", _("loyalty: enrol, earn, redeem, adjust points, use coupons")
    READ = "read", _("read: every GET endpoint")
    ADMIN = "admin", _("admin: programme set-up and administration")


class TokenHashChoices(models.TextChoices):
    """How a token's ``key_hash`` was computed."""

    HMAC_SHA256 = "hmac-sha256", _("HMAC-SHA256 keyed with the token key")
    #: Tokens created before keyed hashes: upgraded to HMAC on their first use.
    SHA256 = "sha256", _("plain SHA-256 (legacy)")
