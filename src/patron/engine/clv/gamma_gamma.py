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

from typing import Any, ClassVar, Protocol

import numpy as np
from scipy.special import digamma, gammaln

from patron.engine.clv.base import (
    Columns,
    FloatArray,
    LikelihoodModel,
    check_positive_where,
    customer_columns,
)
from patron.engine.frames import EngineInputError

WEEKS_PER_MONTH = 4.345
"""Weeks in a month for the CLV sum in weeks, as in lifetimes (52.14 weeks / 12)."""

DAYS_PER_MONTH = 30.0
"""Days in a month for the CLV sum in days, as in lifetimes."""


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
