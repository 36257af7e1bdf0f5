"""Churn risk: features of a snapshot, labels, and a calibrated, time-split gradient-boosting
model with per-customer reasons in English and Chinese (docs/churn.md)."""

from patron.engine.churn.features import churn_features, churn_labels
from patron.engine.churn.model import ChurnModel, ChurnModelError

__all__ = ["ChurnModel", "ChurnModelError", "churn_features", "churn_labels"]
