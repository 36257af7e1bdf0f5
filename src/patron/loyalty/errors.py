"""Errors of the loyalty actions. Each names what was wrong; the API maps them to HTTP codes
(input errors to 400/422, unknown member to 404, short balance and idempotency conflicts to 409).
"""

from __future__ import annotations


class LoyaltyError(Exception):
    """Base class of the loyalty app's errors; ``code`` is a stable machine-readable name."""

    code = "loyalty_error"


class LoyaltyInputError(LoyaltyError, ValueError):
    """Bad input to a loyalty action or configuration; ``field`` names the culprit."""

    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class MemberNotFoundError(LoyaltyError, LookupError):
    """No member of the programme for this customer."""

    code = "member_not_found"


class InsufficientPointsError(LoyaltyError):
    """A redemption or negative adjustment asked for more points than are available (409)."""

    code = "insufficient_points"

    def __init__(self, requested: int, available: int) -> None:
        self.requested = requested
        self.available = available
        super().__init__(
            f"insufficient points: {requested} requested but only {available} available"
        )


class IdempotencyConflictError(LoyaltyError):
    """An idempotency key was used before for a different request (409)."""

    code = "idempotency_conflict"

    def __init__(self, idempotency_key: str, detail: str = "") -> None:
        self.idempotency_key = idempotency_key
        super().__init__(
            f"idempotency key {idempotency_key!r} was already used for a different request"
            + (f" ({detail})" if detail else "")
        )
