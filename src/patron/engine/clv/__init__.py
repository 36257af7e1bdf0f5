"""Customer lifetime value: BTYD summaries, transaction models (BG/NBD, MBG/NBD, Pareto/NBD),
the Gamma-Gamma spend model and the CLV they give together (docs/clv.md)."""

from patron.engine.clv.base import ModelFitError, ModelNotFittedError
from patron.engine.clv.beta_geo import BetaGeoModel
from patron.engine.clv.gamma_gamma import GammaGammaModel, customer_lifetime_value
from patron.engine.clv.modified_beta_geo import ModifiedBetaGeoModel
from patron.engine.clv.pareto_nbd import ParetoNBDModel
from patron.engine.clv.summary import rfm_summary

__all__ = [
    "BetaGeoModel",
    "GammaGammaModel",
    "ModelFitError",
    "ModelNotFittedError",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "customer_lifetime_value",
    "rfm_summary",
]
