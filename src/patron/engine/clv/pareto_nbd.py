"""Pareto/NBD: purchases at a Poisson rate while alive, an exponential lifetime (Schmittlein,
Morrison & Colombo 1987), heterogeneity in both by gamma distributions.

Each customer buys at rate ``lambda ~ Gamma(r, alpha)`` until an unobserved death at rate
``mu ~ Gamma(s, beta)``. The likelihood of ``(x, t_x, T)`` is (Fader & Hardie 2005, "A Note on
Deriving the Pareto/NBD Model and Related Expressions", before the integral is written as a
2F1):

.. math::

    L = \\frac{\\Gamma(r+x)\\alpha^r\\beta^s}{\\Gamma(r)}
        \\Big[\\frac{1}{(\\alpha+T)^{r+x}(\\beta+T)^{s}}
        + s\\int_{t_x}^{T}\\frac{d\\tau}{(\\alpha+\\tau)^{r+x}(\\beta+\\tau)^{s+1}}\\Big].

The integral is ``I(t_x) - I(T)`` with the tail ``I(y) = \\int_y^\\infty``, which is the 2F1 of
the note, ``I(y) = 2F1(r+s+x, s+1; r+s+x+1; z) / ((r+s+x)(\\alpha+y)^{r+s+x})`` with
``z = (\\alpha-\\beta)/(\\alpha+y)`` when ``alpha >= beta`` (and ``alpha``, ``beta`` and the
second parameter ``r+x`` swapped otherwise). That 2F1 overflows for thousands of purchases
(it grows like ``(1-z)^{-x}``) and scipy's ``hyp2f1`` loses it near ``z = 1``; Euler's
transformation ``2F1(a, b; a+1; z) = (1-z)^{1-b} 2F1(1, a+1-b; a+1; z)`` pulls the growth out
as a power, and the remaining ``2F1(1, P; P+Q; z)`` (``P = r+x``, ``Q = s+1``) is a series of
positive terms bounded by ``1/(1-z)``. scipy's ``hyp2f1`` returns NaN for it in parts of the
range that matter (``2F1(1, 1.3; 10003.3; 0.94)``, a heavy buyer with ``alpha < beta``), so it is
summed here: the series where it converges within 256 terms (all the CDNOW customers), else
tanh-sinh quadrature of its Euler integral (241 nodes, about 1e-11 relative against long sums
of the series over a wide grid of ``P, Q, z``). So

.. math::

    I(y) = \\frac{(\\alpha+y)^{-P}(\\beta+y)^{1-Q}}{P+Q-1}\\,{}_2F_1(1, P; P+Q; z)

(``alpha >= beta``; mirrored otherwise), kept in logs, and the bracket above is a log-sum-exp.

The gradient is analytic: digamma for the ``log Gamma`` terms, and for the bracket the
derivatives of the 2F1 in its parameters and argument, summed term by term in the same series
(by central differences of the quadrature on the rare rows the series cannot sum). It is
checked against differences of a quadrature of the likelihood in the tests.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy.special import digamma, gammaln, logsumexp

from patron.engine.clv.base import (
    Columns,
    FloatArray,
    LikelihoodModel,
    check_recency_within_T,
    horizon,
)

SERIES_TERMS = 256
"""Most terms of the 2F1 series; rows not converged by then are integrated instead."""

SERIES_TOLERANCE = 1e-16
"""Series stop: the geometric bound on the tail, ``term z/(1-z)``, below this share of the sum."""

QUADRATURE_ROWS = 20_000
"""Rows integrated at once (each takes one row of nodes in memory)."""


def _tanh_sinh_rule(step: float, half_count: int) -> tuple[FloatArray, FloatArray]:
    """Logs of the nodes ``v`` and weights of tanh-sinh quadrature on ``[0, 1]``.

    ``v = (1 + tanh(pi/2 sinh t)) / 2`` at ``t = k step``, ``|k| <= half_count``: the nodes
    crowd double-exponentially at both ends, where the 2F1 integrand has its peak.
    """
    t = np.arange(-half_count, half_count + 1) * step
    u = np.pi / 2.0 * np.sinh(t)
    log_nodes = -np.logaddexp(0.0, -2.0 * u)
    log_cosh_u = np.logaddexp(u, -u) - np.log(2.0)
    log_weights = np.log(step * np.pi / 4.0) + np.log(np.cosh(t)) - 2.0 * log_cosh_u
    return log_nodes, log_weights


_LOG_NODES, _LOG_WEIGHTS = _tanh_sinh_rule(1.0 / 32.0, 120)


def _log_hyp2f1_by_quadrature(b: FloatArray, c: FloatArray, z: FloatArray) -> FloatArray:
    """``log 2F1(1, b; c; z)`` from ``(1-z)^(d-1) int_0^1 (1 - z v^(1/(c-1)))^-d dv``, ``d = c-b``.

    (Euler's integral with ``v = t^(c-1)``.) Summed in logs: the integrand reaches
    ``(1-z)^-d``, far beyond float range for thousands of purchases.
    """
    result = np.empty_like(b)
    for start in range(0, b.shape[0], QUADRATURE_ROWS):
        rows = slice(start, start + QUADRATURE_ROWS)
        d = (c[rows] - b[rows])[:, None]
        power_minus_one = np.expm1(_LOG_NODES[None, :] / (c[rows] - 1.0)[:, None])
        # 1 - z v^(1/(c-1)) without cancellation near v = 1 and z = 1.
        gap = (1.0 - z[rows])[:, None] - z[rows][:, None] * power_minus_one
        log_integral = logsumexp(_LOG_WEIGHTS[None, :] - d * np.log(gap), axis=1)
        result[rows] = (d[:, 0] - 1.0) * np.log1p(-z[rows]) + log_integral
    return result


def _log_hyp2f1_by_quadrature_with_derivatives(
    b: FloatArray, c: FloatArray, z: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """:func:`_log_hyp2f1_by_quadrature` and its derivatives in ``b, c, z`` by central differences.

    Only for the rows the series cannot sum (``z`` near 1 with ``b`` near ``c``), rare at
    sensible parameters; the quadrature's ~1e-12 noise leaves the derivatives ~1e-7 relative.
    """
    value = _log_hyp2f1_by_quadrature(b, c, z)
    derivatives = np.empty((3, b.shape[0]))
    room = c - b
    steps = (1e-5 * np.minimum(b, room), 1e-5 * np.minimum(c, room), 1e-5 * np.minimum(z, 1.0 - z))
    for index, step in enumerate(steps):
        shifted = [b, c, z]
        shifted[index] = shifted[index] + step
        upper = _log_hyp2f1_by_quadrature(*shifted)
        shifted[index] = shifted[index] - 2.0 * step
        lower = _log_hyp2f1_by_quadrature(*shifted)
        derivatives[index] = (upper - lower) / (2.0 * step)
    return value, derivatives


def _log_hyp2f1_unit(b: FloatArray, c: FloatArray, z: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``log 2F1(1, b; c; z)`` and its derivatives in ``(b, c, z)`` (shape ``(3, n)``).

    For ``0 < b < c``, ``c > 1``, ``0 <= z < 1``. The series ``sum t_n``,
    ``t_n = (b)_n/(c)_n z^n``, with ``dt_n/db = t_n sum_{k<n} 1/(b+k)``,
    ``dt_n/dc = -t_n sum_{k<n} 1/(c+k)`` and ``dt_n/dz = n t_n / z``, summed in the same loop
    where it converges fast; quadrature for the rest. The stop bounds the tails of all four
    sums (each term at most ``z`` times the one before, times a slowly growing weight).
    """
    total = np.ones_like(b)
    term = np.ones_like(b)
    slope_b = np.zeros_like(b)
    slope_c = np.zeros_like(b)
    slope_z = np.zeros_like(b)
    harmonic_b = np.zeros_like(b)
    harmonic_c = np.zeros_like(b)
    with np.errstate(divide="ignore"):
        tail_factor = z / (1.0 - z)
        weight_bound = 1.0 / (1.0 - z)

    def converged(count: int) -> npt.NDArray[np.bool_]:
        weight = count + 1.0 + harmonic_b + harmonic_c + weight_bound
        result: npt.NDArray[np.bool_] = term * tail_factor * weight <= SERIES_TOLERANCE * total
        return result

    count = 0
    for index in range(SERIES_TERMS):
        count = index
        ratio = (b + index) / (c + index)
        slope_z += (index + 1.0) * term * ratio
        harmonic_b += 1.0 / (b + index)
        harmonic_c += 1.0 / (c + index)
        term = term * ratio * z
        total += term
        slope_b += term * harmonic_b
        slope_c -= term * harmonic_c
        if index % 8 == 7 and np.all(converged(index)):
            break
    value: FloatArray = np.log(total)
    derivatives = np.stack([slope_b, slope_c, slope_z]) / total
    slow = ~converged(count)
    if np.any(slow):
        value[slow], derivatives[:, slow] = _log_hyp2f1_by_quadrature_with_derivatives(
            b[slow], c[slow], z[slow]
        )
    return value, derivatives


def _log_tail_integral(
    r: float, alpha: float, s: float, beta: float, x: FloatArray, start: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """``log I(start)`` and its gradient in ``(r, alpha, s, beta)`` (shape ``(4, n)``).

    ``I(y) = integral from y to infinity of (alpha+t)^-P (beta+t)^-Q dt`` with ``P = r+x``,
    ``Q = s+1``: ``(alpha+y)^-P (beta+y)^(1-Q) 2F1(1, P; P+Q; z) / (P+Q-1)``,
    ``z = (alpha-beta)/(alpha+y)``, when ``alpha >= beta``; mirrored otherwise (module
    docstring). Finite for ``P`` in the thousands.
    """
    power_alpha = r + x
    power_beta = s + 1.0
    total = power_alpha + power_beta
    gradient = np.empty((4, x.shape[0]))
    log_alpha_start = np.log(alpha + start)
    log_beta_start = np.log(beta + start)
    if alpha >= beta:
        z = (alpha - beta) / (alpha + start)
        log_series, (slope_b, slope_c, slope_z) = _log_hyp2f1_unit(power_alpha, total, z)
        log_powers = -power_alpha * log_alpha_start + (1.0 - power_beta) * log_beta_start
        gradient[0] = -log_alpha_start + slope_b + slope_c
        gradient[1] = (
            -power_alpha / (alpha + start) + slope_z * (beta + start) / (alpha + start) ** 2
        )
        gradient[2] = -log_beta_start + slope_c
        gradient[3] = (1.0 - power_beta) / (beta + start) - slope_z / (alpha + start)
    else:
        z = (beta - alpha) / (beta + start)
        log_series, (slope_b, slope_c, slope_z) = _log_hyp2f1_unit(
            np.full_like(x, power_beta), total, z
        )
        log_powers = -power_beta * log_beta_start + (1.0 - power_alpha) * log_alpha_start
        gradient[0] = -log_alpha_start + slope_c
        gradient[1] = (1.0 - power_alpha) / (alpha + start) - slope_z / (beta + start)
        gradient[2] = -log_beta_start + slope_b + slope_c
        gradient[3] = -power_beta / (beta + start) + slope_z * (alpha + start) / (beta + start) ** 2
    # d/dr and d/ds of -log(P + Q - 1).
    gradient[0] -= 1.0 / (total - 1.0)
    gradient[2] -= 1.0 / (total - 1.0)
    value: FloatArray = log_powers - np.log(total - 1.0) + log_series
    return value, gradient


def _log_bracket(params: FloatArray, columns: Columns) -> tuple[FloatArray, FloatArray]:
    """``log[(alpha+T)^-(r+x) (beta+T)^-s + s (I(t_x) - I(T))]`` per customer, and its
    gradient in ``(r, alpha, s, beta)`` (shape ``(4, n)``)."""
    r, alpha, s, beta = (float(value) for value in params)
    x, t_x, T = columns["frequency"], columns["recency"], columns["T"]
    log_alive_to_end = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    log_tail_last, gradient_last = _log_tail_integral(r, alpha, s, beta, x, t_x)
    log_tail_end, gradient_end = _log_tail_integral(r, alpha, s, beta, x, T)
    end_share = np.exp(np.minimum(log_tail_end - log_tail_last, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        # t_x = T gives an empty integral: log 0 = -inf, which logaddexp absorbs, and a
        # weight of 0 for its gradient (set below instead of 0 * nan).
        log_died_between = np.log(s) + log_tail_last + np.log(-np.expm1(np.log(end_share)))
        gradient_died = (gradient_last - end_share * gradient_end) / (1.0 - end_share)
    gradient_died[2] += 1.0 / s
    log_bracket: FloatArray = np.logaddexp(log_alive_to_end, log_died_between)
    alive_weight = np.exp(log_alive_to_end - log_bracket)
    died_weight = np.exp(log_died_between - log_bracket)
    gradient_alive = np.stack(
        [
            -np.log(alpha + T),
            -(r + x) / (alpha + T),
            -np.log(beta + T),
            -s / (beta + T),
        ]
    )
    gradient = alive_weight * gradient_alive + died_weight * np.where(
        died_weight > 0, gradient_died, 0.0
    )
    return log_bracket, gradient


def _log_alive_share(params: FloatArray, columns: Columns) -> FloatArray:
    """``log P(alive | x, t_x, T)``: the alive-to-T term's share of the bracket."""
    r, alpha, s, beta = (float(value) for value in params)
    x, T = columns["frequency"], columns["T"]
    log_alive_to_end = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    result: FloatArray = log_alive_to_end - _log_bracket(params, columns)[0]
    return result


def _growth_over(s: float, start: FloatArray | float, t: FloatArray | float) -> FloatArray:
    """``(1 - (start/(start+t))^(s-1)) / (s-1)``, its limit ``log(1 + t/start)`` at ``s = 1``."""
    log_ratio = np.log1p(np.asarray(t, dtype=np.float64) / start)
    if abs(s - 1.0) < 1e-10:
        return np.asarray(log_ratio, dtype=np.float64)
    result: FloatArray = -np.expm1(-(s - 1.0) * log_ratio) / (s - 1.0)
    return result


class ParetoNBDModel(LikelihoodModel):
    """Pareto/NBD transaction model (Schmittlein, Morrison & Colombo 1987).

    Parameters ``r, alpha`` (gamma heterogeneity of the purchase rate) and ``s, beta``
    (gamma heterogeneity of the death rate), fitted by maximum likelihood on ``frequency``
    (repeat purchases ``x``), ``recency`` (``t_x``, age at the last purchase) and ``T`` (age at
    the end of the calibration period), in one time unit. See the module docstring for the
    likelihood and how it is kept finite for customers with thousands of purchases.
    """

    parameter_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    required_columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    default_initial_params: ClassVar[tuple[float, ...]] = (1.0, 1.0, 1.0, 1.0)
    model_name: ClassVar[str] = "Pareto/NBD"

    def _check_columns(self, columns: Columns) -> None:
        check_recency_within_T(columns, self.model_name)

    def _log_likelihood_terms(
        self, params: FloatArray, columns: Columns
    ) -> tuple[FloatArray, FloatArray]:
        """Each customer's log-likelihood and its analytic gradient in ``(r, alpha, s, beta)``.

        ``log Gamma(r+x) - log Gamma(r) + r log alpha + s log beta + log bracket``; the
        bracket's gradient comes from the 2F1 series (module docstring).
        """
        r, alpha, s, beta = (float(value) for value in params)
        x = columns["frequency"]
        log_bracket, gradient = _log_bracket(params, columns)
        terms = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + log_bracket
        gradient[0] += digamma(r + x) - digamma(r) + np.log(alpha)
        gradient[1] += r / alpha
        gradient[2] += np.log(beta)
        gradient[3] += s / beta
        return terms, gradient

    def p_alive(self, data: Any) -> FloatArray:
        """Probability that each customer is still alive at ``T``.

        ``P(alive) = (alpha+T)^-(r+x) (beta+T)^-s / bracket``, the bracket of the likelihood.
        """
        result: FloatArray = np.exp(_log_alive_share(self.fitted_params(), self.columns(data)))
        return result

    def expected_purchases(self, t: Any, data: Any) -> FloatArray:
        """Expected purchases of each customer in the next ``t`` time units (after ``T``).

        ``E[Y(t) | x, t_x, T] = (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)]
        P(alive)`` (Schmittlein, Morrison & Colombo 1987; Fader & Hardie 2005, conditional
        expectation), with its limit ``log(1 + t/(beta+T))`` for the bracketed factor over
        ``s-1`` at ``s = 1``.
        """
        params = self.fitted_params()
        r, alpha, s, beta = (float(value) for value in params)
        columns = self.columns(data)
        t_values = horizon(t, self.model_name)
        x, T = columns["frequency"], columns["T"]
        alive = np.exp(_log_alive_share(params, columns))
        result: FloatArray = (
            (r + x) * (beta + T) / (alpha + T) * _growth_over(s, beta + T, t_values) * alive
        )
        return result

    def expected_purchases_new_customer(self, t: Any) -> FloatArray:
        """Expected purchases of a new customer in its first ``t`` time units.

        ``E[X(t)] = r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)]`` (Fader & Hardie 2005,
        "mean of X(t)"), with the ``s = 1`` limit ``r beta / alpha log(1 + t/beta)``.
        """
        r, alpha, s, beta = (float(value) for value in self.fitted_params())
        t_values = horizon(t, self.model_name)
        result: FloatArray = r * beta / alpha * _growth_over(s, beta, t_values)
        return result
