"""MBG/NBD: the CDNOW fit next to BTYDplus, the model's equations in plain Python, stability."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from patron.engine.clv.modified_beta_geo import ModifiedBetaGeoModel
from patron.engine.frames import EngineInputError
from tests.engine.clv.data import cdnow_summary, cdnow_summary_rows, hypergeometric_2f1

PARAMS = {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6}
"""A point near the CDNOW optimum, for checks that do not need a fit."""


def _fixed(params: dict[str, float]) -> ModifiedBetaGeoModel:
    model = ModifiedBetaGeoModel()
    model.params_ = dict(params)
    return model


def _plain_log_likelihood(
    r: float, alpha: float, a: float, b: float, x: int, t_x: float, big_t: float
) -> float:
    """Batislam et al. (2007): alive to T, or dropped out right after the last purchase.

    Written as the two events' probabilities, each with its own beta function.
    """

    def log_beta(p: float, q: float) -> float:
        return math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q)

    common = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha) - log_beta(a, b)
    alive = math.exp(common + log_beta(a, b + x + 1) - (r + x) * math.log(alpha + big_t))
    dropped = math.exp(common + log_beta(a + 1, b + x) - (r + x) * math.log(alpha + t_x))
    return math.log(alive + dropped)


def _plain_p_alive(
    r: float, alpha: float, a: float, b: float, x: int, t_x: float, T: float
) -> float:
    return 1.0 / (1.0 + a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x))


def _plain_total(
    params: np.ndarray, rows: tuple[tuple[int, int, float, float, float], ...]
) -> float:
    r, alpha, a, b = (float(value) for value in params)
    return math.fsum(
        _plain_log_likelihood(r, alpha, a, b, x, t_x, big_t) for _, x, t_x, big_t, _ in rows
    )


def test_cdnow_fit_matches_btydplus(shared_data: Path) -> None:
    # given the published 39-week CDNOW calibration summary
    summary = cdnow_summary(shared_data)

    # when MBG/NBD is fitted
    model = ModifiedBetaGeoModel().fit(summary)

    # then the parameters are BTYDplus's on the same data (r 0.525, alpha 6.183, a 0.891,
    # b 1.614, quoted by lifetimes' test_params_out_is_close_to_BTYDplus), and the likelihood
    # is a hair above BG/NBD's -9582.4 (one more way to explain silent customers)
    assert {name: round(value, 3) for name, value in model.params_.items()} == {
        "r": 0.525,
        "alpha": 6.183,
        "a": 0.891,
        "b": 1.614,
    }
    assert -9582.4 < model.log_likelihood_ < -9582.0
    assert all(np.isfinite(value) and value > 0 for value in model.params_se_.values())


def test_cdnow_log_likelihood_equals_the_plain_formula_and_is_a_maximum(shared_data: Path) -> None:
    # given the fitted model and every 50th customer's likelihood in plain Python
    summary = cdnow_summary(shared_data)
    model = ModifiedBetaGeoModel().fit(summary)
    optimum = np.array([model.params_[name] for name in model.parameter_names])
    rows = cdnow_summary_rows(shared_data)

    # when the model's per-customer log-likelihood and the likelihood around the optimum are taken
    per_customer = model.customer_log_likelihood(summary)
    total = _plain_total(optimum, rows)
    neighbours = [
        _plain_total(optimum * (1 + sign * 0.01 * np.eye(4)[index]), rows)
        for index in range(4)
        for sign in (1, -1)
    ]

    # then they agree, and every neighbour 1% away is less likely
    for index in range(0, len(rows), 50):
        assert per_customer[index] == pytest.approx(
            _plain_total(optimum, rows[index : index + 1]), rel=1e-10
        )
    assert model.log_likelihood_ == pytest.approx(total, rel=1e-12)
    assert all(value < total for value in neighbours)


def test_analytic_gradient_equals_finite_differences(shared_data: Path) -> None:
    # given a point away from the optimum
    summary = cdnow_summary(shared_data)
    model = ModifiedBetaGeoModel()
    point = np.array([0.4, 6.0, 1.3, 1.7])

    # when the analytic gradient and central differences are taken
    _, gradient = model.log_likelihood_gradient(point, summary)
    numeric = []
    for index in range(4):
        step = np.eye(4)[index] * 1e-6 * point[index]
        upper = model.log_likelihood_gradient(point + step, summary)[0]
        lower = model.log_likelihood_gradient(point - step, summary)[0]
        numeric.append((upper - lower) / (2 * step[index]))

    # then they agree, and at the fitted optimum the gradient is about zero
    assert gradient == pytest.approx(np.array(numeric), rel=1e-6)
    fitted = ModifiedBetaGeoModel().fit(summary)
    _, at_optimum = model.log_likelihood_gradient(fitted.fitted_params(), summary)
    assert np.all(np.abs(at_optimum * np.array(list(fitted.params_se_.values()))) < 1e-3)


def test_predictions_equal_the_plain_formulas(shared_data: Path) -> None:
    # given a model with known parameters and CDNOW customers of every kind
    rows = cdnow_summary_rows(shared_data)[:40]
    data = {
        "frequency": [float(row[1]) for row in rows],
        "recency": [row[2] for row in rows],
        "T": [row[3] for row in rows],
    }
    model = _fixed(PARAMS)
    r, alpha, a, b = PARAMS.values()

    # when P(alive), the conditional expectation over 39 weeks and a new customer's are asked
    p_alive = model.p_alive(data)
    expected = model.expected_purchases(39.0, data)
    new_customer = model.expected_purchases_new_customer(np.array([10.0, 39.0]))

    # then they equal the formulas with the power series of 2F1
    for index, (_, x, t_x, big_t, _) in enumerate(rows):
        alive = _plain_p_alive(r, alpha, a, b, x, t_x, big_t)
        z = 39.0 / (alpha + big_t + 39.0)
        bracket = 1.0 - (1.0 - z) ** (r + x) * hypergeometric_2f1(r + x, b + x + 1, a + b + x, z)
        assert p_alive[index] == pytest.approx(alive, rel=1e-12)
        assert expected[index] == pytest.approx((a + b + x) / (a - 1) * bracket * alive, rel=1e-9)
    # a customer without a repeat purchase may have dropped out at once
    assert p_alive[2] < 1.0
    for index, t in enumerate((10.0, 39.0)):
        z = t / (alpha + t)
        plain = b / (a - 1) * (1 - (1 - z) ** r * hypergeometric_2f1(r, b + 1, a + b, z))
        assert new_customer[index] == pytest.approx(plain, rel=1e-9)


def test_customers_with_ten_thousand_purchases_stay_finite() -> None:
    # given customers with up to 10,000 repeat purchases, some long silent
    data = {
        "frequency": np.array([10_000.0, 10_000.0, 5_000.0, 0.0, 1.0]),
        "recency": np.array([52.0, 30.0, 51.9, 0.0, 0.1]),
        "T": np.array([52.0, 52.0, 52.0, 52.0, 520.0]),
    }
    model = _fixed(PARAMS)

    # when the likelihood, its gradient and the predictions are computed
    total, gradient = model.log_likelihood_gradient(np.array(list(PARAMS.values())), data)
    outputs = [
        np.array([total]),
        gradient,
        model.p_alive(data),
        model.expected_purchases(1.0, data),
        model.expected_purchases(1000.0, data),
    ]

    # then nothing overflows
    for output in outputs:
        assert np.all(np.isfinite(output))


def test_bad_customer_tables_are_refused_before_fitting() -> None:
    # given a table with recency beyond T in two rows
    frame = pl.DataFrame(
        {"frequency": [1.0, 2.0, 1.0], "recency": [4.0, 5.0, 1.0], "T": [3.0, 4.0, 6.0]}
    )

    # when / then fitting it gives a clear error
    with pytest.raises(EngineInputError, match="recency is greater than T in 2 row"):
        ModifiedBetaGeoModel().fit(frame)
