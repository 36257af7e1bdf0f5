"""URLs under /api/: the versioned API, its docs page, and JSON 404s for anything else."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from patron.api.errors import error_response
from patron.api.v1 import api


def docs(request: HttpRequest) -> HttpResponse:
    """The Swagger UI page of the API, with its assets served by Patron (no CDN)."""
    return api.docs.render_page(request, api)


# Exempt so that a POST to a wrong URL is told 404, not refused for a missing CSRF cookie.
@csrf_exempt
def not_found(request: HttpRequest, unknown_path: str = "") -> HttpResponse:
    """Any other URL under /api/: a JSON 404 rather than the dashboard's HTML page."""
    return error_response(404, "not_found", f"No API endpoint at {request.path}.")


urlpatterns = [
    path("v1/", api.urls),
    path("docs", docs, name="api-docs"),
    re_path(r"^(?P<unknown_path>.*)$", not_found),
]
