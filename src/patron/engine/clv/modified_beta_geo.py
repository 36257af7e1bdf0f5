"""MBG/NBD: the BG/NBD with a chance of dropping out right after the first purchase too.

Batislam, E. P., Denizel, M. and Filiztekin, A. (2007), "Empirical validation and comparison
of models for customer base analysis", International Journal of Research in Marketing 24(3),
201-209 (the MBG/NBD model, their eqs. for the likelihood, P(alive) and the conditional
expectation); the same model as lifetimes' ``ModifiedBetaGeoFitter``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.special import digamma, expit, gammaln, hyp2f1

from patron.engine.clv.base import (
    Columns,
    FloatArray,
    LikelihoodModel,
    check_recency_within_T,
    horizon,
)


class ModifiedBetaGeoModel(LikelihoodModel):
    r"""MBG/NBD transaction model (Batislam, Denizel & Filiztekin 2007).

    As BG/NBD (purchase rate :math:`\lambda \sim \Gamma(r, \alpha)`, drop-out probability
    :math:`p \sim B(a, b)`), but a customer may also drop out at time 0, right after the first
    purchase: a customer without a repeat purchase is not certainly alive, which removes the
    BG/NBD's ``P(alive) = 1`` for them. Customer columns ``frequency`` (x), ``recency``
    (:math:`t_x`), ``T``.

    The likelihood of one customer is

    .. math::

        L = \frac{\Gamma(r + x) \alpha^r}{\Gamma(r)}
            \frac{B(a, b + x + 1)}{B(a, b)}
            \left[\frac{1}{(\alpha + T)^{r + x}}
                  + \frac{a}{b + x} \frac{1}{(\alpha + t_x)^{r + x}}\right],

    evaluated as log-gamma terms and a log-sum-exp. Parameters: ``r, alpha, a, b``.

    Parameters: see :class:`~patron.engine.clv.base.LikelihoodModel`.
    """

    parameter_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    required_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    default_initial_params: ClassVar[tuple[float, ...]] = (1.0, 1.0, 1.0, 1.0)
    model_name: ClassVar[str] = "MBG/NBD"

    def _check_columns(self, columns: Columns) -> None:
        check_recency_within_T(columns, self.model_name)

    def _log_likelihood_terms(
        self, params: FloatArray, columns: Columns
    ) -> tuple[FloatArray, FloatArray]:
        r, alpha, a, b = params
        x, t_x, big_t = columns["frequency"], columns["recency"], columns["T"]
        log_alpha_t = np.log(alpha + big_t)
        log_alpha_tx = np.log(alpha + t_x)
        # log of the dropout term over the end term: a / (b + x) ((alpha + T) / (alpha + t_x))^(r+x)
        log_ratio = np.log(a) - np.log(b + x) + (r + x) * (log_alpha_t - log_alpha_tx)
        terms = (
            gammaln(r + x)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(a + b)
            + gammaln(b + x + 1.0)
            - gammaln(b)
            - gammaln(a + b + x + 1.0)
            - (r + x) * log_alpha_t
            + np.logaddexp(0.0, log_ratio)
        )
        # Share of the dropout term in the bracket: d log(1 + e^u) / du.
        share = expit(log_ratio)
        psi_ab = digamma(a + b)
        psi_abx = digamma(a + b + x + 1.0)
        d_r = (
            digamma(r + x)
            - digamma(r)
            + np.log(alpha)
            - log_alpha_t
            + share * (log_alpha_t - log_alpha_tx)
        )
        d_alpha = (
            r / alpha
            - (r + x) / (alpha + big_t)
            + share * (r + x) * (1.0 / (alpha + big_t) - 1.0 / (alpha + t_x))
        )
        d_a = psi_ab - psi_abx + share / a
        d_b = psi_ab + digamma(b + x + 1.0) - digamma(b) - psi_abx - share / (b + x)
        return terms, np.stack([d_r, d_alpha, d_a, d_b])

    def p_alive(self, data: Any) -> FloatArray:
        r"""Probability that each customer is alive at T.

        .. math::

            P(\text{alive}) = 1 \Big/ \left(1 + \frac{a}{b + x}
                \left(\frac{\alpha + T}{\alpha + t_x}\right)^{r + x}\right)

        Below 1 also for customers without a repeat purchase.
        """
        r, alpha, a, b = self.fitted_params()
        return _mbg_p_alive(r, alpha, a, b, self.columns(data))

    def expected_purchases(self, t: Any, data: Any) -> FloatArray:
        r"""Expected purchases of each customer in the next ``t`` time units.

        .. math::

            E[Y(t) \mid x, t_x, T] = \frac{a + b + x}{a - 1}
                \left[1 - \left(\frac{\alpha + T}{\alpha + T + t}\right)^{r + x}
                {}_2F_1\!\left(r + x, b + x + 1; a + b + x; \frac{t}{\alpha + T + t}\right)
                \right] P(\text{alive})

        The power times the hypergeometric function is computed through Euler's
        transformation as :math:`(1 - z)^{a - 1} {}_2F_1(a + b - r, a - 1; a + b + x; z)`,
        :math:`z = t / (\alpha + T + t)`, finite for customers with thousands of purchases.
        """
        r, alpha, a, b = self.fitted_params()
        columns = self.columns(data)
        t_values = horizon(t, self.model_name)
        x, big_t = columns["frequency"], columns["T"]
        z = t_values / (alpha + big_t + t_values)
        scaled = (1.0 - z) ** (a - 1.0) * hyp2f1(a + b - r, a - 1.0, a + b + x, z)
        expected = (a + b + x) / (a - 1.0) * (1.0 - scaled)
        return np.asarray(expected * _mbg_p_alive(r, alpha, a, b, columns), dtype=np.float64)

    def expected_purchases_new_customer(self, t: Any) -> FloatArray:
        r"""Expected repeat purchases in ``(0, t]`` of a customer just acquired.

        .. math::

            E[X(t)] = \frac{b}{a - 1} \left[1 - \left(\frac{\alpha}{\alpha + t}\right)^r
                {}_2F_1\!\left(r, b + 1; a + b; \frac{t}{\alpha + t}\right)\right]

        (power and hypergeometric joined by Euler's transformation as above).
        """
        r, alpha, a, b = self.fitted_params()
        t_values = horizon(t, self.model_name)
        z = t_values / (alpha + t_values)
        scaled = (1.0 - z) ** (a - 1.0) * hyp2f1(a + b - r, a - 1.0, a + b, z)
        return np.asarray(b / (a - 1.0) * (1.0 - scaled), dtype=np.float64)


def _mbg_p_alive(r: float, alpha: float, a: float, b: float, columns: Columns) -> FloatArray:
    x, t_x, big_t = columns["frequency"], columns["recency"], columns["T"]
    log_odds = np.log(a) - np.log(b + x) + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x))
    return np.asarray(expit(-log_odds), dtype=np.float64)
