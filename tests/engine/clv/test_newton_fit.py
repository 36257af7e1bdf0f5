"""The Newton fit (analytic Hessian, subsample start) of BG/NBD and Gamma-Gamma.

Checked against what it replaces: the total log-likelihood, gradient and Hessian against the
per-customer terms (``_log_likelihood_terms``, themselves checked against the papers'
equations in test_beta_geo.py / test_gamma_gamma.py) and central differences, and the fitted
parameters against L-BFGS-B on the same customers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from patron.engine.clv import BetaGeoModel, GammaGammaModel
from patron.engine.clv.base import CHUNK_ROWS, SUBSAMPLE_ROWS, LikelihoodModel, value_codes

BG_PARAMS = np.array([0.24, 4.4, 0.79, 2.4])
GG_PARAMS = np.array([6.25, 3.74, 15.44])


def simulated_customers(size: int, seed: int) -> dict[str, np.ndarray]:
    """BG/NBD customers (CDNOW's parameters) with Gamma-Gamma spend and three heavy buyers."""
    rng = np.random.default_rng(seed)
    age = rng.integers(7, 547, size=size) / 7.0
    rate = rng.gamma(0.24, 1 / 4.4, size=size)
    dropout = rng.beta(0.79, 2.4, size=size)
    frequency = np.minimum(rng.poisson(rate * age), rng.geometric(dropout)).astype(float)
    recency = np.where(frequency > 0, np.ceil(rng.uniform(0.2, 1.0, size) * age * 7) / 7, 0.0)
    frequency[:3] = [1_000.0, 5_000.0, 10_000.0]
    recency[:3] = age[:3]
    nu = rng.gamma(3.74, 1 / 15.44, size=size)
    spend = rng.gamma(np.maximum(6.25 * frequency, 1e-9), 1 / (nu * np.maximum(frequency, 1)))
    monetary = np.where(frequency > 0, np.maximum(np.round(spend, 2), 0.01), 0.0)
    return {"frequency": frequency, "recency": recency, "T": age, "monetary_value": monetary}


def central_hessian(model: LikelihoodModel, params: np.ndarray, statistics: object) -> np.ndarray:
    """Central differences of the analytic total gradient, one parameter at a time."""
    rows = []
    for index in range(len(params)):
        step = 1e-5 * params[index]
        up, down = params.copy(), params.copy()
        up[index] += step
        down[index] -= step
        rows.append(
            (
                model._total_log_likelihood(up, statistics)[1]
                - model._total_log_likelihood(down, statistics)[1]
            )
            / (2 * step)
        )
    return np.array(rows)


@pytest.mark.parametrize(
    ("model", "params", "columns"),
    [
        (BetaGeoModel(), BG_PARAMS, ("frequency", "recency", "T")),
        (GammaGammaModel(), GG_PARAMS, ("frequency", "monetary_value")),
    ],
)
def test_total_log_likelihood_is_the_sum_over_customers_with_its_derivatives(
    model: LikelihoodModel, params: np.ndarray, columns: tuple[str, ...]
) -> None:
    # given more customers than one block of the per-customer passes, heavy buyers among them
    data = simulated_customers(3 * CHUNK_ROWS + 123, seed=3)
    checked = model.columns({name: data[name] for name in columns})

    # when the total and its derivatives are computed from the gathered statistics
    statistics = model._sufficient_statistics(checked)
    total, gradient, hessian = model._total_log_likelihood(params, statistics)

    # then they are the per-customer terms summed, and the Hessian is the gradient's slope
    terms, terms_gradient = model._log_likelihood_terms(params, checked)
    assert total == pytest.approx(math.fsum(terms), rel=1e-12)
    assert gradient == pytest.approx([math.fsum(row) for row in terms_gradient], rel=1e-9, abs=1e-6)
    assert np.allclose(hessian, hessian.T)
    assert hessian == pytest.approx(central_hessian(model, params, statistics), rel=1e-5)


@pytest.mark.parametrize(
    ("model_class", "columns"),
    [
        (BetaGeoModel, ("frequency", "recency", "T")),
        (GammaGammaModel, ("frequency", "monetary_value")),
    ],
)
def test_newton_fit_reaches_the_optimum_of_l_bfgs_b(
    model_class: type[LikelihoodModel], columns: tuple[str, ...]
) -> None:
    # given enough customers for the subsample start (four times SUBSAMPLE_ROWS)
    data = simulated_customers(5 * SUBSAMPLE_ROWS, seed=11)
    customers = {name: data[name] for name in columns}

    # when fitted by Newton (fit) and by L-BFGS-B (the fallback) on the same customers
    newton = model_class().fit(customers)
    reference = model_class()
    checked = reference.columns(customers)
    count = len(checked["frequency"])
    reference._fit_lbfgs(checked, np.log(reference._initial_vector()), count)

    # then both find the same maximum; Newton's is at least as high, its gradient is zero
    for name, value in reference.params_.items():
        assert newton.params_[name] == pytest.approx(value, rel=1e-5)
        assert newton.params_se_[name] == pytest.approx(reference.params_se_[name], rel=1e-3)
    assert newton.log_likelihood_ >= reference.log_likelihood_ - 1e-6
    fitted = newton.fitted_params()
    gradient = newton._total_log_likelihood(fitted, newton._sufficient_statistics(checked))[1]
    assert np.max(np.abs(gradient * fitted)) / count < 1e-9
    assert newton.n_customers_ == count


def test_newton_fit_with_a_penalty_balances_the_penalty_gradient() -> None:
    # given customers and an L2 penalty
    data = simulated_customers(2_000, seed=5)
    columns = {name: data[name] for name in ("frequency", "recency", "T")}
    penalizer = 0.01

    # when fitted
    model = BetaGeoModel(penalizer=penalizer).fit(columns)

    # then the mean log-likelihood gradient equals the penalty's: 2 * penalizer * params
    params = model.fitted_params()
    checked = model.columns(columns)
    _, gradient = model.log_likelihood_gradient(params, columns)
    assert gradient / len(checked["frequency"]) == pytest.approx(
        2 * penalizer * params, rel=1e-6, abs=1e-12
    )


def test_distinct_values_by_counting_and_by_sorting_agree() -> None:
    # given whole-number frequencies and fractional values
    rng = np.random.default_rng(2)
    whole = rng.poisson(3.0, size=1_000).astype(float)
    fractional = np.round(rng.uniform(0, 5, size=1_000), 1)
    for values in (whole, fractional):
        # when tabled
        distinct, codes, counts = value_codes(values)
        # then as np.unique: every value is its distinct value, counted
        expected, expected_counts = np.unique(values, return_counts=True)
        assert np.array_equal(distinct, expected)
        assert np.array_equal(counts, expected_counts)
        assert np.array_equal(distinct[codes], values)
