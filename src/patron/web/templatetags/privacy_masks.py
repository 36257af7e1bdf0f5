"""Template filters masking personal values on pages that list customers for analysis
(segment, CLV and churn lists): nobody needs a full name to read a list of scores."""

from __future__ import annotations

from django import template

from patron.privacy.pii.masking import mask_name

register = template.Library()


@register.filter
def masked_name(name: str | None) -> str:
    """``张伟`` → ``张*`` (blank stays blank)."""
    return mask_name(name or "")
