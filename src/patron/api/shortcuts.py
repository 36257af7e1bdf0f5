"""Helpers several routers share, as ``django.shortcuts`` does for views: a record found by
the shop's id or a JSON 404, and a refused input as the API's 422 naming the field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from patron.api.errors import ApiError, validation_error_body
from patron.customers.models import Customer
from patron.customers.selectors import find_customer
from patron.loyalty.errors import LoyaltyInputError


def get_customer_or_404(external_id: str) -> Customer:
    """The customer whose external id is ``external_id``; a 404 ``customer_not_found``
    ``ApiError`` when there is none."""
    customer = find_customer(external_id)
    if customer is None:
        raise ApiError(404, "customer_not_found", f"No customer with external id {external_id!r}.")
    return customer


def invalid_request(errors: Iterable[tuple[str, str]], location: str = "body") -> ApiError:
    """A 422 ``invalid_request`` naming each ``(field, message)``: the same body as a request
    that fails the schema. An empty field names the ``location`` as a whole."""
    body = validation_error_body(
        [
            {"loc": [location, field], "msg": message, "type": "value_error"}
            for field, message in errors
        ]
    )
    return ApiError(422, body["code"], body["message"], errors=body["errors"])


def input_error(error: LoyaltyInputError, location: str = "body") -> ApiError:
    """The 422 answer to a loyalty action that refused its input, naming the field it named."""
    return invalid_request([(error.field, error.message)], location)


def model_validation_error(
    error: ValidationError, field_names: Mapping[str, str] | None = None
) -> ApiError:
    """The 422 answer to a model's ``full_clean`` refusal, naming each field as the request
    does (``field_names`` maps the model's names that differ, ``coupon_template`` to
    ``coupon_template_id``); an error of no one field names the body."""
    renamed = field_names or {}
    messages = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
    return invalid_request(
        ("" if field == NON_FIELD_ERRORS else renamed.get(field, field), message)
        for field, field_messages in messages.items()
        for message in field_messages
    )
