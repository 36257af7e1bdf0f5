"""Choices of the recommend app: run status, feedback kinds and the engine's reason codes.

``ReasonChoices`` holds the codes ``patron.engine.recommend.ReasonChoices`` gives (a test
checks that they stay equal); the words a customer reads are in :mod:`patron.recommend.reasons`.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class TrainingRunStatusChoices(models.TextChoices):
    """Where a training run stands."""

    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class FeedbackKindChoices(models.TextChoices):
    """What a customer did with a recommended product (sent by the shop)."""

    SHOWN = "shown", _("Shown")
    CLICKED = "clicked", _("Clicked")
    DISMISSED = "dismissed", _("Dismissed")
    PURCHASED = "purchased", _("Purchased")


class ReasonChoices(models.TextChoices):
    """Why a product is recommended (the engine's reason codes)."""

    BECAUSE_YOU_BOUGHT = "because_you_bought", _("Because you bought")
    POPULAR_IN_SEGMENT = "popular_in_segment", _("Popular in your segment")
    POPULAR = "popular", _("Popular right now")
    OFTEN_BOUGHT_WITH = "often_bought_with", _("Often bought with")
    SIMILAR_TO = "similar_to", _("Similar to")
