"""Deploy checks of the API's hardening (``patron check --deploy``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Info, Tags, Warning, register

#: The shortest PATRON_TOKEN_KEY accepted without a warning (256 bits of base64 is 43).
MIN_TOKEN_KEY_LENGTH = 32


@register(Tags.security, deploy=True)
def check_api_hardening(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A short token key is a warning; rate limits counted per process are worth knowing."""
    messages: list[CheckMessage] = []
    token_key: str = settings.API_TOKEN_KEY
    if token_key and len(token_key) < MIN_TOKEN_KEY_LENGTH:
        messages.append(
            Warning(
                f"PATRON_TOKEN_KEY is {len(token_key)} characters long; API token hashes "
                f"need a key of at least {MIN_TOKEN_KEY_LENGTH} random characters.",
                hint="python -c 'import secrets; print(secrets.token_urlsafe(32))'",
                id="patron.api.W001",
            )
        )
    backend = settings.CACHES["default"]["BACKEND"]
    if backend.endswith("LocMemCache") and (
        settings.API_RATE_LIMIT is not None or settings.API_ANONYMOUS_RATE_LIMIT is not None
    ):
        messages.append(
            Info(
                "API rate limits are counted in local memory, per server process: with N "
                "workers a client may make up to N times a limit.",
                hint="Set PATRON_REDIS_URL to share the counts (docs/operations.md).",
                id="patron.api.I001",
            )
        )
    return messages
