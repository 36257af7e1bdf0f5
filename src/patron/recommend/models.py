"""Training runs, the lists they precomputed, product neighbours, basket rules and feedback.

A training run (``patron recommend train``) keeps its parameters and the evaluation report of
every recommender on a temporal split; the lists, neighbours, rules and popular products it
wrote are what the API and the pages serve until the next run succeeds (then the older rows
are deleted, the run records and their reports stay). Feedback events are the shop's record of
what customers did with the recommendations; the next training reads them.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from patron.catalog.models import Product
from patron.customers.models import Customer
from patron.recommend.choices import FeedbackKindChoices, ReasonChoices, TrainingRunStatusChoices


class TrainingRun(models.Model):
    """One training of the recommenders over the store (``patron recommend train``).

    ``parameters`` holds the settings (weights, half-life, list length, active days, basket
    thresholds, the hybrid's chosen weights); ``report`` the evaluation on a temporal split,
    one row per recommender with precision, recall, NDCG and MAP at ``k``, catalogue coverage
    and intra-list diversity (``patron.engine.recommend.evaluate_recommenders``); the counts
    say how much data it read and wrote. A run that failed keeps its ``error``.
    """

    status = models.CharField(
        _("status"),
        max_length=16,
        choices=TrainingRunStatusChoices.choices,
        default=TrainingRunStatusChoices.RUNNING,
    )
    as_of = models.DateTimeField(_("data up to"))
    started_at = models.DateTimeField(_("started at"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration_seconds = models.FloatField(_("duration (seconds)"), null=True, blank=True)
    recommender = models.CharField(_("recommender served"), max_length=32, default="hybrid")
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    report = models.JSONField(_("evaluation report"), default=list, blank=True)
    evaluation = models.JSONField(_("evaluation split"), default=dict, blank=True)
    customers = models.PositiveIntegerField(_("customers"), default=0)
    products = models.PositiveIntegerField(_("products"), default=0)
    interactions = models.PositiveIntegerField(_("interactions"), default=0)
    recommended_customers = models.PositiveIntegerField(_("customers with lists"), default=0)
    rules = models.PositiveIntegerField(_("basket rules"), default=0)
    error = models.TextField(_("error"), blank=True)
    triggered_by = models.CharField(_("triggered by"), max_length=32, default="command")

    class Meta:
        verbose_name = _("recommendation training run")
        verbose_name_plural = _("recommendation training runs")
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["status", "started_at"], name="training_run_status_time")]

    def __str__(self) -> str:
        return f"recommendations #{self.pk} ({self.status})"


class Recommendation(models.Model):
    """A product precomputed for an active customer by a run, at ``rank`` (1 = best), with the
    reason code and the product the reason names ("because you bought X")."""

    run = models.ForeignKey(
        TrainingRun, on_delete=models.CASCADE, related_name="recommendations", db_index=False
    )  # indexed by recommendation_unique, whose first column it is
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="recommendations", db_index=False
    )  # indexed by recommendation_customer_run
    rank = models.PositiveSmallIntegerField(_("rank"))
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+", db_index=False)
    score = models.FloatField(_("score"))
    reason = models.CharField(_("reason"), max_length=32, choices=ReasonChoices.choices)
    reason_product = models.ForeignKey(
        Product, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )

    class Meta:
        verbose_name = _("recommendation")
        verbose_name_plural = _("recommendations")
        constraints = [
            models.UniqueConstraint(
                fields=["run", "customer", "rank"], name="recommendation_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "run", "rank"], name="recommendation_customer_run"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}#{self.rank}: {self.product_id}"


class SimilarProduct(models.Model):
    """A product's neighbour: customers who bought or looked at one also did the other
    (cosine of their customer columns; Sarwar et al. 2001)."""

    run = models.ForeignKey(
        TrainingRun, on_delete=models.CASCADE, related_name="similar_products", db_index=False
    )  # indexed by similar_product_unique
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # indexed by similar_product_product
    rank = models.PositiveSmallIntegerField(_("rank"))
    similar_product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    score = models.FloatField(_("similarity"))

    class Meta:
        verbose_name = _("similar product")
        verbose_name_plural = _("similar products")
        constraints = [
            models.UniqueConstraint(
                fields=["run", "product", "rank"], name="similar_product_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["product", "run", "rank"], name="similar_product_product"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} ~ {self.similar_product_id}"


class BasketRule(models.Model):
    """A "frequently bought together" rule ``antecedent -> consequent`` mined from the
    orders' baskets by FP-growth (Han, Pei & Yin 2000): ``support`` = share of baskets with
    both, ``confidence`` = support / support(antecedent), ``lift`` = confidence /
    support(consequent) (Agrawal, Imielinski & Swami 1993)."""

    run = models.ForeignKey(
        TrainingRun, on_delete=models.CASCADE, related_name="basket_rules", db_index=False
    )  # indexed by basket_rule_run_lift
    antecedent = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="+", db_index=False
    )  # indexed by basket_rule_antecedent
    consequent = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    baskets = models.PositiveIntegerField(_("baskets with both"))
    support = models.FloatField(_("support"))
    confidence = models.FloatField(_("confidence"))
    lift = models.FloatField(_("lift"))

    class Meta:
        verbose_name = _("basket rule")
        verbose_name_plural = _("basket rules")
        constraints = [
            models.UniqueConstraint(
                fields=["run", "antecedent", "consequent"], name="basket_rule_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["antecedent", "run", "lift"], name="basket_rule_antecedent"),
            models.Index(fields=["run", "lift"], name="basket_rule_run_lift"),
        ]

    def __str__(self) -> str:
        return f"{self.antecedent_id} -> {self.consequent_id} (lift {self.lift:.2f})"


class PopularProduct(models.Model):
    """A product popular in a customer segment (the RFM segment of the latest analysis), or
    in the whole shop when ``segment`` is empty: the cold-start list for customers without a
    precomputed one."""

    run = models.ForeignKey(
        TrainingRun, on_delete=models.CASCADE, related_name="popular_products", db_index=False
    )  # indexed by popular_product_unique
    segment = models.CharField(_("segment"), max_length=32, blank=True)
    rank = models.PositiveSmallIntegerField(_("rank"))
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="+", db_index=False)
    score = models.FloatField(_("score"))

    class Meta:
        verbose_name = _("popular product")
        verbose_name_plural = _("popular products")
        constraints = [
            models.UniqueConstraint(
                fields=["run", "segment", "rank"], name="popular_product_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.segment or '*'}#{self.rank}: {self.product_id}"


class RecommendationFeedback(models.Model):
    """What a customer did with a recommended product, as the shop reported it (shown,
    clicked, dismissed, purchased). ``event_id`` is the shop's id of the event: sending it
    again records nothing new. Dismissed products are no longer recommended to the customer;
    purchases count as purchases in the next training."""

    event_id = models.CharField(_("event id"), max_length=128, unique=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="recommendation_feedback", db_index=False
    )  # indexed by feedback_customer_kind
    product = models.ForeignKey(
        Product, on_delete=models.CASCADE, related_name="recommendation_feedback", db_index=False
    )
    kind = models.CharField(_("kind"), max_length=16, choices=FeedbackKindChoices.choices)
    occurred_at = models.DateTimeField(_("occurred at"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("recommendation feedback")
        verbose_name_plural = _("recommendation feedback")
        indexes = [
            models.Index(fields=["customer", "kind"], name="feedback_customer_kind"),
            models.Index(fields=["kind", "occurred_at"], name="feedback_kind_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.product_id} by {self.customer_id}"
