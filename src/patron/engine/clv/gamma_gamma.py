"""Gamma-Gamma spend model and the customer lifetime value it gives with a transaction model.

Fader, Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis",
Journal of Marketing Research 42(4), and Fader & Hardie (2013), "The Gamma-Gamma Model of
Monetary Value": the value of each transaction is ``Gamma(p, nu)``, and ``nu`` varies across
customers as ``Gamma(q, gamma)``. The mean ``zbar`` of a customer's ``x`` repeat transactions
then has the density

.. math::

    f(\\bar z | p, q, \\gamma; x) = \\frac{\\Gamma(px+q)}{\\Gamma(px)\\Gamma(q)}
        \\frac{\\gamma^q \\bar z^{px-1} x^{px}}{(\\gamma + x\\bar z)^{px+q}},

and the expected spend per transaction of a customer given ``x`` and ``zbar`` is

.. math::

    E[Z | \\bar z, x] = \\frac{q-1}{px+q-1}\\frac{p\\gamma}{q-1}
        + \\frac{px}{px+q-1}\\bar z = \\frac{p(\\gamma + x\\bar z)}{px+q-1}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from patron.engine.clv.base import (
    CHUNK_ROWS,
    Columns,
    FloatArray,
    LikelihoodModel,
    check_positive_where,
    customer_columns,
    dot,
    value_codes,
)
from patron.engine.frames import EngineInputError

WEEKS_PER_MONTH = 4.345
"""Weeks in a month for the CLV sum in weeks, as in lifetimes (52.14 weeks / 12)."""

DAYS_PER_MONTH = 30.0
"""Days in a month for the CLV sum in days, as in lifetimes."""


@dataclass(frozen=True)
class _GammaGammaStatistics:
    """The repeat customers as the total Gamma-Gamma log-likelihood reads them (once per fit).

    ``frequencies``/``counts``: distinct ``x`` and how many customers have each; ``x`` and
    ``total`` (``x zbar``, the customer's total spend) per customer; ``log_zbar_sum``
    (``sum log zbar``) and ``x_log_total_sum`` (``sum x log(x zbar)``), constant in the
    parameters.
    """

    count: int
    frequencies: FloatArray
    counts: FloatArray
    x: FloatArray
    total: FloatArray
    log_zbar_sum: float
    x_log_total_sum: float


class GammaGammaModel(LikelihoodModel):
    """Gamma-Gamma model of the mean spend per transaction (Fader, Hardie & Lee 2005).

    Fitted on ``frequency`` (repeat transactions ``x``) and ``monetary_value`` (their mean
    spend ``zbar``) of the repeat customers only: customers with ``frequency = 0`` carry no
    spend information and are left out of the likelihood (``n_customers_`` counts the repeat
    customers). ``monetary_value`` must be positive wherever ``frequency > 0``. The model
    assumes spend independent of purchase frequency; check the correlation before relying
    on it. Parameters ``p, q, gamma`` (``v`` in lifetimes).
    """

    parameter_names: ClassVar[tuple[str, ...]] = ("p", "q", "gamma")
    required_columns: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value")
    default_initial_params: ClassVar[tuple[float, ...]] = (1.0, 1.0, 1.0)
    model_name: ClassVar[str] = "Gamma-Gamma"

    def _check_columns(self, columns: Columns) -> None:
        check_positive_where(columns, "monetary_value", columns["frequency"] > 0, self.model_name)

    def columns(self, data: Any) -> Columns:
        """The checked columns of the repeat customers (``frequency > 0``), the likelihood's."""
        columns = super().columns(data)
        repeat = columns["frequency"] > 0
        if not np.any(repeat):
            raise EngineInputError(f"{self.model_name}: no customer with a repeat purchase")
        return {name: values[repeat] for name, values in columns.items()}

    def _log_likelihood_terms(
        self, params: FloatArray, columns: Columns
    ) -> tuple[FloatArray, FloatArray]:
        """Each repeat customer's ``log f(zbar | p, q, gamma; x)`` and its analytic gradient."""
        p, q, gamma = (float(value) for value in params)
        x, zbar = columns["frequency"], columns["monetary_value"]
        shape = p * x
        log_total = np.log(gamma + x * zbar)
        terms = (
            gammaln(shape + q)
            - gammaln(shape)
            - gammaln(q)
            + q * np.log(gamma)
            + (shape - 1.0) * np.log(zbar)
            + shape * np.log(x)
            - (shape + q) * log_total
        )
        gradient = np.empty((3, x.shape[0]))
        gradient[0] = x * (digamma(shape + q) - digamma(shape) + np.log(x * zbar) - log_total)
        gradient[1] = digamma(shape + q) - digamma(q) + np.log(gamma) - log_total
        gradient[2] = q / gamma - (shape + q) / (gamma + x * zbar)
        return terms, gradient

    def _sufficient_statistics(self, columns: Columns) -> _GammaGammaStatistics:
        x, zbar = columns["frequency"], columns["monetary_value"]
        frequencies, _, counts = value_codes(x)
        total = x * zbar
        return _GammaGammaStatistics(
            count=len(x),
            frequencies=frequencies,
            counts=counts,
            x=x,
            total=total,
            log_zbar_sum=float(np.sum(np.log(zbar))),
            x_log_total_sum=dot(x, np.log(total)),
        )

    def _total_log_likelihood(
        self, params: FloatArray, statistics: _GammaGammaStatistics
    ) -> tuple[float, FloatArray, FloatArray]:
        """Total log-likelihood of the repeat customers with its gradient and Hessian.

        ``sum [log Gamma(px+q) - log Gamma(px)] - n log Gamma(q) + n q log gamma
        + p sum x log(x zbar) - sum log zbar - sum (px+q) log(gamma + x zbar)``: the log-gamma
        terms once per distinct ``x`` with its count, the constant sums gathered once, and a
        logarithm and a reciprocal per customer for the last sum (in blocks of
        :data:`~patron.engine.clv.base.CHUNK_ROWS`).
        """
        p, q, gamma = (float(value) for value in params)
        n = float(statistics.count)
        xs, counts, x = statistics.frequencies, statistics.counts, statistics.x
        shape = p * xs
        psi_sum = digamma(shape + q)
        psi1_sum = polygamma(1, shape + q)
        x_counts = counts * xs
        log_sum = x_log_sum = inverse_sum = x_inverse_sum = 0.0
        inverse_squared_sum = x_inverse_squared_sum = 0.0
        for begin in range(0, len(x), CHUNK_ROWS):
            block = x[begin : begin + CHUNK_ROWS]
            shifted = gamma + statistics.total[begin : begin + CHUNK_ROWS]
            log_shifted = np.log(shifted)
            inverse = np.reciprocal(shifted, out=shifted)
            inverse_squared = inverse * inverse
            log_sum += float(np.sum(log_shifted))
            x_log_sum += dot(block, log_shifted)
            inverse_sum += float(np.sum(inverse))
            x_inverse_sum += dot(block, inverse)
            inverse_squared_sum += float(np.sum(inverse_squared))
            x_inverse_squared_sum += dot(block, inverse_squared)
        value = (
            dot(counts, (gammaln(shape + q) - gammaln(shape)))
            - n * gammaln(q)
            + n * q * np.log(gamma)
            + p * statistics.x_log_total_sum
            - statistics.log_zbar_sum
            - p * x_log_sum
            - q * log_sum
        )
        gradient = np.array(
            [
                dot(x_counts, (psi_sum - digamma(shape))) + statistics.x_log_total_sum - x_log_sum,
                dot(counts, psi_sum) - n * digamma(q) + n * np.log(gamma) - log_sum,
                n * q / gamma - p * x_inverse_sum - q * inverse_sum,
            ]
        )
        p_q = dot(x_counts, psi1_sum)
        p_gamma = -x_inverse_sum
        q_gamma = n / gamma - inverse_sum
        hessian = np.array(
            [
                [dot((x_counts * xs), (psi1_sum - polygamma(1, shape))), p_q, p_gamma],
                [p_q, dot(counts, psi1_sum) - n * polygamma(1, q), q_gamma],
                [
                    p_gamma,
                    q_gamma,
                    -n * q / gamma**2 + p * x_inverse_squared_sum + q * inverse_squared_sum,
                ],
            ]
        )
        return float(value), gradient, hessian

    def expected_spend(self, data: Any) -> FloatArray:
        """Expected spend per transaction of each customer: ``p(gamma + x zbar)/(px + q - 1)``.

        Every customer of ``data`` gets a value; one without a repeat purchase gets the
        population mean ``p gamma/(q - 1)``. Needs ``q > 1`` (else the mean is infinite).
        """
        p, q, gamma = (float(value) for value in self.fitted_params())
        if q <= 1.0:
            raise EngineInputError(
                f"{self.model_name}: q = {q:.4g} <= 1, the expected spend is infinite"
            )
        columns = customer_columns(data, self.required_columns, self.model_name)
        self._check_columns(columns)
        x, zbar = columns["frequency"], columns["monetary_value"]
        # zbar of a customer without repeat purchases carries no information: weight px = 0.
        zbar = np.where(x > 0, zbar, 0.0)
        result: FloatArray = p * (gamma + x * zbar) / (p * x + q - 1.0)
        return result


class TransactionModel(Protocol):
    """A fitted transaction model: expected purchases of each customer over the next ``t``."""

    def expected_purchases(self, t: Any, data: Any) -> FloatArray:
        """Expected purchases of each customer of ``data`` in the next ``t`` time units."""
        ...


def customer_lifetime_value(
    transaction_model: TransactionModel,
    spend_model: GammaGammaModel,
    data: Any,
    months: int = 12,
    discount_rate: float = 0.01,
    time_unit: str = "W",
) -> FloatArray:
    """Discounted expected spend of each customer over the next ``months`` months.

    As lifetimes' ``customer_lifetime_value``: for month ``m = 1 .. months`` the expected
    purchases in that month (``E[X(m f)] - E[X((m-1) f)]``, ``f`` time units a month: 4.345
    weeks or 30 days) times the customer's expected spend per transaction, discounted by
    ``(1 + discount_rate)^m`` (``discount_rate`` is monthly). ``data`` holds the columns both
    models read, in the transaction model's ``time_unit`` (``"W"`` or ``"D"``).
    """
    if time_unit not in ("W", "D"):
        raise EngineInputError(f"CLV: time_unit must be 'W' or 'D', got {time_unit!r}")
    if months < 1 or discount_rate <= -1.0:
        raise EngineInputError("CLV: months must be at least 1 and discount_rate above -1")
    per_month = WEEKS_PER_MONTH if time_unit == "W" else DAYS_PER_MONTH
    spend = spend_model.expected_spend(data)
    value = np.zeros_like(spend)
    previous = transaction_model.expected_purchases(0.0, data)
    for month in range(1, months + 1):
        cumulative = transaction_model.expected_purchases(month * per_month, data)
        value += spend * (cumulative - previous) / (1.0 + discount_rate) ** month
        previous = cumulative
    return value
