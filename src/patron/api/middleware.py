"""Keeps every response under /api/ JSON, also the ones Django and ninja make themselves."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from patron.api.errors import code_for_status, error_response, message_for_status

API_PATH_PREFIX = "/api/"


class JsonApiErrorsMiddleware:
    """Turns a non-JSON error response under ``/api/`` into ``{"code", "message"}``.

    django-ninja answers a wrong method with a plain-text 405, and Django's own 404 and 500
    pages are HTML (the 500 one, in debug mode, with a traceback); API clients get JSON.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith(API_PATH_PREFIX)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        status = response.status_code
        message = message_for_status(status)
        if status == 405 and "Allow" in response:
            message = f"Method {request.method} is not allowed here; use {response['Allow']}."
        replacement = error_response(status, code_for_status(status), message)
        if "Allow" in response:
            replacement["Allow"] = response["Allow"]
        return replacement
