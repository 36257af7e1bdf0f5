"""Customer profiles, their identities and the record of merges."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from patron.core.choices import ChannelChoices
from patron.customers.choices import GenderChoices, IdentityKindChoices


class Customer(models.Model):
    """One real customer of the shop, after identity resolution.

    ``external_id`` is the shop's own id of the customer (a string: ``00042`` stays
    ``00042``). Other ids of the same person (merged duplicates, e-mail, phone, devices)
    are :class:`CustomerIdentity` rows pointing here.
    """

    external_id = models.CharField(_("external id"), max_length=128, unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.CharField(_("e-mail"), max_length=254, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    gender = models.CharField(
        _("gender"), max_length=16, choices=GenderChoices.choices, default=GenderChoices.UNKNOWN
    )
    province = models.CharField(_("province"), max_length=64, blank=True)
    city = models.CharField(_("city"), max_length=64, blank=True)
    signup_channel = models.CharField(
        _("signup channel"), max_length=16, choices=ChannelChoices.choices, blank=True
    )
    signed_up_at = models.DateTimeField(_("signed up at"), null=True, blank=True)
    tags = models.JSONField(_("tags"), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        indexes = [models.Index(fields=["signed_up_at"]), models.Index(fields=["name"])]

    def __str__(self) -> str:
        return self.name or self.external_id


class CustomerIdentity(models.Model):
    """A normalised identifier (external id, e-mail, phone, device) that names a customer.

    ``(kind, value)`` is unique: one identifier names one customer. Two customers found to
    share one are duplicates and get merged (see ``patron.customers.resolution``).
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(_("kind"), max_length=16, choices=IdentityKindChoices.choices)
    value = models.CharField(_("value"), max_length=254)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("customer identity")
        verbose_name_plural = _("customer identities")
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="customer_identity_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class CustomerMerge(models.Model):
    """Append-only record that one customer was merged into another, and why."""

    survivor = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="merges")
    # Empty when the merged record was found to be a known person while being imported, so it
    # never became a customer of its own.
    merged_customer_pk = models.BigIntegerField(_("merged customer id"), null=True, blank=True)
    merged_external_id = models.CharField(_("merged external id"), max_length=128)
    reason = models.CharField(_("reason"), max_length=200)
    snapshot = models.JSONField(_("profile of the merged customer"), default=dict)
    moved_rows = models.JSONField(_("rows moved to the survivor, per table"), default=dict)
    merged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("customer merge")
        verbose_name_plural = _("customer merges")
        ordering = ["-merged_at"]

    def __str__(self) -> str:
        return f"{self.merged_external_id} -> {self.survivor_id}"
