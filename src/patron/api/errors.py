"""Every API error is JSON: ``{"code": "...", "message": "..."}``, plus ``errors`` for 422.

``install_error_handlers`` maps django-ninja's and Django's exceptions onto that shape;
:class:`ApiError` is what handlers raise for anything else.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

logger = logging.getLogger("patron.api")

#: The error code used for each HTTP status when nothing more specific applies.
STATUS_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    422: "invalid_request",
    429: "throttled",
    500: "server_error",
}

_STATUS_MESSAGES: dict[int, str] = {
    400: "The request could not be read.",
    401: "Authentication required: send `Authorization: Bearer TOKEN`.",
    403: "You are not allowed to do this.",
    404: "Not found.",
    405: "This method is not allowed here.",
    500: "Internal server error. It has been logged.",
}


class ErrorOut(Schema):
    """The body of every error response."""

    code: str
    message: str


class FieldErrorOut(Schema):
    """One invalid input: where it was (query, path, body), which field, and what is wrong."""

    location: str
    field: str
    message: str
    type: str


class ValidationErrorOut(ErrorOut):
    """The body of a 422 response."""

    errors: list[FieldErrorOut]


class ApiError(Exception):
    """An error to answer with ``status`` and the JSON body ``{"code", "message", ...}``;
    ``headers`` go on the response (``Retry-After`` of a 429). A 422 always carries
    ``errors`` (:class:`ValidationErrorOut`, as every 422 is documented): the fields at
    fault, or an empty list for a refusal that names none."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        if status == 422:
            extra.setdefault("errors", [])
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body of the response."""
        return {"code": self.code, "message": self.message, **self.extra}


def code_for_status(status: int) -> str:
    """The generic error code of an HTTP status (``error`` for unlisted ones)."""
    return STATUS_CODES.get(status, "error")


def message_for_status(status: int) -> str:
    """The generic human message of an HTTP status."""
    return _STATUS_MESSAGES.get(status, "The request failed.")


def error_response(
    status: int, code: str | None = None, message: str | None = None, **extra: Any
) -> JsonResponse:
    """A JSON error response outside django-ninja (URL fallbacks, the middleware)."""
    body = {
        "code": code or code_for_status(status),
        "message": message or message_for_status(status),
        **extra,
    }
    response = JsonResponse(
        body,
        status=status,
        json_dumps_params={"ensure_ascii": False},
        # The same header as django-ninja's own answers.
        content_type="application/json; charset=utf-8",
    )
    if status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


def _field_error(error: dict[str, Any]) -> dict[str, str]:
    location, *path = list(error.get("loc") or ["body"])
    field = ""
    for part in path:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return {
        "location": str(location),
        "field": field or str(location),
        "message": str(error.get("msg", "invalid")),
        "type": str(error.get("type", "invalid")),
    }


def validation_error_body(errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Ninja's (pydantic's) error list as Patron's 422 body, naming each field."""
    field_errors = [_field_error(error) for error in errors]
    if field_errors:
        first = field_errors[0]
        message = f"{first['field']}: {first['message']}"
        if len(field_errors) > 1:
            message += f" (and {len(field_errors) - 1} more)"
    else:
        message = "The request is not valid."
    return {"code": STATUS_CODES[422], "message": message, "errors": field_errors}


#: How django-ninja's HttpError for a body it could not parse begins.
_NINJA_UNPARSABLE_BODY = "Cannot parse request body"


def json_body_problem(body: bytes) -> str:
    """What is wrong with a request body that should be JSON, for the client to fix."""
    try:
        json.loads(body)
    except UnicodeDecodeError:
        return "The body is not UTF-8 text: send JSON encoded as UTF-8."
    except json.JSONDecodeError as error:
        return (
            f"The body is not valid JSON: {error.msg} at line {error.lineno} column "
            f"{error.colno} (send Content-Type: application/json)."
        )
    return "The body could not be read as JSON."


def install_error_handlers(api: NinjaAPI) -> None:
    """Answer every exception raised in ``api`` with Patron's JSON error shape."""

    def respond(request: HttpRequest, status: int, body: dict[str, Any]) -> HttpResponse:
        response = api.create_response(request, body, status=status)
        if status == 401:
            response["WWW-Authenticate"] = "Bearer"
        return response

    @api.exception_handler(ApiError)
    def on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        response = respond(request, exc.status, exc.body())
        for header, value in exc.headers.items():
            response[header] = value
        return response

    @api.exception_handler(ValidationError)
    def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return respond(request, 422, validation_error_body(exc.errors))

    @api.exception_handler(AuthenticationError)
    def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return respond(request, 401, {"code": "unauthenticated", "message": _STATUS_MESSAGES[401]})

    @api.exception_handler(HttpError)
    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        status = exc.status_code
        if status == 400 and exc.message.startswith(_NINJA_UNPARSABLE_BODY):
            message = json_body_problem(request.body)
            return respond(request, 400, {"code": "invalid_json", "message": message})
        return respond(request, status, {"code": code_for_status(status), "message": exc.message})

    @api.exception_handler(Http404)
    def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, {"code": "not_found", "message": str(exc) or "Not found."})

    @api.exception_handler(PermissionDenied)
    def on_permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        message = str(exc) or _STATUS_MESSAGES[403]
        return respond(request, 403, {"code": "forbidden", "message": message})

    @api.exception_handler(Exception)
    def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        # The traceback goes to the log, never to the client.
        logger.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
        return respond(request, 500, {"code": "server_error", "message": _STATUS_MESSAGES[500]})
