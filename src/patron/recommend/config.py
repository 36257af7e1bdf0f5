"""The settings of a training run (``patron recommend train`` options) and the serving rules
read from Django's settings."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class TrainingSettings:
    """How a training run reads, fits, evaluates and precomputes.

    The interaction weights and the 15-day half-life are those the engine's evaluation on
    Online Retail chose (docs/recommendations.md); ``active_days`` says which customers get a
    precomputed list: those with an order or event in the last N days, or (None, the
    default) every customer with one, so that serving computes lists only for customers
    without a history; ``list_length`` how long a list is,
    ``diversity`` the maximal marginal relevance weight (0 none, 1 only diversity). The
    evaluation trains on everything before the last ``test_days`` and tests on those days;
    ``max_evaluation_customers`` caps the customers it scores. Basket rules need
    ``min_support`` of the orders (and at least ``min_rule_orders`` orders), ``min_confidence``
    and ``min_lift``.
    """

    purchase_weight: float = 1.0
    cart_weight: float = 0.3
    view_weight: float = 0.1
    half_life_days: float | None = 15.0
    active_days: int | None = None
    list_length: int = 20
    diversity: float = 0.2
    neighbours: int = 20
    popular_products: int = 50
    evaluate: bool = True
    test_days: int = 30
    max_evaluation_customers: int | None = 2_000
    min_support: float = 0.001
    min_rule_orders: int = 3
    min_confidence: float = 0.05
    min_lift: float = 1.0

    def check(self) -> list[str]:
        """What is wrong with these settings, as messages naming the setting (none: fine)."""
        problems = []
        if self.half_life_days is not None and self.half_life_days <= 0:
            problems.append(f"half_life_days must be positive, got {self.half_life_days}")
        for name in ("active_days", "list_length", "neighbours", "popular_products", "test_days"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.diversity <= 1.0:
            problems.append(f"diversity must be between 0 and 1, got {self.diversity}")
        if not 0.0 < self.min_support <= 1.0:
            problems.append(f"min_support must be in (0, 1], got {self.min_support}")
        return problems


def repeat_purchase_categories() -> tuple[str, ...]:
    """Category paths whose products may be recommended again to a customer who bought them
    (consumables: tea, skin care ...): ``RECOMMEND_REPEAT_PURCHASE_CATEGORIES``, from
    ``PATRON_RECOMMEND_REPEAT_CATEGORIES``. A path covers its sub-categories."""
    return tuple(getattr(settings, "RECOMMEND_REPEAT_PURCHASE_CATEGORIES", ()))


def serving_diversity() -> float:
    """The MMR weight of lists computed at serving time (``RECOMMEND_DIVERSITY``)."""
    return float(getattr(settings, "RECOMMEND_DIVERSITY", 0.2))
