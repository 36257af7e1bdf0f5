"""Referrals and member care: who referred whom and how it ended, the programme's referral and
care settings, and the record of birthday and anniversary grants.

A referral is rewarded only once the new customer's first order has outlived the return
window (the programme's pending days), which is what makes buy-then-cancel referral loops
worthless; the cap per referrer and period limits referral farming.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from patron.loyalty.models.ledger import LedgerTransaction
from patron.loyalty.models.programme import Member, Programme
from patron.orders.models import Order


class ReferralStatusChoices(models.TextChoices):
    """Where a referral stands."""

    PENDING = "pending", _("Pending")
    REWARDED = "rewarded", _("Rewarded")
    REFUSED = "refused", _("Refused")


class CareKindChoices(models.TextChoices):
    """Kinds of care grant."""

    BIRTHDAY = "birthday", _("Birthday")
    ANNIVERSARY = "anniversary", _("Membership anniversary")


class ReferralPolicy(models.Model):
    """A programme's referral rules: the points for each side and the cap against farming
    (at most ``max_referrals_per_period`` referrals per referrer in any ``period_days``)."""

    programme = models.OneToOneField(
        Programme, on_delete=models.CASCADE, primary_key=True, related_name="referral_policy"
    )
    referrer_points = models.PositiveIntegerField(_("points for the referrer"), default=500)
    referee_points = models.PositiveIntegerField(_("points for the new customer"), default=200)
    max_referrals_per_period = models.PositiveIntegerField(
        _("referrals per referrer and period"), default=10
    )
    period_days = models.PositiveIntegerField(_("period (days)"), default=30)

    class Meta:
        verbose_name = _("referral policy")
        verbose_name_plural = _("referral policies")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(period_days__gte=1), name="referral_policy_period_positive"
            )
        ]

    def __str__(self) -> str:
        return f"referrals of {self.programme_id}"


class CarePolicy(models.Model):
    """A programme's member care settings: the points of a membership anniversary (the
    birthday bonus is a tier benefit, ``Tier.birthday_bonus_points``)."""

    programme = models.OneToOneField(
        Programme, on_delete=models.CASCADE, primary_key=True, related_name="care_policy"
    )
    anniversary_points = models.PositiveIntegerField(_("anniversary points"), default=100)

    class Meta:
        verbose_name = _("care policy")
        verbose_name_plural = _("care policies")

    def __str__(self) -> str:
        return f"care of {self.programme_id}"


class Referral(models.Model):
    """A new member brought by a referrer. One per new member and programme.

    ``first_order`` is the order that settled it; ``reason_code`` and ``reason`` say why a
    referral was refused at settlement (refusals at recording write nothing). The two
    ledger transactions are the rewards, written under ``referral:{id}:referrer`` and
    ``referral:{id}:referee``.
    """

    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="+")
    referrer = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="referrals_made", db_index=False
    )  # indexed by referral_referrer_time
    referee = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="referrals_received")
    referral_code = models.CharField(_("referral code"), max_length=16)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=ReferralStatusChoices.choices,
        default=ReferralStatusChoices.PENDING,
    )
    reason_code = models.CharField(_("reason code"), max_length=64, blank=True)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    referred_at = models.DateTimeField(_("referred at"))
    first_order = models.ForeignKey(
        Order, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    settled_at = models.DateTimeField(_("settled at"), null=True, blank=True)
    referrer_transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    referee_transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        constraints = [
            models.UniqueConstraint(
                fields=["programme", "referee"], name="referral_referee_unique"
            ),
            models.CheckConstraint(
                condition=~models.Q(referrer=models.F("referee")), name="referral_not_self"
            ),
        ]
        indexes = [
            models.Index(fields=["referrer", "referred_at"], name="referral_referrer_time"),
            models.Index(fields=["status"], name="referral_status"),
        ]

    def __str__(self) -> str:
        return f"{self.referrer_id} -> {self.referee_id} ({self.status})"


class CareGrant(models.Model):
    """A birthday or anniversary gift of points, once per member, kind and year; the ledger
    transaction is the grant itself (key ``{kind}:{member}:{year}``), this row is what a
    future messaging layer reads to greet the member once."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="care_grants")
    kind = models.CharField(_("kind"), max_length=16, choices=CareKindChoices.choices)
    year = models.PositiveIntegerField(_("year"))
    granted_on = models.DateField(_("granted on"))
    points = models.PositiveIntegerField(_("points"))
    transaction = models.OneToOneField(
        LedgerTransaction, on_delete=models.PROTECT, related_name="care_grant"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("care grant")
        verbose_name_plural = _("care grants")
        constraints = [
            models.UniqueConstraint(fields=["member", "kind", "year"], name="care_grant_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.year} of {self.member_id}: {self.points}"
