"""Request bodies refused with clear errors: unknown fields, oversize bodies.

- :func:`forbid_unknown_fields` makes every JSON body schema of a router refuse fields it does
  not define (``422 invalid_request`` naming ``body.colour: Extra inputs are not permitted``),
  so that a misspelt optional field is an error rather than silently ignored.
- :func:`document_unreadable_bodies` lists that ``400 invalid_json`` (a body that is not
  JSON) among the documented answers of every operation with a JSON body.
- :class:`RequestBodyLimitMiddleware` answers a body larger than
  ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``PATRON_MAX_BODY_BYTES``) under ``/api/`` with
  ``413 payload_too_large`` naming both sizes, before anything reads it.

Malformed JSON is answered by the error handlers (``patron.api.errors``).
"""

from __future__ import annotations

import typing
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from ninja import Router, Schema
from pydantic import BaseModel

from patron.api.errors import ErrorOut, error_response

API_PATH_PREFIX = "/api/"


def _nested_models(annotation: object) -> list[type[BaseModel]]:
    """The pydantic models in an annotation (``Model``, ``list[Model]``, ``Model | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for argument in typing.get_args(annotation) for model in _nested_models(argument)]


def _forbid_extra(model: type[BaseModel], done: set[type[BaseModel]]) -> None:
    """Refuse unknown fields in ``model`` and the models inside it (inner ones first, so that
    each rebuilt validator embeds the strict inner one)."""
    if model in done:
        return
    done.add(model)
    for field in model.model_fields.values():
        for inner in _nested_models(field.annotation):
            _forbid_extra(inner, done)
    if model.model_config.get("extra") is None:
        model.model_config["extra"] = "forbid"
    model.model_rebuild(force=True)


def forbid_unknown_fields(router: Router) -> None:
    """Make the JSON body schemas of every operation of ``router`` refuse unknown fields
    (a schema that sets ``extra`` itself keeps its choice)."""
    done: set[type[BaseModel]] = set()
    for path_view in router.path_operations.values():
        for operation in path_view.operations:
            for param_model in operation.models:
                if param_model.__ninja_param_source__ != "body":
                    continue
                for field in param_model.model_fields.values():
                    for body_model in _nested_models(field.annotation):
                        _forbid_extra(body_model, done)
                param_model.model_rebuild(force=True)


def document_unreadable_bodies(router: Router) -> None:
    """Add ``400`` (:class:`ErrorOut`: ``invalid_json``, what the error handlers answer to a
    body that is not JSON) to the documented responses of every operation of ``router`` that
    reads a JSON body, unless it documents a 400 itself."""
    # The wrapper django-ninja makes of each ``response={status: schema}`` entry.
    error_model = type(
        "NinjaResponseSchema", (Schema,), {"__annotations__": {"response": ErrorOut}}
    )
    for path_view in router.path_operations.values():
        for operation in path_view.operations:
            if any(model.__ninja_param_source__ == "body" for model in operation.models):
                operation.response_models.setdefault(400, error_model)


class RequestBodyLimitMiddleware:
    """``413 payload_too_large`` for an API request whose ``Content-Length`` is over the limit
    (Django would only say 400 once something read the body)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        limit: int | None = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and request.path.startswith(API_PATH_PREFIX):
            length = request.META.get("CONTENT_LENGTH") or "0"
            if length.isdigit() and int(length) > limit:
                return error_response(
                    413,
                    "payload_too_large",
                    f"The request body is {int(length):,} bytes; the API accepts at most "
                    f"{limit:,} (PATRON_MAX_BODY_BYTES). Send fewer records per call.",
                )
        return self.get_response(request)
