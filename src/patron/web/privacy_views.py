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

from patron.core.roles import (
    ApiPermissionChoices,
    PageAreaChoices,
    StaffRoleChoices,
    has_any_role,
    has_permission,
)
from patron.customers.models import Customer
from patron.customers.selectors import get_customer
from patron.privacy.audit import audit_events, request_actor
from patron.privacy.choices import (
    CLOSED_REQUEST_STATUSES,
    ConsentSourceChoices,
    PrivacyRequestKindChoices,
)
from patron.privacy.consent import (
    ConsentError,
    ConsentKey,
    ConsentStatus,
    consent_history,
    current_consents,
    record_consent,
)
from patron.privacy.erasure import is_pseudonym
from patron.privacy.models import ConsentEvent, PrivacyRequest
from patron.privacy.requests import (
    PrivacyRequestError,
    UnknownCustomerError,
    correct_customer,
    erase_customer,
    export_for_subject,
    find_subject,
    open_request,
    open_requests,
    set_request_status,
)
from patron.web.privacy_forms import (
    GRANT,
    AuditFilterForm,
    ConsentDecisionForm,
    ErasureForm,
    ProfileCorrectionForm,
    ReceivedRequestForm,
    RequestStatusForm,
    key_label,
    parse_key,
    profile_changes,
    profile_initial,
)
from patron.web.views import area_required

AUDIT_EVENTS_PER_PAGE = 50
CONSENT_HISTORY_SHOWN = 50


def can_read_audit_log(user: Any) -> bool:
    """Whether ``user`` may read the audit log: superusers and administrators."""
    return has_any_role(user, (StaffRoleChoices.ADMIN,))


def may_record_consent(user: Any) -> bool:
    """Whether ``user`` records consent decisions on the customer page (the API's
    ``consents.write``: administrators and service agents, who take the customer's call)."""
    return has_permission(user, ApiPermissionChoices.CONSENTS_WRITE)


def may_correct_profiles(user: Any) -> bool:
    """Whether ``user`` corrects customers' profiles (``privacy.correct``: administrators and
    service agents)."""
    return has_permission(user, ApiPermissionChoices.PRIVACY_CORRECT)


def may_answer_requests(user: Any) -> bool:
    """Whether ``user`` exports and erases customers' data and keeps the request register
    (``privacy.requests``: administrators)."""
    return has_permission(user, ApiPermissionChoices.PRIVACY_REQUESTS)


def consent_panel(customer: Customer, user: Any) -> dict[str, Any]:
    """The customer page's consent panel: the current consent per purpose and channel, the
    latest decisions and, for staff who may record decisions, an empty decision form."""
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
        "form": ConsentDecisionForm(auto_id="consent_%s") if may_record_consent(user) else None,
    }


def _key_of(item: ConsentStatus | ConsentEvent) -> ConsentKey:
    return ConsentKey(item.purpose, item.channel)


@area_required(PageAreaChoices.CUSTOMERS)
def consent_decision(request: HttpRequest, external_id: str) -> HttpResponse:
    """Record a grant or withdrawal taken by a staff member (form POST of the consent panel),
    then go back to the customer page with a message saying what happened."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not may_record_consent(request.user):
        raise PermissionDenied("only administrators and service agents record consent")
    customer = _subject_or_404(external_id)
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


def requests_panel(customer: Customer, user: Any) -> dict[str, Any]:
    """The customer page's data subject request panel for ``user``: the correction form for
    those who may correct profiles, export and erasure for those who answer requests, and
    the customer's requests so far."""
    may_correct = may_correct_profiles(user)
    may_answer = may_answer_requests(user)
    if not (may_correct or may_answer):
        return {"visible": False}
    erased = is_pseudonym(customer.external_id)
    return {
        "customer": customer,
        "visible": True,
        "erased": erased,
        "correction_form": (
            ProfileCorrectionForm(initial=profile_initial(customer), auto_id="correct_%s")
            if may_correct and not erased
            else None
        ),
        "may_answer": may_answer,
        "erasure_form": (
            ErasureForm(external_id=customer.external_id, auto_id="erase_%s")
            if may_answer and not erased
            else None
        ),
        "requests": list(customer.privacy_requests.order_by("-received_at", "-pk")[:20]),
    }


def _back_to(customer: Customer, anchor: str = "requests") -> HttpResponse:
    return redirect(reverse("web:customer_detail", args=[customer.external_id]) + f"#{anchor}")


def _form_problems(form: Any) -> str:
    return "; ".join(
        f"{form.fields[name].label if name in form.fields else name}: "
        f"{' '.join(str(error) for error in errors)}"
        for name, errors in form.errors.items()
    )


def _subject_or_404(external_id: str) -> Customer:
    try:
        return get_customer(external_id)
    except Customer.DoesNotExist as error:
        raise Http404(str(error)) from error


@area_required(PageAreaChoices.CUSTOMERS)
def customer_correction(request: HttpRequest, external_id: str) -> HttpResponse:
    """Correct a customer's profile from the customer page (POST): the fields changed are
    corrected, recorded as a correction request and audited by name, never by value.
    Administrators and service agents only."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not may_correct_profiles(request.user):
        raise PermissionDenied("only administrators and service agents correct profiles")
    customer = _subject_or_404(external_id)
    form = ProfileCorrectionForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, _("Profile not corrected: %(problems)s") % {"problems": _form_problems(form)}
        )
        return _back_to(customer)
    changes = profile_changes(customer, form.cleaned_data)
    if not changes:
        messages.info(request, _("Nothing to correct: every field is as stored."))
        return _back_to(customer)
    try:
        _customer, privacy_request, fields = correct_customer(
            customer, changes, actor=request_actor(request)
        )
    except PrivacyRequestError as error:
        label = form.fields[error.field].label if error.field in form.fields else error.field
        messages.error(
            request,
            _("Profile not corrected: %(field)s %(problem)s")
            % {"field": label, "problem": error.message},
        )
        return _back_to(customer)
    messages.success(
        request,
        _("Profile corrected (request #%(id)s): %(fields)s")
        % {
            "id": privacy_request.pk,
            "fields": ", ".join(str(form.fields[name].label) for name in fields),
        },
    )
    return _back_to(customer)


@area_required(PageAreaChoices.CUSTOMERS)
def customer_export(request: HttpRequest, external_id: str) -> HttpResponse:
    """Download everything Patron holds on the customer as a zip (POST, since it records a
    done access request and an ``export`` audit event). Administrators only."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not may_answer_requests(request.user):
        raise PermissionDenied("only administrators export customers' data")
    customer = _subject_or_404(external_id)
    _request, archive = export_for_subject(
        customer, actor=request_actor(request), kind=PrivacyRequestKindChoices.ACCESS
    )
    response = HttpResponse(archive, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="customer-{customer.pk}.zip"'
    return response


@area_required(PageAreaChoices.CUSTOMERS)
def customer_erasure(request: HttpRequest, external_id: str) -> HttpResponse:
    """Erase the customer's personal data (POST with a reason and the id typed again); the
    page then shows the pseudonymous record. Administrators only."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not may_answer_requests(request.user):
        raise PermissionDenied("only administrators erase customers' data")
    customer = _subject_or_404(external_id)
    form = ErasureForm(request.POST, external_id=customer.external_id)
    if not form.is_valid():
        messages.error(
            request, _("Nothing erased: %(problems)s") % {"problems": _form_problems(form)}
        )
        return _back_to(customer)
    try:
        outcome = erase_customer(
            customer, reason=form.cleaned_data["reason"], actor=request_actor(request)
        )
    except PrivacyRequestError as error:
        messages.error(request, _("Nothing erased: %(problem)s") % {"problem": error.message})
        return _back_to(customer)
    if outcome.created:
        messages.success(
            request,
            _("Personal data erased (request #%(id)s); the customer is now %(pseudonym)s.")
            % {"id": outcome.request.pk, "pseudonym": outcome.customer.external_id},
        )
    else:
        messages.info(request, _("This customer had been erased before; nothing changed."))
    return _back_to(outcome.customer)


REQUESTS_CLOSED_SHOWN = 50


@area_required(PageAreaChoices.PRIVACY)
def privacy_requests(request: HttpRequest) -> HttpResponse:
    """Data subject requests: the open ones, the most overdue first, with their deadlines;
    the latest answered ones; a form to log a request received by mail or phone. A POST logs
    one. Administrators only."""
    if not may_answer_requests(request.user):
        raise PermissionDenied("only administrators answer data subject requests")
    form = ReceivedRequestForm(request.POST or None, auto_id="request_%s")
    if request.method == "POST" and form.is_valid():
        logged = _log_request(request, form)
        if logged is not None:
            messages.success(
                request,
                _("Request #%(id)s logged; due %(due)s.")
                % {"id": logged.pk, "due": timezone.localtime(logged.due_at).strftime("%Y-%m-%d")},
            )
            return redirect("web:privacy_requests")
    now = timezone.now()
    return render(
        request,
        "web/privacy/requests.html",
        {
            "form": form,
            "open_requests": [
                {"request": item, "overdue": item.due_at < now, "form": RequestStatusForm()}
                for item in open_requests()[:500]
            ],
            "closed_requests": PrivacyRequest.objects.filter(status__in=CLOSED_REQUEST_STATUSES)
            .select_related("customer")
            .order_by("-completed_at", "-pk")[:REQUESTS_CLOSED_SHOWN],
            "closed_limit": REQUESTS_CLOSED_SHOWN,
            "nav": "privacy_requests",
        },
    )


def _log_request(request: HttpRequest, form: ReceivedRequestForm) -> PrivacyRequest | None:
    """Open the request the form describes; put an error on the form and answer None when
    the customer is unknown or the notes are refused."""
    data = form.cleaned_data
    try:
        customer = find_subject(data["customer"].strip())
    except UnknownCustomerError as error:
        form.add_error("customer", str(error))
        return None
    received = _day_start(data["received_on"]) if data["received_on"] else None
    if received is not None and received > timezone.now():
        form.add_error("received_on", _("A request cannot arrive in the future."))
        return None
    try:
        return open_request(
            customer,
            data["kind"],
            actor=request_actor(request),
            notes=data["notes"],
            received_at=received,
        )
    except PrivacyRequestError as error:
        field_name = error.field if error.field in form.fields else None
        form.add_error(field_name, error.message)
        return None


@area_required(PageAreaChoices.PRIVACY)
def privacy_request_status(request: HttpRequest, request_id: int) -> HttpResponse:
    """Move a logged request to in progress, done or refused (POST). Administrators only."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not may_answer_requests(request.user):
        raise PermissionDenied("only administrators answer data subject requests")
    try:
        privacy_request = PrivacyRequest.objects.get(pk=request_id)
    except PrivacyRequest.DoesNotExist as error:
        raise Http404(f"no data subject request #{request_id}") from error
    form = RequestStatusForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, _("Status not changed: %(problems)s") % {"problems": _form_problems(form)}
        )
        return redirect("web:privacy_requests")
    try:
        set_request_status(privacy_request, form.cleaned_data["status"])
    except PrivacyRequestError as error:
        messages.error(request, _("Status not changed: %(problem)s") % {"problem": error.message})
        return redirect("web:privacy_requests")
    messages.success(
        request,
        _("Request #%(id)s is now: %(status)s")
        % {"id": privacy_request.pk, "status": privacy_request.get_status_display()},
    )
    return redirect("web:privacy_requests")
