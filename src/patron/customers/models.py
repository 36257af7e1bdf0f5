"""Customer profiles, their identities and the record of merges."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from patron.core.choices import ChannelChoices
from patron.customers.choices import GenderChoices, IdentityKindChoices
from patron.customers.identity import index_form_email, index_form_name, index_form_phone
from patron.privacy.pii.fields import (
    BlindIndexField,
    EncryptedDateField,
    EncryptedJSONField,
    EncryptedTextField,
)


class Customer(models.Model):
    """One real customer of the shop, after identity resolution.

    ``external_id`` is the shop's own id of the customer (a string: ``00042`` stays
    ``00042``). Other ids of the same person (merged duplicates, e-mail, phone, devices)
    are :class:`CustomerIdentity` rows pointing here.

    Name, e-mail, phone, birthday and address are personal data, stored encrypted
    (``patron.privacy.pii``); the ``*_index`` columns are their blind indexes, for exact
    lookups.
    """

    external_id = models.CharField(_("external id"), max_length=128, unique=True)
    name = EncryptedTextField(_("name"), max_length=200, blank=True)
    email = EncryptedTextField(_("e-mail"), max_length=254, blank=True)
    phone = EncryptedTextField(_("phone"), max_length=32, blank=True)
    birthday = EncryptedDateField(_("birthday"), null=True, blank=True)
    address = EncryptedTextField(_("address"), max_length=500, blank=True)
    name_index = BlindIndexField(source="name", purpose="name", normalise=index_form_name)
    email_index = BlindIndexField(source="email", purpose="email", normalise=index_form_email)
    phone_index = BlindIndexField(source="phone", purpose="phone", normalise=index_form_phone)
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
        indexes = [models.Index(fields=["signed_up_at"])]

    def __str__(self) -> str:
        return self.name or self.external_id


class CustomerIdentity(models.Model):
    """A normalised identifier (external id, e-mail, phone, device) that names a customer.

    ``(kind, value)`` is unique: one identifier names one customer. Two customers found to
    share one are duplicates and get merged (see ``patron.customers.resolution``). For the
    personal kinds (e-mail, phone) ``value`` is the blind index of the normalised identifier
    and ``secret`` the identifier itself, encrypted; other kinds keep ``value`` as it is.
    """

    #: ``value`` is the blind index of ``secret`` under the purpose named by ``kind`` (read by
    #: key rotation, ``patron.privacy.pii.rotation``).
    pii_blind_indexes = {"value": ("secret", "kind")}

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(_("kind"), max_length=16, choices=IdentityKindChoices.choices)
    value = models.CharField(_("value"), max_length=254)
    secret = EncryptedTextField(_("identifier"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("customer identity")
        verbose_name_plural = _("customer identities")
        constraints = [
            models.UniqueConstraint(fields=["kind", "value"], name="customer_identity_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    @property
    def identifier(self) -> str:
        """The normalised identifier (decrypted for e-mail and phone)."""
        return self.secret or self.value


class CustomerMerge(models.Model):
    """Append-only record that one customer was merged into another, and why."""

    survivor = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="merges")
    # Empty when the merged record was found to be a known person while being imported, so it
    # never became a customer of its own.
    merged_customer_pk = models.BigIntegerField(_("merged customer id"), null=True, blank=True)
    merged_external_id = models.CharField(_("merged external id"), max_length=128)
    reason = models.CharField(_("reason"), max_length=200)
    snapshot = EncryptedJSONField(_("profile of the merged customer"), default=dict)
    moved_rows = models.JSONField(_("rows moved to the survivor, per table"), default=dict)
    merged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("customer merge")
        verbose_name_plural = _("customer merges")
        ordering = ["-merged_at"]

    def __str__(self) -> str:
        return f"{self.merged_external_id} -> {self.survivor_id}"
