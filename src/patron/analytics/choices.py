"""Choices of the analytics app: the engine's codes with labels in the user's language.

The values are the codes ``patron.engine`` writes (``rfm.RFM_SEGMENTS``, ``rfm.VALUE_CLASSES``,
``lifecycle.LIFECYCLE_STAGES`` and the value tiers of ``ahp``), in the engine's order; a test
checks that they stay equal. The Chinese labels are in the zh_Hans catalogue.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class AnalysisRunStatusChoices(models.TextChoices):
    """Where an analysis run stands."""

    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class AnalysisEngineChoices(models.TextChoices):
    """The dataframe engine an analysis ran on (the same engine code runs on both)."""

    POLARS = "polars", _("Polars (in-process)")
    SPARK = "spark", _("Spark")


class RfmSegmentChoices(models.TextChoices):
    """The 11 named segments of the classic RFM map, best first."""

    CHAMPIONS = "champions", _("Champions")
    LOYAL = "loyal", _("Loyal")
    POTENTIAL_LOYALIST = "potential_loyalist", _("Potential Loyalist")
    NEW = "new", _("New")
    PROMISING = "promising", _("Promising")
    NEED_ATTENTION = "need_attention", _("Need Attention")
    ABOUT_TO_SLEEP = "about_to_sleep", _("About to Sleep")
    AT_RISK = "at_risk", _("At Risk")
    CANT_LOSE_THEM = "cant_lose_them", _("Can't Lose Them")
    HIBERNATING = "hibernating", _("Hibernating")
    LOST = "lost", _("Lost")


class ValueClassChoices(models.TextChoices):
    """The eight RFM value classes used by Chinese retailers (R, F, M above or below the mean)."""

    IMPORTANT_VALUE = "important_value", _("Important value")
    IMPORTANT_DEVELOP = "important_develop", _("Important to develop")
    IMPORTANT_RETAIN = "important_retain", _("Important to retain")
    IMPORTANT_WIN_BACK = "important_win_back", _("Important to win back")
    GENERAL_VALUE = "general_value", _("General value")
    GENERAL_DEVELOP = "general_develop", _("General to develop")
    GENERAL_RETAIN = "general_retain", _("General to retain")
    GENERAL_WIN_BACK = "general_win_back", _("General to win back")


class LifecycleStageChoices(models.TextChoices):
    """A customer's lifecycle stage, from recency against the shop's own purchase gaps."""

    NEW = "new", _("New customer")
    ACTIVE = "active", _("Active")
    AT_RISK = "at_risk", _("At risk of lapsing")
    LAPSED = "lapsed", _("Lapsed")
    REACTIVATED = "reactivated", _("Reactivated")


class ValueTierChoices(models.TextChoices):
    """Tiers of the AHP value score: best 10 %, next 20 %, next 30 %, the rest."""

    TOP = "top", _("Top value")
    HIGH = "high", _("High value")
    MEDIUM = "medium", _("Medium value")
    LOW = "low", _("Low value")


class SegmentationChoices(models.TextChoices):
    """The ways customers are grouped into segments (``--by`` of ``patron export segment``)."""

    RFM = "rfm", _("RFM segment")
    VALUE_CLASS = "value_class", _("Value class")
    LIFECYCLE = "lifecycle", _("Lifecycle stage")
    VALUE_TIER = "value_tier", _("Value tier")
    BEHAVIOUR = "behaviour", _("Behaviour segment")


class PredictiveModelChoices(models.TextChoices):
    """The predictive models fitted by an analysis run (docs/clv.md, docs/churn.md)."""

    BG_NBD = "bg_nbd", _("BG/NBD purchase model")
    GAMMA_GAMMA = "gamma_gamma", _("Gamma-Gamma spend model")
    CHURN = "churn", _("Churn model")
