"""Top-level URL map: the staff dashboard at /, the REST API under /api/."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("api/", include("patron.api.urls")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("patron.web.urls")),
]
