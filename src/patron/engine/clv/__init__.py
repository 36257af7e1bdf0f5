"""Customer lifetime value: BTYD summaries, transaction models (BG/NBD, MBG/NBD, Pareto/NBD),
the Gamma-Gamma spend model, the CLV they give together, fit diagnostics and the next purchase
date (docs/clv.md)."""

from patron.engine.clv.base import ModelFitError, ModelNotFittedError
from patron.engine.clv.beta_geo import BetaGeoModel
from patron.engine.clv.diagnostics import (
    conditional_expectations,
    cumulative_tracking,
    frequency_histogram,
    probability_of_purchases,
)
from patron.engine.clv.gamma_gamma import GammaGammaModel, customer_lifetime_value
from patron.engine.clv.modified_beta_geo import ModifiedBetaGeoModel
from patron.engine.clv.next_purchase import next_purchase
from patron.engine.clv.pareto_nbd import ParetoNBDModel
from patron.engine.clv.summary import rfm_summary

__all__ = [
    "BetaGeoModel",
    "GammaGammaModel",
    "ModelFitError",
    "ModelNotFittedError",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "conditional_expectations",
    "cumulative_tracking",
    "customer_lifetime_value",
    "frequency_histogram",
    "next_purchase",
    "probability_of_purchases",
    "rfm_summary",
]
