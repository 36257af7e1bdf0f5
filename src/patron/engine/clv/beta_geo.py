"""BG/NBD: the beta-geometric / negative binomial model of repeat buying.

Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "Counting Your Customers the Easy Way:
An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284; and Fader, Hardie
& Lee (2008), "Computing P(alive) Using the BG/NBD Model" (brucehardie.com note 018).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, polygamma

from patron.engine.clv.base import (
    CHUNK_ROWS,
    Columns,
    FloatArray,
    IntArray,
    LikelihoodModel,
    check_recency_within_T,
    dot,
    horizon,
    value_codes,
)


@dataclass(frozen=True)
class _BetaGeoStatistics:
    """The columns as the total BG/NBD log-likelihood reads them (gathered once per fit).

    ``frequencies``/``counts``: the distinct frequencies and how many customers have each;
    ``T_zero``: T of the customers without a repeat purchase (their likelihood depends on T
    alone); ``x``, ``recency``, ``T``: the customers with repeat purchases, ``codes`` the
    index of each one's frequency in ``repeat_frequencies`` (their distinct frequencies).
    """

    count: int
    frequencies: FloatArray
    counts: FloatArray
    T_zero: FloatArray
    x: FloatArray
    recency: FloatArray
    T: FloatArray
    codes: IntArray
    repeat_frequencies: FloatArray


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

    def _sufficient_statistics(self, columns: Columns) -> _BetaGeoStatistics:
        x, t_x, big_t = columns["frequency"], columns["recency"], columns["T"]
        repeat = x > 0
        x_repeat = x[repeat]
        repeat_frequencies, codes, repeat_counts = value_codes(x_repeat)
        zero_count = len(x) - len(x_repeat)
        return _BetaGeoStatistics(
            count=len(x),
            frequencies=np.concatenate([[0.0], repeat_frequencies]),
            counts=np.concatenate([[float(zero_count)], repeat_counts]),
            T_zero=big_t[~repeat],
            x=x_repeat,
            recency=t_x[repeat],
            T=big_t[repeat],
            codes=codes,
            repeat_frequencies=repeat_frequencies,
        )

    def _total_log_likelihood(
        self, params: FloatArray, statistics: _BetaGeoStatistics
    ) -> tuple[float, FloatArray, FloatArray]:
        """Total log-likelihood of eq. 6 with its analytic gradient and Hessian.

        The sum splits in three: terms of the frequency alone (log-gamma of ``r + x``,
        ``b + x``, ``a + b + x``), summed once per distinct frequency with its count;
        ``r log alpha - (r + x) log(alpha + T)`` per customer; and, for customers with repeat
        purchases, ``log(1 + e^u)`` with ``u = log a - log(b + x - 1) + (r + x) (log(alpha +
        T) - log(alpha + t_x))``, the second term of eq. 6 over the first (see
        :meth:`_log_likelihood_terms`). Per-customer work is a few passes over the arrays;
        sums over terms of ``x`` alone go through ``np.bincount`` on the frequency codes.
        """
        r, alpha, a, b = (float(value) for value in params)
        n = float(statistics.count)
        xs, counts = statistics.frequencies, statistics.counts
        gradient = np.zeros(4)
        hessian = np.zeros((4, 4))

        # Terms of the frequency alone, once per distinct frequency.
        psi1_r, psi1_ab = polygamma(1, [r, a + b])
        value = dot(counts, (gammaln(r + xs) + gammaln(b + xs) - gammaln(a + b + xs))) + n * (
            -gammaln(r) + r * np.log(alpha) + gammaln(a + b) - gammaln(b)
        )
        psi_abx = dot(counts, digamma(a + b + xs))
        psi1_abx = dot(counts, polygamma(1, a + b + xs))
        gradient[0] = dot(counts, digamma(r + xs)) - n * digamma(r) + n * np.log(alpha)
        gradient[1] = n * r / alpha
        gradient[2] = -psi_abx + n * digamma(a + b)
        gradient[3] = dot(counts, digamma(b + xs)) - psi_abx + n * (digamma(a + b) - digamma(b))
        hessian[0, 0] = dot(counts, polygamma(1, r + xs)) - n * psi1_r
        hessian[0, 1] = n / alpha
        hessian[1, 1] = -n * r / alpha**2
        hessian[2, 2] = -psi1_abx + n * psi1_ab
        hessian[2, 3] = hessian[2, 2]
        hessian[3, 3] = (
            dot(counts, polygamma(1, b + xs)) - psi1_abx + n * psi1_ab - n * polygamma(1, b)
        )

        # -r log(alpha + T) of the customers without repeat purchases.
        for begin in range(0, len(statistics.T_zero), CHUNK_ROWS):
            zero_shift = alpha + statistics.T_zero[begin : begin + CHUNK_ROWS]
            zero_log_sum = float(np.sum(np.log(zero_shift)))
            zero_inverse = np.reciprocal(zero_shift, out=zero_shift)
            zero_inverse_sum = float(np.sum(zero_inverse))
            value -= r * zero_log_sum
            gradient[0] -= zero_log_sum
            gradient[1] -= r * zero_inverse_sum
            hessian[0, 1] -= zero_inverse_sum
            hessian[1, 1] += r * dot(zero_inverse, zero_inverse)

        # Customers with repeat purchases: -(r + x) log(alpha + T) + log(1 + e^u).
        repeat_xs = statistics.repeat_frequencies
        inverse_bx = 1.0 / (b + repeat_xs - 1.0)
        log_odds_x = np.log(a) - np.log(b + repeat_xs - 1.0)
        share_by_frequency = np.zeros(len(repeat_xs))
        curvature_by_frequency = np.zeros(len(repeat_xs))
        ratio_by_frequency = np.zeros(len(repeat_xs))
        q_difference_by_frequency = np.zeros(len(repeat_xs))
        share_sum = 0.0
        curvature_sum = 0.0
        for begin in range(0, len(statistics.x), CHUNK_ROWS):
            rows = slice(begin, begin + CHUNK_ROWS)
            codes = statistics.codes[rows]
            q = r + statistics.x[rows]
            shift_t = alpha + statistics.T[rows]
            shift_tx = alpha + statistics.recency[rows]
            log_t = np.log(shift_t)
            log_ratio = log_t - np.log(shift_tx)  # D
            inverse_t = np.reciprocal(shift_t, out=shift_t)
            inverse_tx = np.reciprocal(shift_tx, out=shift_tx)
            inverse_t_squared = inverse_t * inverse_t
            value -= dot(q, log_t)
            gradient[0] -= float(np.sum(log_t))
            gradient[1] -= dot(q, inverse_t)
            hessian[0, 1] -= float(np.sum(inverse_t))
            hessian[1, 1] += dot(q, inverse_t_squared)

            # u and its derivatives: du/dr = D, du/dalpha = q E, du/da = 1/a,
            # du/db = -1/(b + x - 1); the last two are terms of x alone, summed by frequency.
            u = log_odds_x[codes] + q * log_ratio
            inverse_difference = inverse_t - inverse_tx  # E
            q_difference = q * inverse_difference  # qE
            # log(1 + e^u) = max(u, 0) + log1p(e^-|u|) and s = e^u / (1 + e^u) from one
            # exponential, neither overflowing (np.logaddexp and expit take four times as long).
            small = np.exp(-np.abs(u))
            value += float(np.sum(np.maximum(u, 0.0))) + float(np.sum(np.log1p(small)))
            share = np.where(u >= 0.0, 1.0, small) / (1.0 + small)  # s
            curvature = share * (1.0 - share)  # v = s (1 - s)
            curvature_ratio = curvature * log_ratio  # v D
            curvature_q_difference = curvature * q_difference  # v q E
            share_by_frequency += np.bincount(codes, share, len(repeat_xs))
            curvature_by_frequency += np.bincount(codes, curvature, len(repeat_xs))
            ratio_by_frequency += np.bincount(codes, curvature_ratio, len(repeat_xs))
            q_difference_by_frequency += np.bincount(codes, curvature_q_difference, len(repeat_xs))
            share_sum += float(np.sum(share))
            curvature_sum += float(np.sum(curvature))

            gradient[0] += dot(share, log_ratio)
            gradient[1] += dot(share, q_difference)
            hessian[0, 0] += dot(curvature_ratio, log_ratio)
            hessian[0, 1] += dot(curvature_ratio, q_difference) + dot(share, inverse_difference)
            hessian[0, 2] += float(np.sum(curvature_ratio)) / a
            hessian[1, 1] += dot(curvature_q_difference, q_difference) - dot(
                share * q, inverse_t_squared - inverse_tx * inverse_tx
            )
            hessian[1, 2] += float(np.sum(curvature_q_difference)) / a

        gradient[2] += share_sum / a
        gradient[3] -= dot(share_by_frequency, inverse_bx)
        hessian[0, 3] -= dot(ratio_by_frequency, inverse_bx)
        hessian[1, 3] -= dot(q_difference_by_frequency, inverse_bx)
        hessian[2, 2] += (curvature_sum - share_sum) / a**2
        hessian[2, 3] -= dot(curvature_by_frequency, inverse_bx) / a
        hessian[3, 3] += dot(curvature_by_frequency + share_by_frequency, inverse_bx**2)

        upper = np.triu(hessian, 1)
        return float(value), gradient, hessian + upper.T

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
        expected = _away_from_one(a, lambda a: _purchases_while_alive(r, a, b, x, z))
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
        expected = _away_from_one(a, lambda a: _purchases_while_alive(r, a, b, 0.0, z))
        return np.asarray(expected, dtype=np.float64)


#: Below this distance from a = 1 the expectations are evaluated on both sides of it.
_A_NEAR_ONE = 1e-6


def _purchases_while_alive(r: float, a: float, b: float, x: Any, z: Any) -> FloatArray:
    """Expected purchases while alive (eq. 10 without P(alive)), Euler-transformed:
    ``(a + b + x - 1)/(a - 1) [1 - (1 - z)^(a-1) 2F1(a + b - 1 - r, a - 1; a + b + x - 1; z)]``."""
    scaled = (1.0 - z) ** (a - 1.0) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
    return np.asarray((a + b + x - 1.0) / (a - 1.0) * (1.0 - scaled), dtype=np.float64)


def _away_from_one(a: float, expectation: Any) -> FloatArray:
    """``expectation(a)``, or at a = 1 (0/0 in the formula) the mean of its values at
    ``1 ± 1e-6``: it is smooth in ``a``, and the symmetric mean cancels the first-order error."""
    if abs(a - 1.0) >= _A_NEAR_ONE:
        return np.asarray(expectation(a), dtype=np.float64)
    below = np.asarray(expectation(1.0 - _A_NEAR_ONE), dtype=np.float64)
    above = np.asarray(expectation(1.0 + _A_NEAR_ONE), dtype=np.float64)
    return (below + above) / 2.0


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
