"""Forms of the privacy pages: a consent decision taken on the customer page and the audit
log's filters. They parse what staff typed; the rules are checked by
:mod:`patron.privacy.consent`, whose errors name the field."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from patron.privacy.choices import AuditActionChoices, ConsentChannelChoices, ConsentPurposeChoices
from patron.privacy.consent import ConsentKey, all_keys

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
