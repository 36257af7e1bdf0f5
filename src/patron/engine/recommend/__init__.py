"""Recommendations and market baskets (docs/recommendations.md).

Interactions from events (:func:`build_interactions`), recommenders behind one interface
(:class:`Recommender`: ``fit``, ``recommend``, ``similar_items``), frequently bought together
(:func:`fpgrowth`, :func:`association_rules`) and an offline evaluation on a temporal split
(:func:`temporal_holdout`, :func:`evaluate_recommenders`). No Django here: the ``recommend``
app feeds these tables and stores what they return.
"""

from patron.engine.recommend.base import (
    NotFittedError,
    ReasonChoices,
    Recommender,
    cooccurrence_similarity,
)
from patron.engine.recommend.baskets import association_rules, bought_together, fpgrowth
from patron.engine.recommend.content import ContentRecommender, tokenize
from patron.engine.recommend.diversity import mmr_rerank
from patron.engine.recommend.ease import EASERecommender
from patron.engine.recommend.evaluation import (
    METRIC_COLUMNS,
    evaluate_recommenders,
    ranking_metrics,
    temporal_holdout,
)
from patron.engine.recommend.hybrid import HybridRecommender, default_components
from patron.engine.recommend.interactions import (
    DEFAULT_KIND_WEIGHTS,
    Holdout,
    Interactions,
    InteractionWeighting,
    build_interactions,
    day_of,
    holdout,
)
from patron.engine.recommend.item_knn import ItemKNNRecommender
from patron.engine.recommend.matrix_factorization import ALSRecommender, BPRRecommender
from patron.engine.recommend.popularity import PopularityRecommender

__all__ = [
    "DEFAULT_KIND_WEIGHTS",
    "METRIC_COLUMNS",
    "ALSRecommender",
    "BPRRecommender",
    "ContentRecommender",
    "EASERecommender",
    "Holdout",
    "HybridRecommender",
    "InteractionWeighting",
    "Interactions",
    "ItemKNNRecommender",
    "NotFittedError",
    "PopularityRecommender",
    "ReasonChoices",
    "Recommender",
    "association_rules",
    "bought_together",
    "build_interactions",
    "cooccurrence_similarity",
    "day_of",
    "default_components",
    "evaluate_recommenders",
    "fpgrowth",
    "holdout",
    "mmr_rerank",
    "ranking_metrics",
    "temporal_holdout",
    "tokenize",
]
