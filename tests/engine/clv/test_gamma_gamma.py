"""Gamma-Gamma spend model and customer lifetime value: the published CDNOW fit, the
likelihood, gradient and expected spend against plain-Python formulas, CLV against a
plain-Python discounted sum, stability at 10,000 purchases, and the input checks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from patron.engine.clv.beta_geo import BetaGeoModel
from patron.engine.clv.gamma_gamma import GammaGammaModel, customer_lifetime_value
from patron.engine.frames import EngineInputError
from tests.engine.clv.data import agrees_to_three_digits, cdnow_summary, cdnow_summary_rows

PUBLISHED = {"p": 6.25, "q": 3.74, "gamma": 15.44}
"""Fader, Hardie & Lee (2005, JMR), the 946 repeat customers of the CDNOW sample."""

CUSTOMERS = {
    "frequency": np.array([1.0, 2.0, 7.0, 30.0, 0.0]),
    "monetary_value": np.array([11.77, 22.35, 40.0, 5.5, 0.0]),
}
PARAMS = np.array([6.25, 3.74, 15.44])


def log_density(params: Sequence[float] | np.ndarray, x: float, zbar: float) -> float:
    """``log f(zbar | p, q, gamma; x)`` of Fader & Hardie's Gamma-Gamma note, in plain Python."""
    p, q, gamma = (float(value) for value in params)
    return (
        math.lgamma(p * x + q)
        - math.lgamma(p * x)
        - math.lgamma(q)
        + q * math.log(gamma)
        + (p * x - 1) * math.log(zbar)
        + p * x * math.log(x)
        - (p * x + q) * math.log(gamma + x * zbar)
    )


@cache
def _fitted_on_cdnow(shared_data: Path) -> GammaGammaModel:
    return GammaGammaModel().fit(cdnow_summary(shared_data))


@pytest.fixture
def cdnow_model(shared_data: Path) -> GammaGammaModel:
    """The model fitted on the CDNOW calibration summary, fitted once for the module."""
    return _fitted_on_cdnow(shared_data)


def test_fit_on_cdnow_matches_the_published_parameters(
    cdnow_model: GammaGammaModel, shared_data: Path
) -> None:
    # given the CDNOW calibration summary, all 2,357 customers (fitted in the fixture)
    repeat_rows = [row for row in cdnow_summary_rows(shared_data) if row[1] > 0]
    # then the parameters agree with Fader, Hardie & Lee (2005), fitted on the repeat customers
    for name, published in PUBLISHED.items():
        assert agrees_to_three_digits(cdnow_model.params_[name], published), (
            name,
            cdnow_model.params_[name],
        )
    assert cdnow_model.n_customers_ == len(repeat_rows) == 946
    # and the log-likelihood is the plain-Python sum over the repeat customers
    p, q, gamma = (cdnow_model.params_[name] for name in PUBLISHED)
    expected = math.fsum(log_density((p, q, gamma), x, zbar) for _, x, _, _, zbar in repeat_rows)
    assert cdnow_model.log_likelihood_ == pytest.approx(expected, rel=1e-12)
    assert all(0 < cdnow_model.params_se_[name] < cdnow_model.params_[name] for name in PUBLISHED)


def test_gradient_matches_central_differences_of_the_plain_log_likelihood() -> None:
    # given parameters and some repeat customers
    repeat = {name: values[:4] for name, values in CUSTOMERS.items()}
    # when the analytic gradient is asked
    total, gradient = GammaGammaModel().log_likelihood_gradient(PARAMS, repeat)
    # then the total is the plain-Python sum and the gradient its slope along each parameter
    rows = list(zip(repeat["frequency"], repeat["monetary_value"], strict=True))
    assert total == pytest.approx(math.fsum(log_density(PARAMS, x, z) for x, z in rows))
    for index in range(3):
        step = 1e-6 * PARAMS[index]
        upper, lower = PARAMS.copy(), PARAMS.copy()
        upper[index] += step
        lower[index] -= step
        slope = math.fsum(log_density(upper, x, z) - log_density(lower, x, z) for x, z in rows) / (
            2 * step
        )
        assert gradient[index] == pytest.approx(slope, rel=1e-7), index


def test_expected_spend_is_the_posterior_mean_for_each_customer(
    cdnow_model: GammaGammaModel,
) -> None:
    # when the expected spend per transaction is asked, repeat customers and one without
    spend = cdnow_model.expected_spend(CUSTOMERS)
    # then it is p E[1/nu | x, zbar], nu | x, zbar ~ Gamma(px + q, gamma + x zbar); the
    # customer without a repeat purchase gets the population mean p gamma / (q - 1)
    p, q, gamma = (cdnow_model.params_[name] for name in PUBLISHED)
    expected = [
        p * (gamma + x * zbar) / (p * x + q - 1)
        for x, zbar in zip(CUSTOMERS["frequency"][:4], CUSTOMERS["monetary_value"][:4], strict=True)
    ] + [p * gamma / (q - 1)]
    assert spend == pytest.approx(expected, rel=1e-12)


def test_customers_with_ten_thousand_purchases_stay_finite() -> None:
    # given customers with 10,000 purchases among ordinary ones
    data = {
        "frequency": np.array([1.0, 2.0, 3.0, 10_000.0, 10_000.0]),
        "monetary_value": np.array([20.0, 35.0, 12.0, 25.0, 0.01]),
    }
    # when the likelihood and its gradient are computed, and the model fitted
    total, gradient = GammaGammaModel().log_likelihood_gradient(PARAMS, data)
    model = GammaGammaModel().fit(data)
    # then everything is finite and the likelihood is the plain-Python sum
    assert np.isfinite(total)
    assert np.all(np.isfinite(gradient))
    assert total == pytest.approx(
        math.fsum(
            log_density(PARAMS, x, z)
            for x, z in zip(data["frequency"], data["monetary_value"], strict=True)
        ),
        rel=1e-12,
    )
    assert all(np.isfinite(value) for value in model.params_.values())


def test_customer_lifetime_value_is_the_discounted_monthly_sum(shared_data: Path) -> None:
    # given BG/NBD and Gamma-Gamma fitted on the CDNOW calibration summary (weeks)
    summary = cdnow_summary(shared_data)
    transactions = BetaGeoModel().fit(summary)
    spend = _fitted_on_cdnow(shared_data)
    # when the 12-month CLV at 1% a month is computed
    value = customer_lifetime_value(transactions, spend, summary, months=12, discount_rate=0.01)
    # then, for a few customers, it is the plain sum over months of the purchases expected in
    # that month (4.345 weeks) times the expected spend, discounted by 1.01^month
    p, q, gamma = (spend.params_[name] for name in PUBLISHED)
    for index in (0, 1, 2, 100, 1500):
        customer = summary[index]
        x = float(customer["frequency"][0])
        zbar = float(customer["monetary_value"][0]) if x > 0 else 0.0
        spend_per_purchase = p * (gamma + x * zbar) / (p * x + q - 1)
        expected = 0.0
        for month in range(1, 13):
            during_month = float(
                transactions.expected_purchases(month * 4.345, customer)[0]
                - transactions.expected_purchases((month - 1) * 4.345, customer)[0]
            )
            expected += spend_per_purchase * during_month / 1.01**month
        assert value[index] == pytest.approx(expected, rel=1e-12), index
    assert value.shape == (2357,)


def test_customer_lifetime_value_in_days_counts_thirty_day_months(shared_data: Path) -> None:
    # given the models fitted in weeks, and the same customers in days
    summary = cdnow_summary(shared_data)
    transactions = BetaGeoModel().fit(summary)
    spend = _fitted_on_cdnow(shared_data)
    # when the CLV over one month is asked in weeks and in days
    weekly = customer_lifetime_value(transactions, spend, summary, months=1, discount_rate=0.0)
    daily = customer_lifetime_value(
        transactions, spend, summary, months=1, discount_rate=0.0, time_unit="D"
    )
    # then a month is 4.345 time units in weeks and 30 in days
    expected_spend = spend.expected_spend(summary)
    assert weekly == pytest.approx(
        expected_spend * transactions.expected_purchases(4.345, summary), rel=1e-12
    )
    assert daily == pytest.approx(
        expected_spend * transactions.expected_purchases(30.0, summary), rel=1e-12
    )


def test_fit_refuses_a_repeat_customer_without_spend_before_fitting() -> None:
    # given a customer with two repeat purchases and a mean spend of zero
    data = {"frequency": [2.0, 1.0, 0.0], "monetary_value": [0.0, 10.0, 0.0]}
    # when fitted, then the error names the column and the number of rows
    with pytest.raises(EngineInputError, match="monetary_value is zero or negative in 1 row"):
        GammaGammaModel().fit(data)


def test_fit_refuses_negative_spend_and_missing_columns() -> None:
    with pytest.raises(EngineInputError, match="monetary_value is negative in 1 row"):
        GammaGammaModel().fit({"frequency": [2.0, 1.0], "monetary_value": [-3.0, 10.0]})
    with pytest.raises(EngineInputError, match="lacks the column\\(s\\) monetary_value"):
        GammaGammaModel().fit({"frequency": [2.0, 1.0]})


def test_fit_refuses_data_without_a_repeat_customer() -> None:
    with pytest.raises(EngineInputError, match="no customer with a repeat purchase"):
        GammaGammaModel().fit({"frequency": [0.0, 0.0], "monetary_value": [0.0, 0.0]})


def test_customer_lifetime_value_refuses_an_unknown_time_unit(shared_data: Path) -> None:
    summary = cdnow_summary(shared_data)
    with pytest.raises(EngineInputError, match="time_unit must be 'W' or 'D'"):
        customer_lifetime_value(
            BetaGeoModel().fit(summary), _fitted_on_cdnow(shared_data), summary, time_unit="M"
        )


def test_standard_errors_are_those_of_the_hessian_of_the_plain_likelihood(
    cdnow_model: GammaGammaModel, shared_data: Path
) -> None:
    # given the CDNOW fit and the plain-Python log-likelihood of the repeat customers
    repeat = [(x, zbar) for _, x, _, _, zbar in cdnow_summary_rows(shared_data) if x > 0]
    fitted = np.array([cdnow_model.params_[name] for name in PUBLISHED])

    def total(params: np.ndarray) -> float:
        return math.fsum(log_density(params, x, zbar) for x, zbar in repeat)

    # when the Hessian is taken by second central differences of that sum
    steps = 1e-4 * fitted
    hessian = np.empty((3, 3))
    for row in range(3):
        for column in range(row + 1):
            corners = []
            for sign_row, sign_column in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                shifted = fitted.copy()
                shifted[row] += sign_row * steps[row]
                shifted[column] += sign_column * steps[column]
                corners.append(sign_row * sign_column * total(shifted))
            hessian[row, column] = hessian[column, row] = -math.fsum(corners) / (
                4 * steps[row] * steps[column]
            )
    standard_errors = np.sqrt(np.diag(np.linalg.inv(hessian)))
    # then the model's standard errors are its inverse's
    for index, name in enumerate(PUBLISHED):
        assert cdnow_model.params_se_[name] == pytest.approx(standard_errors[index], rel=1e-3)
