"""Consent per purpose and channel, with its history, and the one question every use of
personal data asks: :func:`may` we do this purpose through this channel for this customer?

Every decision is an append-only :class:`~patron.privacy.models.ConsentEvent`; the current
decision of each (customer, purpose, channel) is a :class:`~patron.privacy.models.ConsentState`
row written in the same transaction, so bulk reads (campaign audiences, the recommendations'
training) are one indexed query. A customer without a decision gets the purpose's default:
marketing is never consented by default; personalisation and analytics follow
``PATRON_CONSENT_DEFAULTS`` (granted unless withdrawn, by default; docs/privacy.md says what
that means under PIPL and how to require an explicit grant instead).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, Exists, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from patron.core.sql import columns, fetch_one
from patron.customers.models import Customer
from patron.privacy.audit import AuditActor, current_actor, record
from patron.privacy.choices import (
    CHANNEL_PURPOSES,
    AuditActionChoices,
    ConsentChannelChoices,
    ConsentPurposeChoices,
    ConsentSourceChoices,
)
from patron.privacy.models import ConsentEvent, ConsentState

#: Defaults when ``PATRON_CONSENT_DEFAULTS`` is not set.
BUILT_IN_DEFAULTS = "personalisation=granted,analytics=granted"
_MAX_SOURCE_ID = 128
_MAX_WORDING = 64


class ConsentError(ValueError):
    """A consent decision or question was refused; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ConsentKey:
    """A purpose and its channel ("" for purposes not tied to a channel)."""

    purpose: str
    channel: str = ""


@dataclass(frozen=True)
class ConsentStatus:
    """The current consent of one customer for one key: granted or not, and whether that is
    the default (no decision yet) or the latest decision (when, where, which wording)."""

    purpose: str
    channel: str
    is_granted: bool
    is_default: bool
    decided_at: dt.datetime | None = None
    source: str = ""
    wording_version: str = ""


@dataclass(frozen=True)
class ConsentSet:
    """Who may, for one key, as ``default`` plus the customer ids that differ from it: fast to
    test for millions of customers (``customer_id in consent_set``)."""

    purpose: str
    channel: str
    default: bool
    exceptions: frozenset[int]

    def __contains__(self, customer_id: object) -> bool:
        return (customer_id in self.exceptions) != self.default

    def allowed(self, customer_ids: Iterable[int]) -> set[int]:
        """The ids of ``customer_ids`` that may."""
        return {customer_id for customer_id in customer_ids if customer_id in self}


def all_keys() -> list[ConsentKey]:
    """Every purpose and channel a customer decides on, in display order."""
    keys = [
        ConsentKey(ConsentPurposeChoices.MARKETING.value, channel.value)
        for channel in ConsentChannelChoices
    ]
    keys.extend(
        ConsentKey(purpose.value)
        for purpose in ConsentPurposeChoices
        if purpose not in CHANNEL_PURPOSES
    )
    return keys


def check_key(purpose: str, channel: str | None = None) -> ConsentKey:
    """``purpose`` and ``channel`` checked: a known purpose, a known channel for marketing and
    none for the other purposes. Raises :class:`ConsentError` naming the field."""
    if purpose not in ConsentPurposeChoices.values:
        raise ConsentError(
            "purpose",
            f"unknown purpose {purpose!r}; use one of: {', '.join(ConsentPurposeChoices.values)}",
        )
    channel = channel or ""
    if purpose in CHANNEL_PURPOSES:
        if not channel:
            raise ConsentError(
                "channel",
                f"{purpose} consent is given per channel; name one of: "
                f"{', '.join(ConsentChannelChoices.values)}",
            )
        if channel not in ConsentChannelChoices.values:
            raise ConsentError(
                "channel",
                f"unknown channel {channel!r}; use one of: "
                f"{', '.join(ConsentChannelChoices.values)}",
            )
    elif channel:
        raise ConsentError(
            "channel", f"{purpose} consent is not given per channel: leave the channel out"
        )
    return ConsentKey(purpose, channel)


def consent_defaults() -> dict[str, bool]:
    """Purpose -> whether a customer without a decision consents, from
    ``settings.CONSENT_DEFAULTS`` (``PATRON_CONSENT_DEFAULTS``: ``personalisation=granted,
    analytics=withdrawn``). Marketing is always False; naming it is a configuration error."""
    text = str(getattr(settings, "CONSENT_DEFAULTS", BUILT_IN_DEFAULTS))
    defaults = {purpose.value: False for purpose in ConsentPurposeChoices}
    defaults.update(dict.fromkeys(_parse_defaults(BUILT_IN_DEFAULTS), True))
    for purpose, is_granted in _parse_defaults(text).items():
        defaults[purpose] = is_granted
    return defaults


def _parse_defaults(text: str) -> dict[str, bool]:
    parsed: dict[str, bool] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        purpose, separator, value = (piece.strip().lower() for piece in part.partition("="))
        if not separator or value not in ("granted", "withdrawn"):
            raise ImproperlyConfigured(
                f"PATRON_CONSENT_DEFAULTS: {part.strip()!r} should read purpose=granted or "
                "purpose=withdrawn"
            )
        if purpose not in ConsentPurposeChoices.values:
            raise ImproperlyConfigured(f"PATRON_CONSENT_DEFAULTS: unknown purpose {purpose!r}")
        if purpose in CHANNEL_PURPOSES and value == "granted":
            raise ImproperlyConfigured(
                f"PATRON_CONSENT_DEFAULTS: {purpose} needs the customer's explicit consent "
                "and cannot default to granted"
            )
        parsed[purpose] = value == "granted"
    return parsed


def _customer_id(customer: Customer | int) -> int:
    return customer if isinstance(customer, int) else int(customer.pk)


def may(
    customer: Customer | int,
    purpose: str,
    channel: str | None = None,
    at: dt.datetime | None = None,
) -> bool:
    """Whether ``customer`` consents to ``purpose`` through ``channel`` now (or at ``at``):
    their latest decision for that key, else the purpose's default. Marketing needs a
    channel; the other purposes take none (:class:`ConsentError` otherwise)."""
    key = check_key(purpose, channel)
    customer_id = _customer_id(customer)
    if at is None:
        # One statement of SQL (patron.core.sql): recommendations ask this on every request.
        current = columns(ConsentState, "s", only=("is_granted",))
        row = fetch_one(
            f"SELECT {current.column('is_granted')} FROM {current.table} "
            f"WHERE {current.column('customer_id')} = %s AND {current.column('purpose')} = %s "
            f"AND {current.column('channel')} = %s",
            [customer_id, key.purpose, key.channel],
        )
        state = None if row is None else current.value("is_granted", row[0])
    else:
        if timezone.is_naive(at):
            raise ConsentError("at", "needs a time zone (2025-06-01T08:00Z)")
        state = (
            _events_until(key, at)
            .filter(customer_id=customer_id)
            .values_list("is_granted", flat=True)
            .first()
        )
    return consent_defaults()[key.purpose] if state is None else bool(state)


def _events_until(key: ConsentKey, at: dt.datetime) -> QuerySet[ConsentEvent]:
    """The key's events decided up to ``at``, the latest first (ties: recorded later)."""
    return ConsentEvent.objects.filter(
        purpose=key.purpose, channel=key.channel, occurred_at__lte=at
    ).order_by("-occurred_at", "-pk")


def consent_set(purpose: str, channel: str | None = None) -> ConsentSet:
    """Everyone's current consent for one key, as the default and its exceptions (the
    customers whose latest decision differs): one indexed query."""
    key = check_key(purpose, channel)
    default = consent_defaults()[key.purpose]
    exceptions = ConsentState.objects.filter(
        purpose=key.purpose, channel=key.channel, is_granted=not default
    ).values_list("customer_id", flat=True)
    return ConsentSet(key.purpose, key.channel, default, frozenset(exceptions))


def consenting(
    customers: QuerySet[Customer],
    purpose: str,
    channel: str | None = None,
    at: dt.datetime | None = None,
) -> QuerySet[Customer]:
    """``customers`` narrowed to those who may be used for ``purpose`` through ``channel``
    now (or at ``at``): the filter campaign audiences apply, in the database."""
    key = check_key(purpose, channel)
    default = consent_defaults()[key.purpose]
    if at is None:
        differs = Exists(
            ConsentState.objects.filter(
                customer_id=OuterRef("pk"),
                purpose=key.purpose,
                channel=key.channel,
                is_granted=not default,
            )
        )
        return customers.filter(differs) if not default else customers.exclude(differs)
    if timezone.is_naive(at):
        raise ConsentError("at", "needs a time zone (2025-06-01T08:00Z)")
    latest = _events_until(key, at).filter(customer_id=OuterRef("pk")).values("is_granted")[:1]
    return customers.annotate(
        _consents=Coalesce(Subquery(latest), Value(default), output_field=BooleanField())
    ).filter(_consents=True)


def current_consents(customer: Customer) -> list[ConsentStatus]:
    """The customer's consent for every purpose and channel (:func:`all_keys` order), with
    the decision behind it or the default."""
    defaults = consent_defaults()
    states = {
        (state.purpose, state.channel): state
        for state in ConsentState.objects.filter(customer=customer).select_related("event")
    }
    statuses = []
    for key in all_keys():
        state = states.get((key.purpose, key.channel))
        if state is None:
            statuses.append(
                ConsentStatus(
                    key.purpose, key.channel, is_granted=defaults[key.purpose], is_default=True
                )
            )
        else:
            statuses.append(
                ConsentStatus(
                    key.purpose,
                    key.channel,
                    is_granted=state.is_granted,
                    is_default=False,
                    decided_at=state.decided_at,
                    source=state.event.source,
                    wording_version=state.event.wording_version,
                )
            )
    return statuses


def consent_history(customer: Customer) -> QuerySet[ConsentEvent]:
    """Every consent decision of the customer, the latest decided first."""
    return (
        ConsentEvent.objects.filter(customer=customer)
        .select_related("actor_user")
        .order_by("-occurred_at", "-pk")
    )


def record_consent(
    customer: Customer,
    purpose: str,
    channel: str | None = None,
    *,
    is_granted: bool,
    source: str,
    source_event_id: str = "",
    wording_version: str = "",
    occurred_at: dt.datetime | None = None,
    actor: AuditActor | None = None,
) -> tuple[ConsentEvent, bool]:
    """Record that ``customer`` granted (``is_granted``) or withdrew consent to ``purpose``
    through ``channel``, decided at ``occurred_at`` (default now), collected by ``source``.

    A grant names the ``wording_version`` the customer agreed to. The same
    ``(source, source_event_id)`` again records nothing and returns the first event with
    ``False`` (the same id with other content is refused). A decision older than the current
    one joins the history without changing the state. Each new event is audited
    (``consent_change``) in the same transaction. Raises :class:`ConsentError` naming the
    field at fault.
    """
    key = check_key(purpose, channel)
    if source not in ConsentSourceChoices.values:
        raise ConsentError(
            "source",
            f"unknown source {source!r}; use one of: {', '.join(ConsentSourceChoices.values)}",
        )
    source_event_id = (source_event_id or "").strip()
    if len(source_event_id) > _MAX_SOURCE_ID:
        raise ConsentError("source_event_id", f"at most {_MAX_SOURCE_ID} characters")
    wording_version = (wording_version or "").strip()
    if len(wording_version) > _MAX_WORDING:
        raise ConsentError("wording_version", f"at most {_MAX_WORDING} characters")
    if is_granted and not wording_version:
        raise ConsentError(
            "wording_version",
            "a grant names the version of the consent text the customer agreed to "
            "(privacy-2025-06)",
        )
    if occurred_at is not None and timezone.is_naive(occurred_at):
        raise ConsentError("occurred_at", "needs a time zone (2025-06-01T08:00Z)")
    occurred_at = occurred_at or timezone.now()
    if occurred_at > timezone.now() + dt.timedelta(minutes=5):
        raise ConsentError("occurred_at", "lies in the future")
    actor = actor or current_actor() or AuditActor()
    fields: dict[str, Any] = {
        "customer": customer,
        "purpose": key.purpose,
        "channel": key.channel,
        "is_granted": is_granted,
        "occurred_at": occurred_at,
        "source": source,
        "source_event_id": source_event_id,
        "wording_version": wording_version,
        "actor_user_id": actor.user_id,
        "actor_token_prefix": actor.token_prefix,
    }
    if source_event_id:
        found = _delivered_before(fields)
        if found is not None:
            return found, False
    try:
        with transaction.atomic():
            event = _record(customer, key, fields, actor)
    except IntegrityError:
        # A concurrent delivery of the same source event won the unique constraint.
        found = _delivered_before(fields) if source_event_id else None
        if found is None:
            raise
        return found, False
    return event, True


def _delivered_before(fields: dict[str, Any]) -> ConsentEvent | None:
    """The event recorded before under the same source id; refuses other content."""
    found = ConsentEvent.objects.filter(
        source=fields["source"], source_event_id=fields["source_event_id"]
    ).first()
    if found is None:
        return None
    same = (
        found.customer_id == fields["customer"].pk
        and found.purpose == fields["purpose"]
        and found.channel == fields["channel"]
        and found.is_granted == fields["is_granted"]
    )
    if not same:
        raise ConsentError(
            "source_event_id",
            f"{fields['source_event_id']!r} from {fields['source']} was recorded before with "
            "another customer, purpose, channel or decision",
        )
    return found


def _record(
    customer: Customer, key: ConsentKey, fields: dict[str, Any], actor: AuditActor
) -> ConsentEvent:
    # The customer's row lock serialises two decisions of one customer, so the state always
    # follows the latest decision whatever order they commit in.
    Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").first()
    event = ConsentEvent.objects.create(**fields)
    state = ConsentState.objects.filter(
        customer=customer, purpose=key.purpose, channel=key.channel
    ).first()
    if state is None:
        ConsentState.objects.create(
            customer=customer,
            purpose=key.purpose,
            channel=key.channel,
            is_granted=event.is_granted,
            decided_at=event.occurred_at,
            event=event,
        )
    elif event.occurred_at >= state.decided_at:
        state.is_granted = event.is_granted
        state.decided_at = event.occurred_at
        state.event = event
        state.save(update_fields=["is_granted", "decided_at", "event"])
    record(
        AuditActionChoices.CONSENT_CHANGE,
        actor=actor,
        customer=customer,
        details={
            "purpose": key.purpose,
            "channel": key.channel,
            "granted": event.is_granted,
            "source": event.source,
            "wording_version": event.wording_version,
            "consent_event_id": event.pk,
        },
    )
    return event


def refresh_consent_state(customer: Customer) -> None:
    """Rebuild the customer's current consent from their events (after a merge brought the
    duplicate's events over: the latest decision of either record wins)."""
    latest: dict[tuple[str, str], ConsentEvent] = {}
    for event in ConsentEvent.objects.filter(customer=customer).order_by("occurred_at", "pk"):
        latest[(event.purpose, event.channel)] = event
    with transaction.atomic():
        for (purpose, channel), event in latest.items():
            ConsentState.objects.update_or_create(
                customer=customer,
                purpose=purpose,
                channel=channel,
                defaults={
                    "is_granted": event.is_granted,
                    "decided_at": event.occurred_at,
                    "event": event,
                },
            )


def refresh_after_merge(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """``post_save`` of a customer merge: the survivor's consent state follows the events
    the merge moved to it. (The customers app sits below privacy and cannot call it.)"""
    if created:
        refresh_consent_state(instance.survivor)
