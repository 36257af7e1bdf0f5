"""Forms of the privacy pages: a consent decision, a profile correction and an erasure taken
on the customer page, the audit log's filters, and logging and answering data subject
requests. They parse what staff typed; the rules are checked by
:mod:`patron.privacy.consent`, whose errors name the field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from patron.customers.choices import GenderChoices
from patron.customers.models import Customer
from patron.privacy.choices import (
    AuditActionChoices,
    ConsentChannelChoices,
    ConsentPurposeChoices,
    PrivacyRequestKindChoices,
    PrivacyRequestStatusChoices,
)
from patron.privacy.consent import ConsentKey, all_keys
from patron.privacy.requests import CORRECTABLE_FIELDS

GRANT = "grant"
WITHDRAW = "withdraw"


def key_value(key: ConsentKey) -> str:
    """A consent key as one form value: ``marketing:email``, ``personalisation``."""
    return f"{key.purpose}:{key.channel}" if key.channel else key.purpose


def key_label(key: ConsentKey) -> str:
    """A consent key in the active language: ``Marketing · SMS``."""
    purpose = ConsentPurposeChoices(key.purpose).label
    if not key.channel:
        return str(purpose)
    return f"{purpose} · {ConsentChannelChoices(key.channel).label}"


def parse_key(value: str) -> ConsentKey:
    """The consent key of a form value (:func:`key_value`)."""
    purpose, _separator, channel = value.partition(":")
    return ConsentKey(purpose, channel)


def key_choices() -> list[tuple[str, str]]:
    """Every consent key as (form value, label), in display order."""
    return [(key_value(key), key_label(key)) for key in all_keys()]


class ConsentDecisionForm(forms.Form):
    """Record a customer's decision for one purpose (and channel) from the customer page."""

    key = forms.ChoiceField(label=_("Purpose and channel"), choices=lambda: key_choices())
    decision = forms.ChoiceField(
        label=_("Decision"), choices=((GRANT, _("Grant")), (WITHDRAW, _("Withdraw")))
    )
    wording_version = forms.CharField(
        label=_("Wording version"),
        max_length=64,
        required=False,
        help_text=_("The version of the consent text the customer agreed to (needed to grant)."),
    )


class AuditFilterForm(forms.Form):
    """The audit log's filters; every field may stay empty."""

    action = forms.ChoiceField(
        label=_("Action"),
        required=False,
        choices=[("", _("All actions")), *AuditActionChoices.choices],
    )
    actor = forms.CharField(label=_("Actor"), required=False, max_length=200)
    customer = forms.CharField(label=_("Customer id"), required=False, max_length=128)
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


class ProfileCorrectionForm(forms.Form):
    """Correct a customer's profile at their request (the customer page's correction form).
    It starts from the current values; only the fields staff change are sent to
    :func:`patron.privacy.requests.correct_customer`, which validates and normalises them."""

    name = forms.CharField(label=_("Name"), required=False, max_length=200)
    email = forms.CharField(label=_("E-mail"), required=False, max_length=254)
    phone = forms.CharField(label=_("Phone"), required=False, max_length=32)
    address = forms.CharField(label=_("Address"), required=False, max_length=500)
    birthday = forms.DateField(
        label=_("Birthday"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    gender = forms.ChoiceField(label=_("Gender"), choices=GenderChoices.choices)
    province = forms.CharField(label=_("Province"), required=False, max_length=64)
    city = forms.CharField(label=_("City"), required=False, max_length=64)


def profile_initial(customer: Customer) -> dict[str, Any]:
    """The correction form's starting values: the customer's profile as stored."""
    return {name: getattr(customer, name) or None for name in CORRECTABLE_FIELDS}


def profile_changes(customer: Customer, cleaned: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a submitted correction form that differ from the stored profile (an
    emptied text field clears the value; blank stays blank)."""
    changes: dict[str, Any] = {}
    for name in CORRECTABLE_FIELDS:
        submitted = cleaned.get(name)
        if name != "birthday":
            submitted = (submitted or "").strip()
        stored = getattr(customer, name)
        if name != "birthday":
            stored = stored or ""
        if submitted != stored:
            changes[name] = submitted
    return changes


class ErasureForm(forms.Form):
    """Erase a customer's personal data: a reason (no personal data) and the customer id
    typed again, so that a slip of the mouse erases nobody."""

    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Why the data is erased, e.g. the request's ticket number. No personal data."),
    )
    confirm = forms.CharField(
        label=_("Type the customer id to confirm"),
        max_length=128,
        help_text=_("Erasure cannot be undone."),
    )

    def __init__(self, *args: Any, external_id: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.external_id = external_id

    def clean_confirm(self) -> str:
        """The typed id must be the customer's."""
        typed: str = self.cleaned_data["confirm"].strip()
        if typed != self.external_id:
            raise forms.ValidationError(_("This is not the customer id shown on the page."))
        return typed


class ReceivedRequestForm(forms.Form):
    """Log a data subject request received by mail, phone or e-mail, so that its deadline
    runs from the day it arrived."""

    customer = forms.CharField(label=_("Customer id"), max_length=128)
    kind = forms.ChoiceField(label=_("Request"), choices=PrivacyRequestKindChoices.choices)
    received_on = forms.DateField(
        label=_("Received on"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Leave empty for now."),
    )
    notes = forms.CharField(
        label=_("Notes"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("How it arrived and any reference number. No personal data."),
    )


class RequestStatusForm(forms.Form):
    """Move a logged request on: in progress, done or refused."""

    status = forms.ChoiceField(
        label=_("Status"),
        choices=[
            (status.value, status.label)
            for status in (
                PrivacyRequestStatusChoices.IN_PROGRESS,
                PrivacyRequestStatusChoices.DONE,
                PrivacyRequestStatusChoices.REFUSED,
            )
        ],
    )
