"""A recommendation's reason in words, in the active language ("Because you bought 龙井茶")."""

from __future__ import annotations

from django.utils.translation import gettext

from patron.recommend.choices import ReasonChoices


def reason_text(reason: str, product_name: str | None = None) -> str:
    """The reason code ``reason`` in the active language, naming ``product_name`` where the
    reason points at a product (a reason that should name one but has none reads as the
    general form)."""
    if reason == ReasonChoices.BECAUSE_YOU_BOUGHT:
        if product_name:
            return gettext("Because you bought %(product)s") % {"product": product_name}
        return gettext("Because of what you bought")
    if reason == ReasonChoices.OFTEN_BOUGHT_WITH:
        if product_name:
            return gettext("Often bought with %(product)s") % {"product": product_name}
        return gettext("Often bought together")
    if reason == ReasonChoices.SIMILAR_TO:
        if product_name:
            return gettext("Similar to %(product)s") % {"product": product_name}
        return gettext("Similar products")
    if reason == ReasonChoices.POPULAR_IN_SEGMENT:
        return gettext("Popular with customers like you")
    return gettext("Popular right now")
