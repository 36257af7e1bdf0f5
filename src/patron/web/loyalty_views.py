"""The dashboard's loyalty pages: the programme overview and the configuration pages of a
loyalty manager (programme settings, tiers, earning rules, rewards, coupon templates and codes).

Views read the request, parse forms (:mod:`patron.web.loyalty_forms`) and call the loyalty
functions (``patron.loyalty.programme``, ``tiers``, ``rewards``, ``coupons``) and selectors;
the rules live there. Every staff user may look; only administrators and loyalty managers may
change the programme (:func:`can_configure_loyalty`), and coupons also marketers (the API's
``coupons.configure``); other roles get no forms and a 403 on a post.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from patron.core.roles import (
    ApiPermissionChoices,
    PageAreaChoices,
    can_configure_loyalty,
    has_permission,
)
from patron.loyalty.coupons import create_coupon_template, generate_coupon_codes
from patron.loyalty.errors import LoyaltyInputError
from patron.loyalty.models import Coupon, CouponTemplate, Programme, Tier
from patron.loyalty.programme import (
    add_promotion,
    configure_programme,
    get_programme,
    set_category_multiplier,
)
from patron.loyalty.rewards import create_reward
from patron.loyalty.selectors import (
    coupon_codes,
    coupon_templates,
    find_programme,
    points_by_month,
    programme_category_multipliers,
    programme_overview,
    programme_promotions,
    programme_rewards,
    tier_summaries,
)
from patron.loyalty.tiers import define_tier
from patron.web import loyalty_charts as charts
from patron.web.loyalty_forms import (
    PROGRAMME_SETTINGS,
    CategoryMultiplierForm,
    CouponCodesForm,
    CouponTemplateForm,
    ProgrammeForm,
    PromotionForm,
    RewardForm,
    TierForm,
    add_service_errors,
)
from patron.web.views import View, area_required

#: Codes listed per page of a coupon template.
CODES_PER_PAGE = 50
#: Months of the points chart of the overview.
CHART_MONTHS = 12


def configurer_required(view: View) -> View:
    """Refuse (403) a post by a staff user who may not change the programme; reads pass."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST" and not can_configure_loyalty(request.user):
            raise PermissionDenied("only administrators and loyalty managers change the programme")
        return view(request, *args, **kwargs)

    return area_required(PageAreaChoices.LOYALTY)(wrapper)


def can_configure_coupons(user: Any) -> bool:
    """Whether ``user`` makes coupon templates and codes (``coupons.configure``:
    administrators, loyalty managers and marketers), on the dashboard as through the API."""
    return has_permission(user, ApiPermissionChoices.COUPONS_CONFIGURE)


def coupon_configurer_required(view: View) -> View:
    """Refuse (403) a post by a staff user who may not make coupons; reads pass."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST" and not can_configure_coupons(request.user):
            raise PermissionDenied(
                "only administrators, loyalty managers and marketers make coupons"
            )
        return view(request, *args, **kwargs)

    return area_required(PageAreaChoices.LOYALTY)(wrapper)


def _saved(form: forms.Form, action: Callable[[dict[str, Any]], object]) -> bool:
    """Call ``action`` with the form's data when the form parses; a loyalty function's refusal
    goes onto the field it names. True when it was saved."""
    if not form.is_valid():
        return False
    try:
        # The function saves all or nothing; the transaction also keeps a refused
        # many-to-many set from leaving a half-made row.
        with transaction.atomic():
            action(form.cleaned_data)
    except (LoyaltyInputError, ValidationError) as error:
        add_service_errors(form, error)
        return False
    return True


def _context(request: HttpRequest, nav: str, **values: Any) -> dict[str, Any]:
    return {"nav": nav, "can_edit": can_configure_loyalty(request.user), **values}


def _coupon_context(request: HttpRequest, **values: Any) -> dict[str, Any]:
    return {"nav": "loyalty_coupons", "can_edit": can_configure_coupons(request.user), **values}


# --- overview ------------------------------------------------------------------------------


@area_required(PageAreaChoices.LOYALTY)
def overview(request: HttpRequest) -> HttpResponse:
    """The programme's headline figures: members per tier, points issued, redeemed, expired and
    outstanding, the liability in money, the redemption rate, points per month."""
    programme = find_programme()
    if programme is None:
        return render(request, "web/loyalty/overview.html", _context(request, "loyalty"))
    figures = programme_overview(programme)
    tiers = tier_summaries(programme)
    months = points_by_month(programme, months=CHART_MONTHS)
    return render(
        request,
        "web/loyalty/overview.html",
        _context(
            request,
            "loyalty",
            programme=programme,
            figures=figures,
            tiers=tiers,
            tiers_chart=charts.members_per_tier_figure(tiers) if figures.members else None,
            months_chart=charts.points_by_month_figure(months) if months else None,
        ),
    )


# --- programme settings --------------------------------------------------------------------


@configurer_required
def programme_settings(request: HttpRequest) -> HttpResponse:
    """The programme's settings; a post saves them through ``configure_programme``."""
    programme = get_programme()
    if request.method == "POST":
        form = ProgrammeForm(request.POST)
        if _saved(
            form,
            lambda data: configure_programme(
                programme, **{name: data[name] for name in PROGRAMME_SETTINGS}
            ),
        ):
            messages.success(request, _("The programme's settings were saved."))
            return redirect("web:loyalty_programme")
    else:
        form = ProgrammeForm(initial=ProgrammeForm.initial_of(programme))
    return render(
        request,
        "web/loyalty/programme.html",
        _context(request, "loyalty_programme", programme=programme, form=form),
        status=400 if form.errors else 200,
    )


# --- tiers ---------------------------------------------------------------------------------


@configurer_required
def tiers(request: HttpRequest) -> HttpResponse:
    """The tier ladder with its members; a post defines a tier (or changes the tier of that
    name) through ``define_tier``. ``?edit=<id>`` fills the form with a tier's values."""
    programme = get_programme()
    if request.method == "POST":
        form = TierForm(request.POST)
        if _saved(form, lambda data: define_tier(**data, programme=programme)):
            messages.success(
                request, _("Tier %(name)s was saved.") % {"name": form.cleaned_data["name"]}
            )
            return redirect("web:loyalty_tiers")
    else:
        editing = _tier_to_edit(request, programme)
        form = TierForm(initial=TierForm.initial_of(editing) if editing else None)
    return render(
        request,
        "web/loyalty/tiers.html",
        _context(
            request,
            "loyalty_tiers",
            programme=programme,
            tiers=tier_summaries(programme),
            form=form,
        ),
        status=400 if form.errors else 200,
    )


def _tier_to_edit(request: HttpRequest, programme: Programme) -> Tier | None:
    raw = request.GET.get("edit", "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise Http404("edit must be a tier number")
    return get_object_or_404(Tier, pk=int(raw), programme=programme)


# --- earning rules -------------------------------------------------------------------------


def _rules_page(
    request: HttpRequest,
    programme: Programme,
    promotion_form: PromotionForm | None = None,
    category_form: CategoryMultiplierForm | None = None,
) -> HttpResponse:
    promotion_form = promotion_form or PromotionForm()
    category_form = category_form or CategoryMultiplierForm()
    return render(
        request,
        "web/loyalty/rules.html",
        _context(
            request,
            "loyalty_rules",
            programme=programme,
            promotions=programme_promotions(programme),
            multipliers=programme_category_multipliers(programme),
            promotion_form=promotion_form,
            category_form=category_form,
            has_categories=category_form.fields["category"].queryset.exists(),  # type: ignore[attr-defined]
            now=timezone.now(),
        ),
        status=400 if promotion_form.errors or category_form.errors else 200,
    )


@configurer_required
def rules(request: HttpRequest) -> HttpResponse:
    """The earning rules beside the base rate: promotions and category multipliers."""
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    return _rules_page(request, get_programme())


@configurer_required
def promotion_add(request: HttpRequest) -> HttpResponse:
    """Add a promotion through ``add_promotion`` (posts only)."""
    if request.method != "POST":
        return redirect("web:loyalty_rules")
    programme = get_programme()
    form = PromotionForm(request.POST)
    if _saved(form, lambda data: add_promotion(**data, programme=programme)):
        messages.success(
            request, _("Promotion %(name)s was added.") % {"name": form.cleaned_data["name"]}
        )
        return redirect("web:loyalty_rules")
    return _rules_page(request, programme, promotion_form=form)


@configurer_required
def category_multiplier_set(request: HttpRequest) -> HttpResponse:
    """Set a category's multiplier through ``set_category_multiplier`` (posts only)."""
    if request.method != "POST":
        return redirect("web:loyalty_rules")
    programme = get_programme()
    form = CategoryMultiplierForm(request.POST)
    if _saved(form, lambda data: set_category_multiplier(**data, programme=programme)):
        messages.success(
            request,
            _("The multiplier of %(category)s was saved.")
            % {"category": form.cleaned_data["category"].path},
        )
        return redirect("web:loyalty_rules")
    return _rules_page(request, programme, category_form=form)


# --- rewards -------------------------------------------------------------------------------


@configurer_required
def rewards(request: HttpRequest) -> HttpResponse:
    """The reward catalogue; a post adds a reward through ``create_reward``."""
    programme = get_programme()
    if request.method == "POST":
        form = RewardForm(request.POST, programme=programme)
        if _saved(form, lambda data: create_reward(**data, programme=programme)):
            messages.success(
                request, _("Reward %(name)s was added.") % {"name": form.cleaned_data["name"]}
            )
            return redirect("web:loyalty_rewards")
    else:
        form = RewardForm(programme=programme)
    return render(
        request,
        "web/loyalty/rewards.html",
        _context(
            request,
            "loyalty_rewards",
            programme=programme,
            rewards=programme_rewards(programme),
            form=form,
        ),
        status=400 if form.errors else 200,
    )


# --- coupons -------------------------------------------------------------------------------


@coupon_configurer_required
def coupons(request: HttpRequest) -> HttpResponse:
    """The coupon templates; a post adds one through ``create_coupon_template``."""
    if request.method == "POST":
        form = CouponTemplateForm(request.POST)
        made: list[CouponTemplate] = []
        if _saved(form, lambda data: made.append(create_coupon_template(**data))):
            messages.success(
                request,
                _("Coupon template %(name)s was added; generate its codes here.")
                % {"name": made[0].name},
            )
            return redirect("web:loyalty_coupon_template", made[0].pk)
    else:
        form = CouponTemplateForm()
    return render(
        request,
        "web/loyalty/coupons.html",
        _coupon_context(request, templates=coupon_templates(), form=form),
        status=400 if form.errors else 200,
    )


def _batch_start(request: HttpRequest) -> datetime | None:
    raw = request.GET.get("since", "").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise Http404(f"since must be an ISO 8601 moment, not {raw!r}") from None
    if timezone.is_naive(moment):
        raise Http404("since must carry its UTC offset")
    return moment


@coupon_configurer_required
def coupon_template(request: HttpRequest, template_id: int) -> HttpResponse:
    """A coupon template's rules and codes, 50 a page, with bulk generation of new codes.

    Generating is a bulk action: the first post shows what will be made and asks to confirm;
    the confirmed post makes the codes through ``generate_coupon_codes`` and the page then
    offers the new batch as a CSV download."""
    template = get_object_or_404(CouponTemplate, pk=template_id)
    status = 200
    confirm: dict[str, Any] | None = None
    if request.method == "POST":
        form = CouponCodesForm(request.POST)
        if form.is_valid() and not form.cleaned_data["confirmed"]:
            confirm = form.cleaned_data
        else:
            started = timezone.now()
            made: list[str] = []
            if _saved(
                form,
                lambda data: made.extend(
                    generate_coupon_codes(
                        template,
                        data["count"],
                        prefix=data["prefix"],
                        use_limit=data["use_limit"],
                    )
                ),
            ):
                messages.success(
                    request,
                    ngettext(
                        "%(count)s code was generated.",
                        "%(count)s codes were generated.",
                        len(made),
                    )
                    % {"count": len(made)},
                )
                address = reverse("web:loyalty_coupon_template", args=[template.pk])
                query = urlencode({"since": started.isoformat(), "made": str(len(made))})
                return HttpResponseRedirect(f"{address}?{query}")
            status = 400
    else:
        form = CouponCodesForm()
    since = _batch_start(request)
    made_count = request.GET.get("made", "")
    paginator = Paginator(coupon_codes(template), CODES_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    export = reverse("web:loyalty_coupon_codes_export", args=[template.pk])
    return render(
        request,
        "web/loyalty/coupon_template.html",
        _coupon_context(
            request,
            template=template,
            categories=template.categories.order_by("path"),
            page=page,
            form=form,
            confirm=confirm,
            batch_export_url=f"{export}?{urlencode({'since': since.isoformat()})}" if since else "",
            batch_size=int(made_count) if made_count.isdigit() else 0,
            export_url=export,
        ),
        status=status,
    )


#: Columns of the coupon codes file.
CODE_COLUMNS = (
    "code",
    "template",
    "kind",
    "value",
    "currency",
    "assigned_to",
    "use_limit",
    "times_used",
    "created_at",
)


def coupon_codes_csv(template: CouponTemplate, codes: Iterable[Coupon]) -> bytes:
    """Codes of a template as UTF-8 CSV with a byte-order mark (Excel on a Chinese Windows
    guesses GBK without it): value as decimal text, times in the shop's zone."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CODE_COLUMNS)
    value = f"{template.value.normalize():f}"
    for coupon in codes:
        writer.writerow(
            [
                coupon.code,
                template.name,
                template.kind,
                value,
                template.currency,
                coupon.customer.external_id if coupon.customer else "",
                "" if coupon.use_limit is None else coupon.use_limit,
                coupon.times_used,
                timezone.localtime(coupon.created_at).isoformat(timespec="seconds"),
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


@area_required(PageAreaChoices.LOYALTY)
def coupon_codes_export(request: HttpRequest, template_id: int) -> HttpResponse:
    """The codes of a template (``?since=`` one batch) as a CSV download."""
    template = get_object_or_404(CouponTemplate, pk=template_id)
    since = _batch_start(request)
    codes = coupon_codes(template, created_since=since).iterator(chunk_size=2000)
    response = HttpResponse(
        coupon_codes_csv(template, codes), content_type="text/csv; charset=utf-8"
    )
    suffix = f"-{timezone.localtime(since):%Y%m%d-%H%M%S}" if since else ""
    filename = f"patron-coupon-{template.pk}-codes{suffix}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
