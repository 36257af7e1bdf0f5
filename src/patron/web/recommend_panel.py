"""The recommendation panel of the customer page (its list, with reasons in the active
language)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patron.customers.models import Customer
from patron.recommend.reasons import reason_text
from patron.recommend.selectors import recommendations_for

RECOMMENDATIONS_SHOWN = 10


@dataclass(frozen=True)
class ShownRecommendation:
    """A recommendation on the customer page, its reason in the active language."""

    rank: int
    product_name: str
    product_id: str
    category: str
    reason: str
    reason_text: str


def customer_recommendations(customer: Customer) -> dict[str, Any]:
    """The customer page's recommendation panel: the list, how it was made, the run."""
    found = recommendations_for(customer, RECOMMENDATIONS_SHOWN)
    return {
        "run": found.run,
        "source": found.source,
        "items": [
            ShownRecommendation(
                rank=item.rank,
                product_name=item.product.name or item.product.external_id,
                product_id=item.product.external_id,
                category=item.product.category_path,
                reason=item.reason,
                reason_text=reason_text(
                    item.reason,
                    (item.reason_product.name or item.reason_product.external_id)
                    if item.reason_product
                    else None,
                ),
            )
            for item in found.items
        ],
    }
