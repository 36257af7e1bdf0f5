"""Consent, audit and data subject request tables."""

from __future__ import annotations

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from patron.customers.models import Customer
from patron.privacy.choices import (
    AuditActionChoices,
    ConsentChannelChoices,
    ConsentPurposeChoices,
    ConsentSourceChoices,
    PrivacyRequestKindChoices,
    PrivacyRequestStatusChoices,
)

#: Marketing needs a channel; the other purposes have none (the empty channel).
_CHANNEL_MATCHES_PURPOSE = Q(
    purpose=ConsentPurposeChoices.MARKETING,
    channel__in=[choice.value for choice in ConsentChannelChoices],
) | (~Q(purpose=ConsentPurposeChoices.MARKETING) & Q(channel=""))


class ConsentEvent(models.Model):
    """One consent decision of a customer, kept for ever (append-only history).

    ``channel`` is empty for the purposes not tied to a channel (personalisation,
    analytics). ``source_event_id`` is the source's own id of the decision: the same
    ``(source, source_event_id)`` delivered twice is recorded once. ``occurred_at`` is when
    the customer decided, ``recorded_at`` when Patron learnt of it; the current state follows
    the latest ``occurred_at``.
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consent_events")
    purpose = models.CharField(_("purpose"), max_length=32, choices=ConsentPurposeChoices.choices)
    channel = models.CharField(
        _("channel"), max_length=16, choices=ConsentChannelChoices.choices, blank=True
    )
    is_granted = models.BooleanField(_("granted"))
    occurred_at = models.DateTimeField(_("decided at"))
    recorded_at = models.DateTimeField(_("recorded at"), auto_now_add=True)
    source = models.CharField(_("source"), max_length=16, choices=ConsentSourceChoices.choices)
    source_event_id = models.CharField(_("source's event id"), max_length=128, blank=True)
    wording_version = models.CharField(_("wording version"), max_length=64, blank=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff user"),
    )
    actor_token_prefix = models.CharField(_("API token"), max_length=16, blank=True)

    class Meta:
        verbose_name = _("consent event")
        verbose_name_plural = _("consent events")
        constraints = [
            models.CheckConstraint(
                condition=_CHANNEL_MATCHES_PURPOSE, name="consent_event_channel_matches_purpose"
            ),
            models.UniqueConstraint(
                fields=["source", "source_event_id"],
                condition=~Q(source_event_id=""),
                name="consent_event_source_id_unique",
            ),
        ]
        indexes = [models.Index(fields=["customer", "purpose", "channel", "occurred_at"])]

    def __str__(self) -> str:
        verb = "granted" if self.is_granted else "withdrawn"
        return f"{self.customer_id} {self.purpose}/{self.channel or '-'} {verb}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Insert only: a recorded decision is history and is never rewritten."""
        if not self._state.adding:
            raise AppendOnlyError("consent events are append-only: record a new event instead")
        super().save(*args, **kwargs)


class ConsentState(models.Model):
    """The current consent of a customer for one purpose and channel: the latest
    :class:`ConsentEvent` of that key, kept in step in the same transaction.

    The customer relation is hidden (``related_name="+"``) on purpose: a customer merge moves
    every visible relation row to the survivor, and two states of one key would collide on
    the unique constraint. The events move instead, and the survivor's state is rebuilt from
    them (:func:`patron.privacy.consent.refresh_consent_state`); the duplicate's states are
    deleted with it. No row means the purpose's default (``PATRON_CONSENT_DEFAULTS``).
    """

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(_("purpose"), max_length=32, choices=ConsentPurposeChoices.choices)
    channel = models.CharField(
        _("channel"), max_length=16, choices=ConsentChannelChoices.choices, blank=True
    )
    is_granted = models.BooleanField(_("granted"))
    decided_at = models.DateTimeField(_("decided at"))
    event = models.ForeignKey(ConsentEvent, on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = _("consent state")
        verbose_name_plural = _("consent states")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "purpose", "channel"], name="consent_state_unique"
            ),
            models.CheckConstraint(
                condition=_CHANNEL_MATCHES_PURPOSE, name="consent_state_channel_matches_purpose"
            ),
        ]
        # Bulk reads ask "which customers differ from the default for this key".
        indexes = [models.Index(fields=["purpose", "channel", "is_granted", "customer"])]

    def __str__(self) -> str:
        verb = "granted" if self.is_granted else "withdrawn"
        return f"{self.customer_id} {self.purpose}/{self.channel or '-'} {verb}"


class AppendOnlyError(RuntimeError):
    """A row of an append-only table was to be changed or deleted."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    """Audit events can be read and added, never changed or deleted through the ORM."""

    def update(self, **kwargs: Any) -> NoReturn:
        """Refused: the audit log is append-only."""
        raise AppendOnlyError("the audit log is append-only: audit events cannot be updated")

    def delete(self) -> NoReturn:
        """Refused: the audit log is append-only."""
        raise AppendOnlyError("the audit log is append-only: audit events cannot be deleted")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> NoReturn:
        """Refused: the audit log is append-only."""
        raise AppendOnlyError("the audit log is append-only: audit events cannot be updated")


class AuditEvent(models.Model):
    """One entry of the append-only audit log: who did what to whose data, from where.

    ``actor_user_id`` and ``customer_pk`` are plain numbers, not foreign keys, so that
    deleting a user or merging a customer never rewrites the log; ``actor_label`` and
    ``customer_external_id`` are copies taken when the event happened. ``details`` never
    holds plaintext personal data. On PostgreSQL a trigger also refuses UPDATE and DELETE
    (migration ``privacy.0002``).
    """

    occurred_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    action = models.CharField(_("action"), max_length=32, choices=AuditActionChoices.choices)
    actor_user_id = models.BigIntegerField(_("actor's user id"), null=True, blank=True)
    actor_label = models.CharField(_("actor"), max_length=200, blank=True)
    actor_address = models.GenericIPAddressField(_("actor's address"), null=True, blank=True)
    customer_pk = models.BigIntegerField(_("customer id"), null=True, blank=True)
    customer_external_id = models.CharField(_("customer's external id"), max_length=128, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["action", "occurred_at"]),
            models.Index(fields=["customer_external_id", "occurred_at"]),
            models.Index(fields=["actor_label", "occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.action} {self.actor_label}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Insert only: an existing audit event is never rewritten."""
        if not self._state.adding:
            raise AppendOnlyError("the audit log is append-only: audit events cannot be updated")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refused: the audit log is append-only."""
        raise AppendOnlyError("the audit log is append-only: audit events cannot be deleted")


class PrivacyRequest(models.Model):
    """A data subject request (access, export, correction, erasure) and how it was answered.

    ``due_at`` is ``received_at`` plus ``PATRON_DSR_DEADLINE_DAYS`` (15 days by default, PIPL
    practice; GDPR allows one month). ``notes`` is for the operator's reason and must hold no
    personal data (:mod:`patron.privacy.requests` refuses the customer's own values). The
    customer row is kept by an erasure, so the request stays linked to its pseudonymous record.
    """

    kind = models.CharField(_("kind"), max_length=16, choices=PrivacyRequestKindChoices.choices)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="privacy_requests"
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=PrivacyRequestStatusChoices.choices,
        default=PrivacyRequestStatusChoices.RECEIVED,
    )
    received_at = models.DateTimeField(_("received at"), default=timezone.now)
    due_at = models.DateTimeField(_("due at"))
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    actor_user_id = models.BigIntegerField(_("actor's user id"), null=True, blank=True)
    actor_label = models.CharField(_("actor"), max_length=200, blank=True)
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        verbose_name = _("privacy request")
        verbose_name_plural = _("privacy requests")
        ordering = ["due_at", "id"]
        indexes = [models.Index(fields=["status", "due_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["done", "refused"], completed_at__isnull=False)
                | (~Q(status__in=["done", "refused"]) & Q(completed_at__isnull=True)),
                name="privacy_request_completed_when_closed",
            ),
            models.CheckConstraint(
                condition=Q(due_at__gte=models.F("received_at")),
                name="privacy_request_due_after_received",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"


class ErasedIdentifier(models.Model):
    """A keyed hash (blind index, purpose ``external_id``) of a shop's customer id that was
    erased, pointing to the pseudonymous customer record it became.

    The shop's id itself is gone from Patron; the hash lets a later request or import of
    the same id be recognised as erased (an erasure repeated by the old id is answered, not
    applied again) without keeping the id readable.
    """

    index = models.CharField(_("keyed hash of the external id"), max_length=64, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    erased_at = models.DateTimeField(_("erased at"), default=timezone.now)

    class Meta:
        verbose_name = _("erased identifier")
        verbose_name_plural = _("erased identifiers")

    def __str__(self) -> str:
        return f"{self.index[:12]}… -> {self.customer_id}"
