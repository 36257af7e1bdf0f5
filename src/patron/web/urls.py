"""URLs of the staff dashboard (mounted at ``/``)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from patron.web import (
    analytics_views,
    loyalty_views,
    prediction_views,
    privacy_views,
    recommend_views,
    views,
)
from patron.web.security import LockoutAuthenticationForm

app_name = "web"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("customers/", views.customer_list, name="customer_list"),
    path(
        "customers/<path:external_id>/consents/",
        privacy_views.consent_decision,
        name="consent_decision",
    ),
    path(
        "customers/<path:external_id>/correction/",
        privacy_views.customer_correction,
        name="customer_correction",
    ),
    path(
        "customers/<path:external_id>/export/",
        privacy_views.customer_export,
        name="customer_export",
    ),
    path(
        "customers/<path:external_id>/erasure/",
        privacy_views.customer_erasure,
        name="customer_erasure",
    ),
    path("customers/<path:external_id>/", views.customer_detail, name="customer_detail"),
    path("analytics/segments/", analytics_views.segments, name="analytics_segments"),
    path(
        "analytics/segments/<str:by>/<str:code>/",
        analytics_views.segment_customers_page,
        name="analytics_segment_customers",
    ),
    path(
        "analytics/segments/<str:by>/<str:code>/export.csv",
        analytics_views.segment_export,
        name="analytics_segment_export",
    ),
    path("analytics/cohorts/", analytics_views.cohorts, name="analytics_cohorts"),
    path("analytics/kpis/", analytics_views.kpi_page, name="analytics_kpis"),
    path("analytics/migration/", analytics_views.migration, name="analytics_migration"),
    path("analytics/clv/", prediction_views.clv, name="analytics_clv"),
    path("analytics/churn/", prediction_views.churn, name="analytics_churn"),
    path(
        "analytics/churn/export.csv",
        prediction_views.churn_export,
        name="analytics_churn_export",
    ),
    path("analytics/models/", prediction_views.model_list, name="analytics_models"),
    path(
        "analytics/models/<int:model_run_id>/",
        prediction_views.model_detail,
        name="analytics_model_detail",
    ),
    path(
        "analytics/recommendations/",
        recommend_views.recommendations_page,
        name="recommendations",
    ),
    path("loyalty/", loyalty_views.overview, name="loyalty_overview"),
    path("loyalty/programme/", loyalty_views.programme_settings, name="loyalty_programme"),
    path("loyalty/tiers/", loyalty_views.tiers, name="loyalty_tiers"),
    path("loyalty/rules/", loyalty_views.rules, name="loyalty_rules"),
    path(
        "loyalty/rules/promotions/",
        loyalty_views.promotion_add,
        name="loyalty_promotion_add",
    ),
    path(
        "loyalty/rules/categories/",
        loyalty_views.category_multiplier_set,
        name="loyalty_category_multiplier_set",
    ),
    path("loyalty/rewards/", loyalty_views.rewards, name="loyalty_rewards"),
    path("loyalty/coupons/", loyalty_views.coupons, name="loyalty_coupons"),
    path(
        "loyalty/coupons/<int:template_id>/",
        loyalty_views.coupon_template,
        name="loyalty_coupon_template",
    ),
    path(
        "loyalty/coupons/<int:template_id>/codes.csv",
        loyalty_views.coupon_codes_export,
        name="loyalty_coupon_codes_export",
    ),
    path("privacy/audit/", privacy_views.audit_log, name="audit_log"),
    path("privacy/requests/", privacy_views.privacy_requests, name="privacy_requests"),
    path(
        "privacy/requests/<int:request_id>/status/",
        privacy_views.privacy_request_status,
        name="privacy_request_status",
    ),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="web/login.html",
            redirect_authenticated_user=True,
            authentication_form=LockoutAuthenticationForm,
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
