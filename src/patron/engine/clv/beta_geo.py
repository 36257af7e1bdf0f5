"""BG/NBD: the beta-geometric / negative binomial model of repeat buying.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "Counting Your Customers the Easy Way:
An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284; and Fader, Hardie
& Lee (2008), "Computing P(alive) Using the BG/NBD Model" (brucehardie.com note 018).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from patron.engine.clv.base import (
    Columns,
    FloatArray,
    LikelihoodModel,
    check_recency_within_T,
    horizon,
)


class BetaGeoModel(LikelihoodModel):
    r"""BG/NBD transaction model (Fader, Hardie & Lee 2005).

    While alive a customer buys with a Poisson rate :math:`\lambda \sim \Gamma(r, \alpha)`;
    after each purchase they drop out with probability :math:`p \sim B(a, b)`.
    Customer columns: ``frequency`` (repeat purchases, x), ``recency`` (age at the last
    purchase, :math:`t_x`) and ``T`` (age at the end of the calibration period), in one time
    unit (weeks for the published CDNOW figures).

    The likelihood of one customer (paper, eq. 6) is

    .. math::

        L = \frac{B(a, b + x)}{B(a, b)}
            \frac{\Gamma(r + x) \alpha^r}{\Gamma(r) (\alpha + T)^{r + x}}
          + \delta_{x > 0} \frac{B(a + 1, b + x - 1)}{B(a, b)}
            \frac{\Gamma(r + x) \alpha^r}{\Gamma(r) (\alpha + t_x)^{r + x}},

    evaluated as log-gamma / log-beta terms joined by log-sum-exp, so that it stays finite
    for customers with thousands of purchases. Parameters: ``r, alpha, a, b``.

    Parameters: see :class:`~patron.engine.clv.base.LikelihoodModel`.
    """

    parameter_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    required_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    default_initial_params: ClassVar[tuple[float, ...]] = (1.0, 1.0, 1.0, 1.0)
    model_name: ClassVar[str] = "BG/NBD"

    def _check_columns(self, columns: Columns) -> None:
        check_recency_within_T(columns, self.model_name)

    def _log_likelihood_terms(
        self, params: FloatArray, columns: Columns
    ) -> tuple[FloatArray, FloatArray]:
        r, alpha, a, b = params
        x, t_x, big_t = columns["frequency"], columns["recency"], columns["T"]
        log_alpha_t = np.log(alpha + big_t)
        log_alpha_tx = np.log(alpha + t_x)
        # Eq. 6 factored as (first term) * (1 + second / first). The ratio of the two terms is
        # a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x), since
        # B(a + 1, b + x - 1) / B(a, b + x) = a / (b + x - 1); it exists only for x > 0.
        # np.maximum keeps b + x - 1 positive where x = 0 (those rows get -inf below).
        b_x_less_one = b + np.maximum(x, 1.0) - 1.0
        log_ratio = np.where(
            x > 0,
            np.log(a) - np.log(b_x_less_one) + (r + x) * (log_alpha_t - log_alpha_tx),
            -np.inf,
        )
        log_beta_bx = gammaln(a) + gammaln(b + x) - gammaln(a + b + x) - betaln(a, b)
        terms = (
            gammaln(r + x)
            - gammaln(r)
            + r * np.log(alpha)
            + log_beta_bx
            - (r + x) * log_alpha_t
            + np.logaddexp(0.0, log_ratio)
        )
        # Share of the second term in the sum: d log(1 + e^u) / du.
        share = expit(log_ratio)
        psi_ab = digamma(a + b)
        psi_abx = digamma(a + b + x)
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
        d_b = digamma(b + x) - psi_abx - digamma(b) + psi_ab - share / b_x_less_one
        return terms, np.stack([d_r, d_alpha, d_a, d_b])

    def p_alive(self, data: Any) -> FloatArray:
        r"""Probability that each customer is still alive at T (Fader, Hardie & Lee 2008, eq. 2).

        .. math::

            P(\text{alive}) = 1 \Big/ \left(1 + \delta_{x > 0} \frac{a}{b + x - 1}
                \left(\frac{\alpha + T}{\alpha + t_x}\right)^{r + x}\right)

        1 for customers without a repeat purchase (BG/NBD lets a customer drop out only
        after a purchase).
        """
        r, alpha, a, b = self.fitted_params()
        columns = self.columns(data)
        return _bg_p_alive(r, alpha, a, b, columns)

    def expected_purchases(self, t: Any, data: Any) -> FloatArray:
        r"""Expected purchases of each customer in the next ``t`` time units (paper, eq. 10).

        .. math::

            E[Y(t) \mid x, t_x, T] = \frac{a + b + x - 1}{a - 1}
                \left[1 - \left(\frac{\alpha + T}{\alpha + T + t}\right)^{r + x}
                {}_2F_1\!\left(r + x, b + x; a + b + x - 1; \frac{t}{\alpha + T + t}\right)
                \right] P(\text{alive})

        The power times the hypergeometric function is computed through Euler's
        transformation as :math:`(1 - z)^{a - 1} {}_2F_1(a + b - 1 - r, a - 1; a + b + x - 1;
        z)` with :math:`z = t / (\alpha + T + t)`: its first two arguments do not grow with x,
        so it stays finite for customers with thousands of purchases, where the paper's two
        factors under- and overflow.
        """
        r, alpha, a, b = self.fitted_params()
        columns = self.columns(data)
        t_values = horizon(t, self.model_name)
        x, big_t = columns["frequency"], columns["T"]
        z = t_values / (alpha + big_t + t_values)
        scaled = (1.0 - z) ** (a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
        expected = (a + b + x - 1.0) / (a - 1.0) * (1.0 - scaled)
        return np.asarray(expected * _bg_p_alive(r, alpha, a, b, columns), dtype=np.float64)

    def expected_purchases_new_customer(self, t: Any) -> FloatArray:
        r"""Expected purchases in ``(0, t]`` of a customer just acquired (paper, eq. 9).

        .. math::

            E[X(t)] = \frac{a + b - 1}{a - 1} \left[1 - \left(\frac{\alpha}{\alpha + t}
                \right)^r {}_2F_1\!\left(r, b; a + b - 1; \frac{t}{\alpha + t}\right)\right]

        (power and hypergeometric joined by Euler's transformation as above).
        """
        r, alpha, a, b = self.fitted_params()
        t_values = horizon(t, self.model_name)
        z = t_values / (alpha + t_values)
        scaled = (1.0 - z) ** (a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b - 1.0, z)
        return np.asarray((a + b - 1.0) / (a - 1.0) * (1.0 - scaled), dtype=np.float64)


def _bg_p_alive(r: float, alpha: float, a: float, b: float, columns: Columns) -> FloatArray:
    x, t_x, big_t = columns["frequency"], columns["recency"], columns["T"]
    has_repeat = x > 0
    x_repeat = np.where(has_repeat, x, 1.0)
    # log of the odds of having dropped out; 1 / (1 + e^z) = expit(-z) without overflow.
    log_odds = (
        np.log(a)
        - np.log(b + x_repeat - 1.0)
        + (r + x) * (np.log(alpha + big_t) - np.log(alpha + t_x))
    )
    return np.asarray(np.where(has_repeat, expit(-log_odds), 1.0), dtype=np.float64)
