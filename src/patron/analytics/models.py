"""Analysis runs and the scores, segments and stages they gave each customer."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from patron.analytics.choices import (
    AnalysisEngineChoices,
    AnalysisRunStatusChoices,
    LifecycleStageChoices,
    PredictiveModelChoices,
    RfmSegmentChoices,
    ValueClassChoices,
    ValueTierChoices,
)
from patron.core.money import MoneyField
from patron.customers.models import Customer


class AnalysisRun(models.Model):
    """One run of the customer analytics over the store (``patron analyze``).

    Records what ran (``engine``, ``parameters``: lifecycle thresholds, AHP matrix, weights and
    consistency ratio, behaviour k and silhouettes), on which data (``as_of``, ``customers``,
    ``orders``, ``data_through``), when and how long, and the small result tables the pages
    and the API show (``results``: segment summaries, cohort rows, KPI trend). Runs are never
    overwritten: earlier ones stay so that trends and segment migrations can be shown.
    """

    as_of = models.DateField(_("as of"))
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=AnalysisRunStatusChoices.choices,
        default=AnalysisRunStatusChoices.RUNNING,
    )
    engine = models.CharField(
        _("engine"),
        max_length=16,
        choices=AnalysisEngineChoices.choices,
        default=AnalysisEngineChoices.POLARS,
    )
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration_seconds = models.FloatField(_("duration (seconds)"), null=True, blank=True)
    customers = models.PositiveIntegerField(_("customers"), default=0)
    orders = models.PositiveIntegerField(_("orders"), default=0)
    data_through = models.DateTimeField(_("latest order read"), null=True, blank=True)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    results = models.JSONField(_("results"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    triggered_by = models.CharField(_("triggered by"), max_length=32, default="command")

    class Meta:
        verbose_name = _("analysis run")
        verbose_name_plural = _("analysis runs")
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["status", "started_at"], name="analysis_run_status_time")]

    def __str__(self) -> str:
        return f"analysis #{self.pk} as of {self.as_of} ({self.status})"


class CustomerAnalysis(models.Model):
    """What one analysis run found about one customer: RFM, value, stage and behaviour.

    RFM scores are quintiles of the shop's customers (1 worst, 5 best); ``rfm_segment`` is the
    classic RFM map, ``value_class`` the eight classes of R/F/M against their means,
    ``value_score`` the AHP-weighted score (0–100, Saaty 1980) cut into ``value_tier``.
    """

    run = models.ForeignKey(
        AnalysisRun, on_delete=models.CASCADE, related_name="customer_rows", db_index=False
    )  # indexed by the (run, customer) unique constraint, whose first column it is
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="analyses", db_index=False
    )  # indexed by customer_analysis_customer_run
    recency_days = models.IntegerField(_("recency (days)"))
    tenure_days = models.IntegerField(_("tenure (days)"))
    frequency = models.IntegerField(_("frequency (orders)"))
    monetary = MoneyField(_("net spend"))
    average_order_value = MoneyField(_("average order value"))
    r_score = models.PositiveSmallIntegerField(_("R score"))
    f_score = models.PositiveSmallIntegerField(_("F score"))
    m_score = models.PositiveSmallIntegerField(_("M score"))
    rfm_segment = models.CharField(
        _("RFM segment"), max_length=32, choices=RfmSegmentChoices.choices
    )
    value_class = models.CharField(
        _("value class"), max_length=32, choices=ValueClassChoices.choices
    )
    lifecycle_stage = models.CharField(
        _("lifecycle stage"), max_length=16, choices=LifecycleStageChoices.choices
    )
    value_score = models.FloatField(_("value score"))
    value_tier = models.CharField(_("value tier"), max_length=16, choices=ValueTierChoices.choices)
    behaviour_segment = models.PositiveSmallIntegerField(_("behaviour segment"))
    behaviour_segment_name = models.CharField(_("behaviour segment name"), max_length=100)
    # Predictions: empty when the run's model could not be fitted (its ModelRun says why).
    clv = MoneyField(_("customer lifetime value"), null=True, blank=True)
    p_alive = models.FloatField(_("probability still active"), null=True, blank=True)
    expected_purchases_90d = models.FloatField(
        _("expected purchases, next 90 days"), null=True, blank=True
    )
    churn_probability = models.FloatField(_("churn probability"), null=True, blank=True)
    churn_reasons = models.JSONField(_("churn reasons"), default=list, blank=True)
    next_purchase_expected_at = models.DateField(_("next purchase expected"), null=True, blank=True)
    next_purchase_earliest = models.DateField(_("next purchase, earliest"), null=True, blank=True)
    next_purchase_latest = models.DateField(_("next purchase, latest"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer analysis")
        verbose_name_plural = _("customer analyses")
        constraints = [
            models.UniqueConstraint(fields=["run", "customer"], name="customer_analysis_unique"),
            models.CheckConstraint(
                condition=models.Q(r_score__gte=1, r_score__lte=5)
                & models.Q(f_score__gte=1, f_score__lte=5)
                & models.Q(m_score__gte=1, m_score__lte=5),
                name="customer_analysis_scores_1_to_5",
            ),
        ]
        indexes = [
            models.Index(fields=["run", "rfm_segment"], name="customer_analysis_run_rfm"),
            models.Index(fields=["run", "value_class"], name="customer_analysis_run_class"),
            models.Index(fields=["customer", "run"], name="customer_analysis_customer_run"),
            models.Index(fields=["run", "clv"], name="customer_analysis_run_clv"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}@{self.run_id}: {self.rfm_segment}"


class ModelRun(models.Model):
    """One fit of a predictive model (BG/NBD, Gamma-Gamma, churn) within an analysis run.

    Keeps the data window (``data_start`` .. ``calibration_end`` fitted, up to ``data_end``
    when a holdout was kept for validation), the fitted ``parameters`` with their standard
    errors, the log-likelihood, the ``metrics`` (holdout errors, ROC-AUC, ...) and the
    ``diagnostics`` the model page plots. A model that could not be fitted is kept as failed
    with its ``error``; the customers' predictions of that model are then empty.
    """

    analysis = models.ForeignKey(AnalysisRun, on_delete=models.CASCADE, related_name="model_runs")
    kind = models.CharField(_("model"), max_length=16, choices=PredictiveModelChoices.choices)
    status = models.CharField(_("status"), max_length=16, choices=AnalysisRunStatusChoices.choices)
    data_start = models.DateField(_("first day of data"), null=True, blank=True)
    calibration_end = models.DateField(_("last day fitted"))
    data_end = models.DateField(_("last day of data"))
    validated = models.BooleanField(_("validated on a holdout"), default=False)
    time_unit = models.CharField(_("time unit"), max_length=8, default="D")
    customers = models.PositiveIntegerField(_("customers"), default=0)
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    standard_errors = models.JSONField(_("standard errors"), default=dict, blank=True)
    log_likelihood = models.FloatField(_("log-likelihood"), null=True, blank=True)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    diagnostics = models.JSONField(_("diagnostics"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    duration_seconds = models.FloatField(_("duration (seconds)"), default=0.0)

    class Meta:
        verbose_name = _("model run")
        verbose_name_plural = _("model runs")
        ordering = ["-analysis__started_at", "-analysis_id", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["analysis", "kind"], name="model_run_unique_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of analysis #{self.analysis_id} ({self.status})"
