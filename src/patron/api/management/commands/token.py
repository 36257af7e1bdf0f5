"""``patron token create|list|revoke``: manage the API's bearer tokens. Creating and revoking
one is a ``token_change`` audit event (the token's prefix, user, scopes and expiry)."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from patron.api.choices import ScopeChoices
from patron.api.tokens import (
    AmbiguousTokenPrefix,
    TokenNotFound,
    create_token,
    list_tokens,
    normalise_scopes,
    revoke_token,
)
from patron.core.envparse import parse_duration
from patron.privacy.audit import AuditActor, record
from patron.privacy.choices import AuditActionChoices

#: Who the audit log names for a token change made by this command.
COMMAND_ACTOR = AuditActor(label="command: patron token")


def _format_time(value: Any) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else "-"


class Command(BaseCommand):
    help = "Create, list and revoke API tokens (send them as `Authorization: Bearer TOKEN`)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = actions.add_parser("create", help="create a token and print it once")
        create.add_argument("--user", required=True, help="username the token acts as")
        create.add_argument("--name", default="", help="a label to recognise the token by")
        create.add_argument(
            "--scope",
            action="append",
            default=[],
            metavar="SCOPE",
            help=(
                "what the token may call, repeatable: read (every GET), ingest (/ingest/*), "
                "loyalty (enrol, earn, redeem, adjust, coupons), admin (programme set-up)"
            ),
        )
        expiry = create.add_mutually_exclusive_group()
        expiry.add_argument(
            "--expires-in", default=None, help="lifetime such as 90d, 12h or 30m (default never)"
        )
        expiry.add_argument(
            "--expires-days", type=int, default=None, help="days until it expires (default never)"
        )
        actions.add_parser("list", help="list tokens (prefix, user, name, scopes, status, times)")
        revoke = actions.add_parser("revoke", help="revoke a token")
        revoke.add_argument("prefix", help="the token's prefix as `token list` shows it")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "create":
            self._create(
                options["user"],
                options["name"],
                options["scope"],
                self._lifetime(options["expires_in"], options["expires_days"]),
            )
        elif action == "list":
            self._list()
        else:
            self._revoke(options["prefix"])

    def _lifetime(self, expires_in: str | None, expires_days: int | None) -> timedelta | None:
        if expires_days is not None:
            if expires_days < 1:
                raise CommandError(f"--expires-days must be 1 or more, got {expires_days}")
            return timedelta(days=expires_days)
        if expires_in is None:
            return None
        try:
            return timedelta(seconds=parse_duration("--expires-in", expires_in))
        except ValueError as error:
            raise CommandError(str(error)) from error

    def _create(
        self, username: str, name: str, scopes: list[str], lifetime: timedelta | None
    ) -> None:
        user_model = get_user_model()
        user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(
                f"no user named {username!r}: create one with `patron createsuperuser`"
            )
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive")
        if not scopes:
            raise CommandError(
                "give the token's scopes with --scope (repeatable): "
                f"{', '.join(ScopeChoices.values)}; e.g. --scope read --scope loyalty"
            )
        try:
            normalise_scopes(scopes)
        except ValueError as error:
            raise CommandError(f"--scope: {error}") from error
        expires_at = timezone.now() + lifetime if lifetime else None
        token, plaintext = create_token(user, name, expires_at, scopes=scopes)
        record(
            AuditActionChoices.TOKEN_CHANGE,
            actor=COMMAND_ACTOR,
            details={
                "change": "created",
                "token": token.key_prefix,
                "user": username,
                "scopes": token.scopes.split(),
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
        self.stdout.write(plaintext)
        # The hint goes to stderr so that `TOKEN=$(patron token create ...)` captures the
        # token alone.
        self.stderr.write(
            f"Token {token.key_prefix} for {username}, scopes {token.scopes.replace(' ', ',')} "
            f"(expires {_format_time(expires_at)}). "
            "Store it now: it is not shown again."
        )

    def _list(self) -> None:
        now = timezone.now()
        rows = [("PREFIX", "USER", "NAME", "SCOPES", "STATUS", "CREATED", "LAST USED", "EXPIRES")]
        for token in list_tokens():
            rows.append(
                (
                    token.key_prefix,
                    token.user.get_username(),
                    token.name or "-",
                    token.scopes.replace(" ", ",") or "-",
                    token.status_at(now),
                    _format_time(token.created_at),
                    _format_time(token.last_used_at),
                    _format_time(token.expires_at),
                )
            )
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
            self.stdout.write("  ".join(cells).rstrip())

    def _revoke(self, prefix: str) -> None:
        try:
            token = revoke_token(prefix)
        except (TokenNotFound, AmbiguousTokenPrefix) as error:
            raise CommandError(str(error)) from error
        record(
            AuditActionChoices.TOKEN_CHANGE,
            actor=COMMAND_ACTOR,
            details={
                "change": "revoked",
                "token": token.key_prefix,
                "user": token.user.get_username(),
            },
        )
        self.stdout.write(f"Revoked token {token.key_prefix} of {token.user.get_username()}.")
