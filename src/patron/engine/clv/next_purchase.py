"""When a customer will buy next, from a fitted BG/NBD, MBG/NBD or Pareto/NBD model
(docs/clv.md).

BG/NBD and MBG/NBD. A customer who is alive buys at a Poisson rate :math:`\\lambda` and can
drop out only at a purchase (MBG/NBD also right after the first one). Given the history
``(x, t_x, T)`` and that the customer is still alive at ``T``, the likelihood in
:math:`(\\lambda, p)` is :math:`\\lambda^x e^{-\\lambda T} (1 - p)^x`, so the posterior of the
rate is :math:`\\Gamma(r + x, \\alpha + T)`, independent of ``p`` and of ``t_x`` (Fader, Hardie
& Lee 2005, "Counting Your Customers the Easy Way", Marketing Science 24(2), the update behind
their eq. 10). An alive customer's next purchase certainly comes (drop-out happens at
purchases, after them) after an exponential time at that rate, so the wait ``W`` after ``T``
is Lomax (Pareto type II) with shape :math:`k = r + x` and scale :math:`A = \\alpha + T`:

.. math::

    P(W > w \\mid \\text{alive}) = \\Big(\\frac{A}{A + w}\\Big)^{k},
    \\qquad
    w_q = A\\big((1 - q)^{-1/k} - 1\\big).

The mean :math:`A/(k - 1)` is infinite when :math:`k \\le 1` (most customers without a repeat
purchase, since r is usually below 1), so the date reported is the median, with quantiles
around it. ``t_x`` enters only through P(alive).

Pareto/NBD (Schmittlein, Morrison & Colombo 1987). Death runs on its own exponential clock,
so an alive customer may die before buying again. Given alive at ``T`` the likelihood is
:math:`\\lambda^x e^{-\\lambda T} e^{-\\mu T}`: the posteriors are
:math:`\\lambda \\sim \\Gamma(k, A)` and :math:`\\mu \\sim \\Gamma(s, B)`, :math:`B = \\beta + T`,
independent, and the next purchase is a race of two exponentials. Its (defective) density is
:math:`E[\\lambda e^{-\\lambda w}] E[e^{-\\mu w}]
= \\frac{k}{A} (\\frac{A}{A + w})^{k + 1} (\\frac{B}{B + w})^s`. With :math:`y = A / (A + w)`,

.. math::

    P(\\text{buys after } w \\mid \\text{alive}) = k B^s G(y), \\qquad
    G(y) = \\int_0^y t^{k + s - 1} (A + (B - A) t)^{-s} \\, dt,

so the customer buys again before dying with probability :math:`k B^s G(1)` (``k / (k + s)``
when ``A = B``: the mean of a Beta(k, s)), and the wait, given that they do, has survival
:math:`G(y) / G(1)`. :math:`G(y) = \\frac{y^{k+s}}{k+s} \\int_0^1 (A + (B - A) y u^{1/(k+s)})^{-s}
du` (``t = y u^{1/(k+s)}``), a bounded, positive integrand summed by Gauss-Legendre quadrature
in logs; the quantiles solve :math:`\\log G(y) - \\log G(1) = \\log(1 - q)` by Newton steps in
:math:`\\log y`, on which the left side is nearly linear (exactly, slope ``k + s``, when
``A = B``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import narwhals as nw
import numpy as np
import polars as pl

from patron.engine.clv.base import FloatArray, horizon
from patron.engine.clv.diagnostics import TransactionModel, transaction_model_kind
from patron.engine.frames import EngineInputError

QUADRATURE_NODES = 128
"""Gauss-Legendre nodes of the Pareto/NBD race integral ``G(y)`` (module docstring)."""

NEWTON_STEPS = 12
"""Newton steps in ``log y`` for the Pareto/NBD quantiles: the equation is nearly linear
(exactly so when ``alpha = beta``), so a handful reach machine precision; 12 leave room."""

NEWTON_TOLERANCE = 1e-12
"""Newton stops when ``log G(y) - log G(1) - log(1 - q)`` is below this for every customer."""

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
_LOG_UNIT_NODES = np.log((_NODES + 1.0) / 2.0)
_UNIT_WEIGHTS = _WEIGHTS / 2.0


def _quantile_column(quantile: float) -> str:
    return f"next_purchase_q{quantile * 100:g}"


def next_purchase(
    model: TransactionModel,
    summary: Any,
    quantiles: Sequence[float] = (0.1, 0.5, 0.9),
    within: float | None = None,
    customer_id_col: str = "customer_id",
) -> pl.DataFrame:
    """Time to each customer's next purchase, counted from the end of observation ``T``.

    Parameters
    ----------
    model
        A fitted :class:`~patron.engine.clv.beta_geo.BetaGeoModel`,
        :class:`~patron.engine.clv.modified_beta_geo.ModifiedBetaGeoModel` or
        :class:`~patron.engine.clv.pareto_nbd.ParetoNBDModel`.
    summary
        ``frequency, recency, T`` per customer (:func:`rfm_summary`), in the model's time
        unit; a ``customer_id_col`` column, when present, is carried into the result.
    quantiles
        Quantiles of the wait to report, each strictly between 0 and 1.
    within
        When given, also the probability of a purchase in the next ``within`` time units.
    customer_id_col
        Name of the customer column to carry over.

    Returns
    -------
    polars.DataFrame
        One row per customer, in the summary's order: ``customer_id`` (when present),
        ``p_alive`` (still active at ``T``), ``p_buys_again`` (active and buys again before
        dropping out: ``p_alive`` for BG/NBD and MBG/NBD, where an active customer always
        does), ``next_purchase_median`` and one ``next_purchase_q<percent>`` column per
        quantile (``next_purchase_q10`` for 0.1), in time units after ``T``; and
        ``p_purchase_within`` when ``within`` is given.

    The wait is that of a customer who is still active (and, for Pareto/NBD, who buys again
    before dropping out): module docstring. ``p_alive`` (``p_buys_again``) says how likely
    that is, and the date is meaningful only together with it. Raises
    :class:`~patron.engine.clv.base.ModelNotFittedError` for an unfitted model and
    :class:`EngineInputError` for another kind of model or bad quantiles.
    """
    kind = transaction_model_kind(model, "next_purchase")
    levels = np.asarray(list(quantiles), dtype=np.float64)
    if levels.ndim != 1 or not np.all((levels > 0) & (levels < 1)):
        raise EngineInputError("next_purchase: quantiles must be numbers strictly between 0 and 1")
    wait: float | None = None
    if within is not None:
        within_value = horizon(within, "next_purchase")
        if within_value.ndim != 0:
            raise EngineInputError("next_purchase: within must be one number of time units")
        wait = float(within_value)
    columns = model.columns(summary)
    p_alive = model.p_alive(summary)
    params = [float(value) for value in model.fitted_params()]
    shape = params[0] + columns["frequency"]
    scale = params[1] + columns["T"]

    result: dict[str, Any] = {}
    customer_ids = _customer_ids(summary, customer_id_col)
    if customer_ids is not None:
        result[customer_id_col] = customer_ids
    result["p_alive"] = p_alive
    if kind == "pareto":
        # The race depends on (x, T) only, and customers share them (whole days): solve it
        # once per distinct pair.
        pairs, inverse = np.unique(
            np.column_stack([columns["frequency"], columns["T"]]), axis=0, return_inverse=True
        )
        inverse = inverse.reshape(-1)
        race = _Race(
            params[0] + pairs[:, 0], params[1] + pairs[:, 1], params[2], params[3] + pairs[:, 1]
        )
        result["p_buys_again"] = p_alive * np.exp(race.log_buys_again)[inverse]
        solved = {level: race.quantile(level) for level in {0.5, *map(float, levels)}}
        result["next_purchase_median"] = solved[0.5][inverse]
        for level in levels:
            result[_quantile_column(float(level))] = solved[float(level)][inverse]
        if wait is not None:
            result["p_purchase_within"] = p_alive * race.purchase_within(wait)[inverse]
    else:
        result["p_buys_again"] = p_alive
        result["next_purchase_median"] = lomax_quantile(0.5, shape, scale)
        for level in levels:
            result[_quantile_column(float(level))] = lomax_quantile(float(level), shape, scale)
        if wait is not None:
            # 1 - (scale / (scale + w))^shape = -expm1(-shape log1p(w / scale)), exact for small w.
            result["p_purchase_within"] = p_alive * -np.expm1(-shape * np.log1p(wait / scale))
    return pl.DataFrame(result)


def lomax_quantile(quantile: float, shape: FloatArray, scale: FloatArray) -> FloatArray:
    """Quantile ``q`` of a Lomax distribution: ``scale ((1 - q)^(-1/shape) - 1)``.

    Written as ``scale * expm1(-log1p(-q) / shape)`` so that small ``q`` or large ``shape``
    (heavy buyers, thousands of purchases) keep full relative precision.
    """
    result: FloatArray = scale * np.expm1(-np.log1p(-quantile) / shape)
    return result


class _Race:
    """The Pareto/NBD race of an alive customer's next purchase against their death.

    ``k = r + x``, ``A = alpha + T`` (purchase-rate posterior), ``s``, ``B = beta + T``
    (death-rate posterior), per customer; ``G`` as in the module docstring.
    """

    def __init__(self, k: FloatArray, A: FloatArray, s: float, B: FloatArray) -> None:
        self.k, self.A, self.s, self.B = k, A, s, B
        self.power = k + s
        self.log_g_one = self.log_g(np.zeros_like(k))
        # P(buys again before dying | alive) = k B^s G(1).
        self.log_buys_again: FloatArray = np.log(k) + s * np.log(B) + self.log_g_one

    def log_g(self, log_y: FloatArray) -> FloatArray:
        """``log G(y)`` at ``y = exp(log_y)``, by quadrature over ``u`` in ``[0, 1]``.

        The integrand ``(A + (B - A) t)^(-s) = A^(-s) (1 + (B/A - 1) t)^(-s)`` is monotone in
        ``t``, so its largest value is at ``t = 0`` or ``t = y``: that is factored out before
        exponentiating (a log-sum-exp with the maximum known, without scipy's per-call cost).
        """
        ratio = self.B / self.A - 1.0
        t = np.exp(log_y[:, None] + _LOG_UNIT_NODES / self.power[:, None])
        log_integrand = -self.s * np.log1p(ratio[:, None] * t)
        largest = np.maximum(0.0, -self.s * np.log1p(ratio * np.exp(log_y)))
        total = np.exp(log_integrand - largest[:, None]) @ _UNIT_WEIGHTS
        result: FloatArray = (
            self.power * log_y
            - np.log(self.power)
            - self.s * np.log(self.A)
            + largest
            + np.log(total)
        )
        return result

    def quantile(self, quantile: float) -> FloatArray:
        """Wait ``w`` with P(wait <= w | alive, buys again) = ``quantile``."""
        target = np.log1p(-quantile)  # log G(y) - log G(1) at the answer
        # Start from the exact answer of A = B, where G(y) / G(1) = y^(k+s).
        log_y = target / self.power
        for _ in range(NEWTON_STEPS):
            log_g = self.log_g(log_y)
            gap = log_g - self.log_g_one - target
            if float(np.max(np.abs(gap))) < NEWTON_TOLERANCE:
                break
            # d log G / d log y = y^(k+s) (A + (B - A) y)^(-s) / G(y)
            y = np.exp(log_y)
            slope = np.exp(
                self.power * log_y - self.s * np.log(self.A + (self.B - self.A) * y) - log_g
            )
            # log y stays below 0 (a wait above 0): halve the way to 0 rather than cross it.
            log_y = np.minimum(log_y - gap / slope, log_y / 2.0)
        # y = A / (A + w): w = A (1/y - 1) = A expm1(-log y).
        result: FloatArray = self.A * np.expm1(-log_y)
        return result

    def purchase_within(self, wait: float) -> FloatArray:
        """P(buys again within ``wait`` | alive) = k B^s (G(1) - G(A / (A + wait)))."""
        log_y = -np.log1p(wait / self.A)
        # 1 - G(y) / G(1), without forming the ratio first.
        result: FloatArray = np.exp(self.log_buys_again) * -np.expm1(
            self.log_g(log_y) - self.log_g_one
        )
        return result


def _customer_ids(summary: Any, customer_id_col: str) -> pl.Series | None:
    """The summary's customer column as a Polars series, or ``None`` when it has none."""
    if isinstance(summary, pl.DataFrame):
        return summary[customer_id_col] if customer_id_col in summary.columns else None
    if isinstance(summary, dict):
        values = summary.get(customer_id_col)
        return None if values is None else pl.Series(customer_id_col, list(values))
    frame = nw.from_native(summary)
    if isinstance(frame, nw.LazyFrame):
        if customer_id_col not in frame.collect_schema().names():
            return None
        frame = frame.select(customer_id_col).collect()
    if customer_id_col not in frame.columns:
        return None
    return pl.Series(customer_id_col, frame[customer_id_col].to_list())
