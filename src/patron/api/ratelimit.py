"""Rate limits of the API: per token (or staff user) and per client address.

Fixed windows counted in Django's cache: local memory by default (per server process, so with
N server workers a client may make up to N times the limit), Redis when ``PATRON_CACHE_URL``
or ``PATRON_REDIS_URL`` is set (shared by every process and server). A count is one cache
increment (no database query), microseconds on local memory.

- ``PATRON_API_RATE_LIMIT`` (default ``6000/min``) counts every call a token or a staff
  session makes; the authentication step checks it (:func:`check_credential_rate`).
- ``PATRON_API_ANONYMOUS_RATE_LIMIT`` (default ``120/min``) counts, per client address, the
  calls under ``/api/`` that end without a credential (no token, a wrong, revoked or expired
  one, the public schema and docs, unknown URLs); once over it, the address is refused
  everything under ``/api/`` until the window ends (:class:`AddressRateLimitMiddleware`).

Over a limit the answer is ``429 {"code": "throttled", "message": ...}`` with ``Retry-After``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponseBase

from patron.api.errors import ApiError, error_response
from patron.core.security import client_address

API_PATH_PREFIX = "/api/"
_UNITS = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


def _window_key(key: str, window: int, now: float) -> str:
    return f"patron:rl:{key}:{window}:{int(now // window)}"


def _retry_after(window: int, now: float) -> int:
    return max(1, math.ceil(window - now % window))


def count_request(key: str, limit: tuple[int, int], *, now: float | None = None) -> int | None:
    """Count one request against ``limit`` (requests, window seconds) for ``key``; the seconds
    to wait when that makes it over the limit, else ``None``."""
    requests, window = limit
    now = time.time() if now is None else now
    cache_key = _window_key(key, window, now)
    # incr first: once the window's counter exists (every request but its first) that is one
    # atomic cache operation. The window's first request creates it with add (atomic too);
    # of two first requests, the one whose add loses increments.
    try:
        count = cache.incr(cache_key)
    except ValueError:
        count = 1 if cache.add(cache_key, 1, timeout=window + 1) else cache.incr(cache_key)
    return _retry_after(window, now) if count > requests else None


def is_over(key: str, limit: tuple[int, int], *, now: float | None = None) -> int | None:
    """Without counting: the seconds to wait if ``key`` has used up ``limit``, else ``None``."""
    requests, window = limit
    now = time.time() if now is None else now
    count = cache.get(_window_key(key, window, now), 0)
    return _retry_after(window, now) if count >= requests else None


def describe_rate(limit: tuple[int, int]) -> str:
    """``600 requests per minute``, ``100 requests per 300 seconds``."""
    requests, window = limit
    unit = _UNITS.get(window, f"{window} seconds")
    return f"{requests} requests per {unit}"


def throttled(who: str, limit: tuple[int, int], retry_after: int) -> ApiError:
    """The 429 error for ``who`` (``this token``) over ``limit``."""
    return ApiError(
        429,
        "throttled",
        f"Too many requests: {who} may make {describe_rate(limit)}. Retry after {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
        retry_after=retry_after,
    )


def check_credential_rate(kind: str, identifier: object) -> None:
    """Count a call of a token (``kind`` ``token``) or staff user (``user``); raise the 429
    ``ApiError`` when it is over ``PATRON_API_RATE_LIMIT``."""
    limit: tuple[int, int] | None = settings.API_RATE_LIMIT
    if limit is None:
        return
    retry_after = count_request(f"{kind}:{identifier}", limit)
    if retry_after is not None:
        raise throttled("this token" if kind == "token" else "this user", limit, retry_after)


class AddressRateLimitMiddleware:
    """Limits the calls under ``/api/`` that end without a credential, per client address.

    An address over ``PATRON_API_ANONYMOUS_RATE_LIMIT`` is refused everything under ``/api/``
    (valid tokens included) until its window ends: guessing tokens costs the guesser, not the
    server. Calls that authenticate (ninja sets ``request.auth``) are not counted here.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        limit: tuple[int, int] | None = settings.API_ANONYMOUS_RATE_LIMIT
        if limit is None or not request.path.startswith(API_PATH_PREFIX):
            return self.get_response(request)
        key = f"address:{client_address(request)}"
        retry_after = is_over(key, limit)
        if retry_after is not None:
            error = throttled("an address without a valid credential", limit, retry_after)
            refusal = error_response(error.status, error.code, error.message, **error.extra)
            refusal["Retry-After"] = str(retry_after)
            return refusal
        response = self.get_response(request)
        if getattr(request, "auth", None) is None and response.status_code != 429:
            count_request(key, limit)
        return response
