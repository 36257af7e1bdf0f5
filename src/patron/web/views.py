"""The staff dashboard's pages. Views only read the request, call selectors and render."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import get_language

from patron.analytics.selectors import (
    behaviour_segment_label,
    churn_reasons,
    customer_analysis,
    prediction_settings,
    value_at_risk,
)
from patron.core.money import default_currency
from patron.core.roles import PageAreaChoices, may_open
from patron.customers.choices import IdentityKindChoices
from patron.customers.models import Customer
from patron.customers.selectors import get_customer, search_customers
from patron.loyalty.selectors import member_summary
from patron.orders.selectors import (
    compare_recent_periods,
    customer_events,
    customer_lifetime,
    customer_orders,
    shop_headline,
    weekly_orders_revenue,
    with_order_stats,
)
from patron.privacy.access import customer_view, customers_view, identities_view
from patron.web.charts import weekly_orders_revenue_figure
from patron.web.recommend_panel import customer_recommendations

CUSTOMERS_PER_PAGE = 25
ORDERS_SHOWN = 100
EVENTS_SHOWN = 50
LEDGER_ENTRIES_SHOWN = 20
RECENT_DAYS = 30

View = Callable[..., HttpResponse]


def staff_required(view: View) -> View:
    """Let active staff users through; send anonymous visitors to the login page and refuse
    signed-in users who are not staff (403)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (request.user.is_active and request.user.is_staff):
            raise PermissionDenied("the dashboard is for staff users")
        return view(request, *args, **kwargs)

    return wrapper


def area_required(area: str) -> Callable[[View], View]:
    """Like :func:`staff_required`, and refuse (403) staff whose roles may not open ``area``
    (``patron.core.roles.PAGE_AREAS``)."""
    if area not in PageAreaChoices.values:
        raise ValueError(f"unknown page area {area!r}")

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            # Runs inside staff_required: the user is signed-in, active staff.
            if not may_open(request.user, area):
                raise PermissionDenied(f"your role may not open the {area} pages")
            return view(request, *args, **kwargs)

        return staff_required(wrapper)

    return decorate


#: Why the customer pages read personal data (named in the ``pii_read`` audit events).
CUSTOMER_LIST_PURPOSE = "customer list page"
CUSTOMER_PAGE_PURPOSE = "customer page"


@area_required(PageAreaChoices.OVERVIEW)
def overview(request: HttpRequest) -> HttpResponse:
    """Headline figures of the shop and the weekly orders and revenue chart."""
    now = timezone.now()
    headline = shop_headline(now)
    period = compare_recent_periods(now, days=RECENT_DAYS)
    weeks = weekly_orders_revenue()
    currency = default_currency()
    chart = weekly_orders_revenue_figure(weeks, currency) if weeks else None
    return render(
        request,
        "web/overview.html",
        {
            "headline": headline,
            "period": period,
            "chart": chart,
            "currency": currency,
            "nav": "overview",
        },
    )


@area_required(PageAreaChoices.CUSTOMERS)
def customer_list(request: HttpRequest) -> HttpResponse:
    """Customers, newest first, searchable by an exact full name, e-mail, phone or external id
    (personal data is encrypted: ``search_customers`` matches blind indexes), paged."""
    query = request.GET.get("q", "").strip()
    paginator = Paginator(search_customers(query), CUSTOMERS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    # Order statistics only for the page shown: the subqueries run for 25 rows, not the shop.
    customers = with_order_stats(
        Customer.objects.filter(pk__in=[customer.pk for customer in page.object_list])
    ).order_by("-pk")
    rows = list(customers)
    shown = customers_view(rows, request.user, purpose=CUSTOMER_LIST_PURPOSE)
    return render(
        request,
        "web/customer_list.html",
        {
            "query": query,
            "page": page,
            "customers": [(customer, shown[customer.pk]) for customer in rows],
            "currency": default_currency(),
            "nav": "customers",
        },
    )


@area_required(PageAreaChoices.CUSTOMERS)
def customer_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    """One customer: profile, identities, lifetime totals, the latest analysis's scores, the
    loyalty membership (tier, balances, next expiry, latest ledger entries), orders with lines,
    events."""
    try:
        customer = get_customer(external_id)
    except Customer.DoesNotExist as error:
        raise Http404(str(error)) from error
    orders = customer_orders(customer, limit=ORDERS_SHOWN)
    analysis = customer_analysis(customer)
    behaviour = (
        behaviour_segment_label(
            analysis.run, analysis.behaviour_segment, analysis.behaviour_segment_name
        )
        if analysis
        else ""
    )
    return render(
        request,
        "web/customer_detail.html",
        {
            "customer": customer,
            "person": customer_view(customer, request.user, purpose=CUSTOMER_PAGE_PURPOSE),
            "lifetime": customer_lifetime(customer),
            "analysis": analysis,
            "behaviour_segment": behaviour,
            "prediction_settings": prediction_settings(analysis.run) if analysis else None,
            "value_at_risk": value_at_risk(analysis) if analysis else None,
            "reasons": (
                [reason.text(get_language()) for reason in churn_reasons(analysis)]
                if analysis
                else []
            ),
            "loyalty": member_summary(customer, entries=LEDGER_ENTRIES_SHOWN),
            "recommendations": customer_recommendations(customer),
            "identities": [
                {"kind": kind, "label": IdentityKindChoices(kind).label, "value": value}
                for kind, value in identities_view(
                    [
                        (identity.kind, identity.identifier)
                        for identity in customer.identities.order_by("kind", "value")
                    ],
                    request.user,
                )
            ],
            "orders": orders,
            "orders_limit": ORDERS_SHOWN,
            "events": customer_events(customer, limit=EVENTS_SHOWN),
            "events_limit": EVENTS_SHOWN,
            "currency": default_currency(),
            "nav": "customers",
        },
    )
