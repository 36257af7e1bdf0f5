"""Top-level URL map: the staff dashboard at /, the REST API under /api/."""

from django.contrib import admin
from django.urls import include, path

from patron.web.security import LockoutAdminAuthenticationForm

# The admin's sign-in says when the lockout refuses it, as the dashboard's does.
admin.site.login_form = LockoutAdminAuthenticationForm

urlpatterns = [
    path("api/", include("patron.api.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("patron.web.urls")),
]
