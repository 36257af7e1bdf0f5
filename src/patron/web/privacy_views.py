"""The dashboard's privacy pages: recording a customer's consent decision (the consent panel
of the customer page posts here) and the audit log, which only administrators may read.

Views parse the request (:mod:`patron.web.privacy_forms`) and call
:mod:`patron.privacy.consent` and :mod:`patron.privacy.audit`; the rules live there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from patron.core.roles import PageAreaChoices, StaffRoleChoices, has_any_role
from patron.customers.models import Customer
from patron.customers.selectors import get_customer
from patron.privacy.audit import audit_events, request_actor
from patron.privacy.choices import ConsentSourceChoices
from patron.privacy.consent import (
    ConsentError,
    ConsentKey,
    ConsentStatus,
    consent_history,
    current_consents,
    record_consent,
)
from patron.privacy.models import ConsentEvent
from patron.web.privacy_forms import (
    GRANT,
    AuditFilterForm,
    ConsentDecisionForm,
    key_label,
    parse_key,
)
from patron.web.views import area_required

AUDIT_EVENTS_PER_PAGE = 50
CONSENT_HISTORY_SHOWN = 50


def can_read_audit_log(user: Any) -> bool:
    """Whether ``user`` may read the audit log: superusers and administrators."""
    return has_any_role(user, (StaffRoleChoices.ADMIN,))


def consent_panel(customer: Customer) -> dict[str, Any]:
    """The customer page's consent panel: the current consent per purpose and channel, the
    latest decisions and an empty decision form."""
    return {
        "customer": customer,
        "statuses": [
            {
                "label": key_label(_key_of(status)),
                "status": status,
                "source": ConsentSourceChoices(status.source).label if status.source else "",
            }
            for status in current_consents(customer)
        ],
        "history": [
            {"label": key_label(_key_of(event)), "event": event}
            for event in consent_history(customer)[:CONSENT_HISTORY_SHOWN]
        ],
        "history_limit": CONSENT_HISTORY_SHOWN,
        "form": ConsentDecisionForm(auto_id="consent_%s"),
    }


def _key_of(item: ConsentStatus | ConsentEvent) -> ConsentKey:
    return ConsentKey(item.purpose, item.channel)


@area_required(PageAreaChoices.CUSTOMERS)
def consent_decision(request: HttpRequest, external_id: str) -> HttpResponse:
    """Record a grant or withdrawal taken by a staff member (form POST of the consent panel),
    then go back to the customer page with a message saying what happened."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        customer = get_customer(external_id)
    except Customer.DoesNotExist as error:
        raise Http404(str(error)) from error
    back = reverse("web:customer_detail", args=[customer.external_id]) + "#consent"
    form = ConsentDecisionForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(
            f"{form.fields[name].label}: {' '.join(str(error) for error in errors)}"
            for name, errors in form.errors.items()
        )
        messages.error(request, _("Consent not recorded: %(problems)s") % {"problems": problems})
        return redirect(back)
    key = parse_key(form.cleaned_data["key"])
    is_granted = form.cleaned_data["decision"] == GRANT
    try:
        record_consent(
            customer,
            key.purpose,
            key.channel,
            is_granted=is_granted,
            source=ConsentSourceChoices.DASHBOARD,
            wording_version=form.cleaned_data["wording_version"],
            actor=request_actor(request),
        )
    except ConsentError as error:
        messages.error(
            request, _("Consent not recorded: %(problem)s") % {"problem": _consent_error(error)}
        )
        return redirect(back)
    label = key_label(key)
    if is_granted:
        messages.success(request, _("Consent granted: %(key)s") % {"key": label})
    else:
        messages.success(request, _("Consent withdrawn: %(key)s") % {"key": label})
    return redirect(back)


def _consent_error(error: ConsentError) -> str:
    """A refused decision in the active language (the fields the form can get wrong)."""
    if error.field == "wording_version":
        return _("a grant needs the version of the consent text the customer agreed to.")
    return error.message


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time()), timezone.get_default_timezone())


@area_required(PageAreaChoices.PRIVACY)
def audit_log(request: HttpRequest) -> HttpResponse:
    """The audit log, newest first, filterable by action, actor, customer and days (in the
    shop's time zone), 50 a page. Administrators only (403 for other staff)."""
    if not can_read_audit_log(request.user):
        raise PermissionDenied("only administrators read the audit log")
    form = AuditFilterForm(request.GET or None)
    filters: dict[str, Any] = {}
    if form.is_valid():
        data = form.cleaned_data
        filters = {
            "action": data["action"] or "",
            "actor": data["actor"].strip(),
            "customer": data["customer"].strip(),
            "since": _day_start(data["date_from"]) if data["date_from"] else None,
            "until": (
                _day_start(data["date_to"] + dt.timedelta(days=1)) if data["date_to"] else None
            ),
        }
    paginator = Paginator(audit_events(**filters), AUDIT_EVENTS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    params = {name: request.GET[name] for name in form.fields if request.GET.get(name, "").strip()}
    return render(
        request,
        "web/privacy/audit_log.html",
        {
            "form": form,
            "page": page,
            "events": page.object_list,
            "page_params": urlencode(params),
            "nav": "audit",
        },
    )
