"""When a customer will buy next, from a fitted BG/NBD or MBG/NBD model (docs/clv.md).

Under both models a customer who is alive buys at a Poisson rate :math:`\\lambda` and can drop
out only at a purchase (MBG/NBD also right after the first one). Given the customer's history
``(x, t_x, T)`` and that they are still alive at ``T``, the likelihood in
:math:`(\\lambda, p)` is :math:`\\lambda^x e^{-\\lambda T} (1 - p)^x`, so the posterior of the
rate is :math:`\\Gamma(r + x, \\alpha + T)`, independent of ``p`` and of ``t_x`` (Fader, Hardie
& Lee 2005, "Counting Your Customers the Easy Way", Marketing Science 24(2), section 3; the
same conjugate update as their eq. 10). An alive customer's next purchase certainly comes
(drop-out happens at purchases, after them) after an exponential time with that rate, so the
wait ``W`` after ``T`` is Lomax (Pareto type II) with shape :math:`r + x` and scale
:math:`\\alpha + T`:

.. math::

    P(W > w \\mid \\text{alive}) = \\Big(\\frac{\\alpha + T}{\\alpha + T + w}\\Big)^{r + x},
    \\qquad
    w_q = (\\alpha + T)\\big((1 - q)^{-1/(r + x)} - 1\\big).

The mean :math:`(\\alpha + T)/(r + x - 1)` is infinite when :math:`r + x \\le 1` (most
customers without a repeat purchase, since r is usually below 1), so the date reported is the
median, with quantiles around it. ``t_x`` enters only through P(alive).

Pareto/NBD is refused: there death runs on its own clock, so an alive customer may die before
buying again, the wait is a race between two posterior-gamma exponentials and its distribution
is defective; that needs its own derivation, not this one.
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
        A fitted :class:`~patron.engine.clv.beta_geo.BetaGeoModel` or
        :class:`~patron.engine.clv.modified_beta_geo.ModifiedBetaGeoModel`.
    summary
        ``frequency, recency, T`` per customer (:func:`rfm_summary`), in the model's time
        unit; a ``customer_id_col`` column, when present, is carried into the result.
    quantiles
        Quantiles of the wait to report, each strictly between 0 and 1.
    within
        When given, also the probability of a purchase in the next ``within`` time units,
        :math:`P(\\text{alive}) (1 - ((\\alpha + T)/(\\alpha + T + w))^{r + x})`.
    customer_id_col
        Name of the customer column to carry over.

    Returns
    -------
    polars.DataFrame
        One row per customer, in the summary's order: ``customer_id`` (when present),
        ``p_alive``, ``next_purchase_median`` and one ``next_purchase_q<percent>`` column per
        quantile (``next_purchase_q10`` for 0.1), all in time units after ``T``; and
        ``p_purchase_within`` when ``within`` is given.

    The wait assumes the customer is still active (module docstring: Lomax with shape
    ``r + x``, scale ``alpha + T``); ``p_alive`` says how likely that is, and the date is
    meaningful only together with it. Raises :class:`EngineInputError` for a Pareto/NBD model
    (its wait is a race with death, not derived here) and
    :class:`~patron.engine.clv.base.ModelNotFittedError` for an unfitted model.
    """
    kind = transaction_model_kind(model, "next_purchase")
    if kind == "pareto":
        raise EngineInputError(
            "next_purchase: not available for the Pareto/NBD model (an alive customer may die "
            "before the next purchase there); use a BetaGeoModel or ModifiedBetaGeoModel"
        )
    levels = np.asarray(list(quantiles), dtype=np.float64)
    if levels.ndim != 1 or not np.all((levels > 0) & (levels < 1)):
        raise EngineInputError("next_purchase: quantiles must be numbers strictly between 0 and 1")
    r, alpha, _, _ = (float(value) for value in model.fitted_params())
    columns = model.columns(summary)
    shape = r + columns["frequency"]
    scale = alpha + columns["T"]
    p_alive = model.p_alive(summary)

    result: dict[str, Any] = {}
    customer_ids = _customer_ids(summary, customer_id_col)
    if customer_ids is not None:
        result[customer_id_col] = customer_ids
    result["p_alive"] = p_alive
    result["next_purchase_median"] = lomax_quantile(0.5, shape, scale)
    for level in levels:
        result[_quantile_column(float(level))] = lomax_quantile(float(level), shape, scale)
    if within is not None:
        wait = horizon(within, "next_purchase")
        if wait.ndim != 0:
            raise EngineInputError("next_purchase: within must be one number of time units")
        # 1 - (scale / (scale + w))^shape = -expm1(-shape log1p(w / scale)), exact for small w.
        result["p_purchase_within"] = p_alive * -np.expm1(-shape * np.log1p(float(wait) / scale))
    return pl.DataFrame(result)


def lomax_quantile(quantile: float, shape: FloatArray, scale: FloatArray) -> FloatArray:
    """Quantile ``q`` of a Lomax distribution: ``scale ((1 - q)^(-1/shape) - 1)``.

    Written as ``scale * expm1(-log1p(-q) / shape)`` so that small ``q`` or large ``shape``
    (heavy buyers, thousands of purchases) keep full relative precision.
    """
    result: FloatArray = scale * np.expm1(-np.log1p(-quantile) / shape)
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
