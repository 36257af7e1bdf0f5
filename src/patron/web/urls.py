"""URLs of the staff dashboard (mounted at ``/``)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from patron.web import views

app_name = "web"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("customers/", views.customer_list, name="customer_list"),
    path("customers/<path:external_id>/", views.customer_detail, name="customer_detail"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="web/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
