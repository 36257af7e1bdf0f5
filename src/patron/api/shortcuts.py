"""Helpers several routers share, as ``django.shortcuts`` does for views: a record found by
the shop's id or a JSON 404, and a domain input error as the API's 422."""

from __future__ import annotations

from patron.api.errors import ApiError, validation_error_body
from patron.customers.models import Customer
from patron.loyalty.errors import LoyaltyInputError


def get_customer_or_404(external_id: str) -> Customer:
    """The customer whose external id is ``external_id``; a 404 ``customer_not_found``
    ``ApiError`` when there is none."""
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        raise ApiError(404, "customer_not_found", f"No customer with external id {external_id!r}.")
    return customer


def input_error(error: LoyaltyInputError, location: str = "body") -> ApiError:
    """The 422 answer to a loyalty action that refused its input: the same body as a request
    that fails the schema, naming the field the action named."""
    body = validation_error_body(
        [{"loc": [location, error.field], "msg": error.message, "type": "value_error"}]
    )
    return ApiError(422, body["code"], body["message"], errors=body["errors"])
