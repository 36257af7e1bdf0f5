"""System check of ``PATRON_PII_KEYS``: a malformed key list stops ``patron serve``,
``patron migrate`` and every command at start, naming the entry to fix."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error

from patron.privacy.pii.keys import PiiKeyError, key_ring


def check_pii_keys(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """``patron.E001`` when ``PATRON_PII_KEYS`` cannot be parsed."""
    try:
        key_ring()
    except PiiKeyError as error:
        return [
            Error(
                str(error),
                hint="see docs/privacy.md, Encryption of personal data: Keys",
                id="patron.E001",
            )
        ]
    return []
