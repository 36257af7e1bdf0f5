"""Reading typed values from ``PATRON_*`` environment strings, with errors that name the
variable. Pure Python: ``patron.settings`` imports it before Django is set up."""

from __future__ import annotations

import re

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
_RATE_UNIT_SECONDS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
#: The values that switch a rate limit off.
RATE_OFF = frozenset({"off", "none", "0"})


def parse_flag(name: str, value: str | None, default: bool) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); ``default`` when unset."""
    if value is None:
        return default
    normalised = value.strip().lower()
    if normalised in _TRUE:
        return True
    if normalised in _FALSE:
        return False
    raise ValueError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), got {value!r}")


def parse_duration(name: str, value: str) -> int:
    """Seconds of a duration written ``90s``, ``15m``, ``2h`` or ``90d`` (bare numbers are
    seconds); at least one second."""
    match = _DURATION.match(value)
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            f"{name} must be a positive duration such as 90s, 15m, 2h or 90d, got {value!r}"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]


def parse_rate(name: str, value: str) -> tuple[int, int] | None:
    """``(requests, window seconds)`` of a rate written ``600/min``, ``10/s``, ``5000/h`` or
    ``100/5min``; ``None`` for ``off``."""
    if value.strip().lower() in RATE_OFF:
        return None
    match = _RATE.match(value.lower())
    if match is None or int(match.group(1)) < 1 or match.group(2) == "0":
        raise ValueError(
            f"{name} must be a rate such as 600/min, 10/s or 5000/h (or off), got {value!r}"
        )
    multiple = int(match.group(2) or "1")
    return int(match.group(1)), multiple * _RATE_UNIT_SECONDS[match.group(3)]
