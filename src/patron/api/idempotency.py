"""``Idempotency-Key``: a write retried with the same key is answered, not applied, again.

Networks drop answers: a shop's system that sent "order paid" or "redeem 500 points" and heard
nothing back must be able to send it again without the points moving twice. Every write under
``/api/`` (POST, PUT, PATCH, DELETE) may carry an ``Idempotency-Key`` header (1 to 255
printable ASCII characters, a UUID is usual):

- the first request with a key is processed and its answer kept (2xx and 4xx answers; a 5xx
  is not kept, so that the retry runs again);
- the same request again (same method, path and body, same credential) gets the kept answer,
  marked ``Idempotent-Replayed: true``;
- another request with a key already used gets ``409 idempotency_key_reused``;
- a retry that arrives while the first is still running waits for it and gets its answer
  (the key's record commits with the write); a record left without an answer (written by an
  older version) gets ``409 idempotency_key_in_use``.

Keys are scoped to the credential (the bearer token's hash, or the session's user), so that
two clients choosing the same key never see each other's answers. A key's answer is kept for
``PATRON_IDEMPOTENCY_KEEP`` (24 hours by default, as payment APIs do): kept answers may name
customers, so each process deletes the expired ones at most every
:data:`PRUNE_EVERY_SECONDS` as it answers writes, and a key reused after it expired is a new
request. Endpoints whose effects must
never be doubled call :func:`require_idempotency_key`, which refuses a write without one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone

from patron.api.errors import ApiError, error_response
from patron.api.models import IdempotentRequest
from patron.api.tokens import hash_token
from patron.core.sql import insert, quote

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PATH_PREFIX = "/api/"
#: How often one process deletes expired answers (a DELETE on the ``created_at`` index).
PRUNE_EVERY_SECONDS = 600

_last_prune = 0.0
_prune_lock = threading.Lock()


def keep_until_cutoff(now: dt.datetime | None = None) -> dt.datetime:
    """Answers kept since before this moment have expired."""
    return (now or timezone.now()) - dt.timedelta(seconds=settings.IDEMPOTENCY_KEEP_SECONDS)


def prune_kept_answers(now: dt.datetime | None = None) -> int:
    """Delete the keys and kept answers older than ``PATRON_IDEMPOTENCY_KEEP``; the number
    deleted."""
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=keep_until_cutoff(now)).delete()
    return deleted


def _prune_now_and_then() -> None:
    """:func:`prune_kept_answers` when this process has not for :data:`PRUNE_EVERY_SECONDS`
    (one thread at a time; the others go on)."""
    global _last_prune
    if time.monotonic() - _last_prune < PRUNE_EVERY_SECONDS:
        return
    if not _prune_lock.acquire(blocking=False):
        return
    try:
        _last_prune = time.monotonic()
        prune_kept_answers()
    finally:
        _prune_lock.release()


def idempotency_key(request: HttpRequest) -> str | None:
    """The request's ``Idempotency-Key``, or None when it sent none."""
    return request.headers.get(HEADER)


def require_idempotency_key(request: HttpRequest) -> str:
    """The request's key; raises a 422 ``ApiError`` naming the header when it is missing."""
    key = idempotency_key(request)
    if not key:
        raise ApiError(
            422,
            "idempotency_key_required",
            f"This request changes balances: send an {HEADER} header (a UUID, say) so that a "
            "retry is not applied twice.",
        )
    return key


def _key_problem(key: str) -> str | None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        return f"{HEADER} must be 1 to {MAX_KEY_LENGTH} characters long, not {len(key)}."
    if not all(" " <= character <= "~" for character in key):
        return f"{HEADER} must be printable ASCII characters."
    return None


def _scope(request: HttpRequest) -> str | None:
    """Who sent the request: the token's hash or the session's user; None if neither."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "bearer" and credential.strip():
        # The token's keyed hash, as ApiToken stores it: no unkeyed hash of a token is kept.
        return "token:" + hash_token(credential.strip())
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


def _keep_answer(record_pk: int, response: HttpResponseBase) -> None:
    """Store the answer on the key's record, to be replayed to a retry."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote(IdempotentRequest._meta.db_table)} "
            f"SET {quote('status')} = %s, {quote('response_body')} = %s, "
            f"{quote('content_type')} = %s WHERE {quote('id')} = %s",
            [
                response.status_code,
                bytes(getattr(response, "content", b"")),
                response.get("Content-Type", ""),
                record_pk,
            ],
        )


def _replay(record: IdempotentRequest) -> HttpResponse:
    response = HttpResponse(
        bytes(record.response_body), status=record.status, content_type=record.content_type
    )
    response[REPLAYED_HEADER] = "true"
    return response


class IdempotencyKeyMiddleware:
    """Applies :mod:`patron.api.idempotency` to the writes under ``/api/`` (see there)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        key = idempotency_key(request)
        if (
            key is None
            or request.method not in WRITE_METHODS
            or not request.path.startswith(API_PATH_PREFIX)
        ):
            return self.get_response(request)
        problem = _key_problem(key)
        if problem is not None:
            return error_response(422, "invalid_idempotency_key", problem)
        scope = _scope(request)
        if scope is None:
            # Nobody to scope the key to: authentication will refuse the request anyway.
            return self.get_response(request)
        fingerprint = hashlib.sha256(request.body).hexdigest()
        _prune_now_and_then()
        # The key's record, the write and its answer commit together (one commit, not three):
        # a retry racing the first waits on the key's unique index until the first is
        # answered and then gets that answer; a failed write leaves no record behind.
        try:
            with transaction.atomic():
                # Hand-written SQL (patron.core.sql): this runs around every API write.
                (record,) = insert(
                    [
                        IdempotentRequest(
                            scope=scope,
                            key=key,
                            method=request.method or "",
                            path=request.path,
                            body_sha256=fingerprint,
                        )
                    ]
                )
                response = self.get_response(request)
                if response.status_code >= 500 or response.status_code in (401, 403):
                    # Not an answer to keep: the retry must run again (or authenticate first).
                    transaction.set_rollback(True)
                    return response
                _keep_answer(record.pk, response)
                return response
        except IntegrityError:
            return self._answer_repeat(request, scope, key, fingerprint)

    def _answer_repeat(
        self, request: HttpRequest, scope: str, key: str, fingerprint: str
    ) -> HttpResponseBase:
        record = IdempotentRequest.objects.filter(scope=scope, key=key).first()
        if record is not None and record.created_at < keep_until_cutoff():
            # Expired (not pruned yet): the key is free again.
            IdempotentRequest.objects.filter(pk=record.pk).delete()
            record = None
        if record is None:
            # The first request failed and released the key in between: run this one.
            return self.__call__(request)
        same = (record.method, record.path, record.body_sha256) == (
            request.method,
            request.path,
            fingerprint,
        )
        if not same:
            return error_response(
                409,
                "idempotency_key_reused",
                f"{HEADER} {key!r} was already used for another request "
                f"({record.method} {record.path} with another body); use a new key for a new "
                "request.",
            )
        if record.status is None:
            return error_response(
                409,
                "idempotency_key_in_use",
                f"A request with {HEADER} {key!r} is still being processed; retry in a moment.",
            )
        return _replay(record)
