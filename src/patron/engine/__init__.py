"""Pure analytics on dataframes: no Django, no Patron app.

Functions take a Polars DataFrame or LazyFrame or a PySpark DataFrame (anything Narwhals
reads) and return the same kind; see docs/analytics.md for the input columns and every
definition.
"""

from patron.engine.ahp import AHPResult, InconsistentMatrixError, ahp_weights, value_scores
from patron.engine.cohorts import cohort_retention, cohort_revenue
from patron.engine.frames import EngineInputError, order_summary
from patron.engine.kpis import inter_purchase_distribution, kpi_trend, loyalty_kpis
from patron.engine.lifecycle import (
    LifecycleThresholds,
    inter_purchase_gaps,
    lifecycle_stages,
    lifecycle_thresholds,
)
from patron.engine.rfm import rfm_table
from patron.engine.segments import BehaviourSegmentation, behaviour_features, behaviour_segments

__all__ = [
    "AHPResult",
    "BehaviourSegmentation",
    "EngineInputError",
    "InconsistentMatrixError",
    "LifecycleThresholds",
    "ahp_weights",
    "behaviour_features",
    "behaviour_segments",
    "cohort_retention",
    "cohort_revenue",
    "inter_purchase_distribution",
    "inter_purchase_gaps",
    "kpi_trend",
    "lifecycle_stages",
    "lifecycle_thresholds",
    "loyalty_kpis",
    "order_summary",
    "rfm_table",
    "value_scores",
]
