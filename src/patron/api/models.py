"""API tokens: machine credentials for the REST API."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from patron.api.choices import ScopeChoices, TokenHashChoices


class ApiToken(models.Model):
    """A bearer token that lets a machine call the API as ``user``.

    The token itself is shown once, when it is created, and never stored: only its keyed hash
    (HMAC-SHA256 under the token key, ``key_hash``) is kept, so a copy of the database neither
    leaks working credentials nor lets anyone test guesses without the key. ``key_prefix``
    (the token's first 8 characters) lets people tell tokens apart in lists. ``scopes`` (a
    space-separated set of :class:`ScopeChoices`) says which endpoints the token may call; it
    is read with the token's row, so checking it costs no query.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(_("name"), max_length=100, blank=True)
    key_prefix = models.CharField(_("key prefix"), max_length=8, db_index=True)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True)
    hash_scheme = models.CharField(
        _("hash scheme"),
        max_length=16,
        choices=TokenHashChoices,
        default=TokenHashChoices.HMAC_SHA256,
    )
    scopes = models.CharField(_("scopes"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.key_prefix}… ({self.name or self.user})"

    def status_at(self, now: datetime) -> str:
        """``revoked``, ``expired`` or ``active`` at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    @property
    def scope_set(self) -> frozenset[str]:
        """The token's scopes."""
        return frozenset(self.scopes.split())

    def has_scope(self, scope: ScopeChoices | str) -> bool:
        """Whether the token may call endpoints that need ``scope``."""
        return str(scope) in self.scopes.split()


class LoginFailure(models.Model):
    """A failed sign-in to the dashboard or the admin: the username as typed (case-folded), the
    client's address and when. Enough of them within the window lock that username (or that
    address) out for a while; a successful sign-in deletes the username's rows. Kept in the
    database rather than the cache so that every server process sees the same count.
    """

    username = models.CharField(_("username"), max_length=150)
    address = models.GenericIPAddressField(_("address"), null=True, blank=True)
    attempted_at = models.DateTimeField(_("attempted at"))

    class Meta:
        verbose_name = _("failed sign-in")
        verbose_name_plural = _("failed sign-ins")
        indexes = [
            models.Index(fields=["username", "attempted_at"], name="login_failure_username"),
            models.Index(fields=["address", "attempted_at"], name="login_failure_address"),
            models.Index(fields=["attempted_at"], name="login_failure_attempted"),
        ]

    def __str__(self) -> str:
        return f"{self.username} from {self.address or '?'} at {self.attempted_at:%Y-%m-%d %H:%M}"


class IdempotentRequest(models.Model):
    """A write request sent with an ``Idempotency-Key`` header, and the answer it got.

    A client that did not hear back retries with the same key: the same request (method, path
    and body) gets the stored answer again instead of being applied twice; another request
    with a key already used is refused (409). Keys are scoped to the credential that sent them
    (the token's hash, or the staff session's user), so two clients never collide.
    ``status`` is null while the first request is still being processed.
    """

    scope = models.CharField(_("credential"), max_length=80)
    key = models.CharField(_("idempotency key"), max_length=255)
    method = models.CharField(_("method"), max_length=8)
    path = models.CharField(_("path"), max_length=500)
    body_sha256 = models.CharField(_("body SHA-256"), max_length=64)
    status = models.PositiveSmallIntegerField(_("response status"), null=True, blank=True)
    response_body = models.BinaryField(_("response body"), blank=True, default=b"")
    content_type = models.CharField(_("response content type"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("idempotent request")
        verbose_name_plural = _("idempotent requests")
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="idempotent_request_unique_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotent_request_created")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}]"
