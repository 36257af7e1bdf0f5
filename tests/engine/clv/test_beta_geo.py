"""BG/NBD: the published CDNOW fit, the paper's equations in plain Python, stability, checks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from patron.engine.clv.base import ModelNotFittedError, distinct_rows
from patron.engine.clv.beta_geo import BetaGeoModel
from patron.engine.frames import EngineInputError
from tests.engine.clv.data import (
    HOLDOUT_WEEKS,
    cdnow_holdout_purchases,
    cdnow_summary,
    cdnow_summary_rows,
    hypergeometric_2f1,
)

PARAMS = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
"""A point near the CDNOW optimum, for checks that do not need a fit."""


def _fixed(params: dict[str, float]) -> BetaGeoModel:
    model = BetaGeoModel()
    model.params_ = dict(params)
    return model


def _plain_log_likelihood(
    r: float, alpha: float, a: float, b: float, x: int, t_x: float, big_t: float
) -> float:
    """Fader, Hardie & Lee (2005) eq. 6, term by term with math.lgamma."""

    def log_beta(p: float, q: float) -> float:
        return math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q)

    common = math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha)
    likelihood = math.exp(
        log_beta(a, b + x) - log_beta(a, b) + common - (r + x) * math.log(alpha + big_t)
    )
    if x > 0:
        likelihood += math.exp(
            log_beta(a + 1, b + x - 1) - log_beta(a, b) + common - (r + x) * math.log(alpha + t_x)
        )
    return math.log(likelihood)


def _plain_p_alive(
    r: float, alpha: float, a: float, b: float, x: int, t_x: float, T: float
) -> float:
    if x == 0:
        return 1.0
    return 1.0 / (1.0 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))


def _plain_expected(
    r: float,
    alpha: float,
    a: float,
    b: float,
    x: int,
    t_x: float,
    T: float,
    t: float,
) -> float:
    """Eq. 10 of the paper as printed (power times the series of 2F1)."""
    z = t / (alpha + T + t)
    bracket = 1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hypergeometric_2f1(
        r + x, b + x, a + b + x - 1, z
    )
    return (a + b + x - 1) / (a - 1) * bracket * _plain_p_alive(r, alpha, a, b, x, t_x, T)


def test_cdnow_fit_matches_the_published_parameters(shared_data: Path) -> None:
    # given the published 39-week CDNOW calibration summary
    summary = cdnow_summary(shared_data)

    # when BG/NBD is fitted
    model = BetaGeoModel().fit(summary)

    # then the parameters and log-likelihood are those of Fader, Hardie & Lee (2005)
    assert model is not None
    assert {name: round(value, 3) for name, value in model.params_.items()} == {
        "r": 0.243,
        "alpha": 4.414,
        "a": 0.793,
        "b": 2.426,
    }
    assert round(model.log_likelihood_, 1) == -9582.4
    assert model.n_customers_ == 2357


def test_cdnow_log_likelihood_equals_the_paper_equation_per_customer(shared_data: Path) -> None:
    # given the fitted model and, for every 50th customer, eq. 6 in plain Python
    summary = cdnow_summary(shared_data)
    model = BetaGeoModel().fit(summary)
    r, alpha, a, b = (model.params_[name] for name in ("r", "alpha", "a", "b"))
    rows = cdnow_summary_rows(shared_data)
    picked = list(range(0, len(rows), 50))

    # when the model gives each customer's log-likelihood
    per_customer = model.customer_log_likelihood(summary)

    # then they agree, and the total is the fitted log-likelihood
    for index in picked:
        _, x, t_x, big_t, _ = rows[index]
        assert per_customer[index] == pytest.approx(
            _plain_log_likelihood(r, alpha, a, b, x, t_x, big_t), rel=1e-10
        )
    assert per_customer.sum() == pytest.approx(model.log_likelihood_, rel=1e-12)


def test_cdnow_optimum_has_a_zero_gradient_and_standard_errors_from_the_curvature(
    shared_data: Path,
) -> None:
    # given the fitted model
    summary = cdnow_summary(shared_data)
    model = BetaGeoModel().fit(summary)
    optimum = np.array([model.params_[name] for name in model.parameter_names])

    # when the gradient and a Hessian by second differences of the log-likelihood are taken
    _, gradient = model.log_likelihood_gradient(optimum, summary)
    steps = 1e-4 * optimum
    hessian = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            shift_i = np.eye(4)[i] * steps[i]
            shift_j = np.eye(4)[j] * steps[j]
            values = [
                model.log_likelihood_gradient(optimum + si * shift_i + sj * shift_j, summary)[0]
                for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1))
            ]
            hessian[i, j] = (values[0] - values[1] - values[2] + values[3]) / (
                4 * steps[i] * steps[j]
            )
    standard_errors = np.sqrt(np.diag(np.linalg.inv(-hessian)))

    # then the gradient vanishes (relative to the curvature) and the errors agree
    assert np.all(np.abs(gradient) * np.array(list(model.params_se_.values())) < 1e-3)
    for name, expected in zip(model.parameter_names, standard_errors, strict=True):
        assert model.params_se_[name] == pytest.approx(expected, rel=1e-3)


def test_analytic_gradient_equals_finite_differences(shared_data: Path) -> None:
    # given a point away from the optimum
    summary = cdnow_summary(shared_data)
    model = BetaGeoModel()
    point = np.array([0.4, 6.0, 1.3, 1.7])

    # when the analytic gradient and central differences are taken
    _, gradient = model.log_likelihood_gradient(point, summary)
    numeric = []
    for index in range(4):
        step = np.eye(4)[index] * 1e-6 * point[index]
        upper = model.log_likelihood_gradient(point + step, summary)[0]
        lower = model.log_likelihood_gradient(point - step, summary)[0]
        numeric.append((upper - lower) / (2 * step[index]))

    # then they agree
    assert gradient == pytest.approx(np.array(numeric), rel=1e-6)


def test_predictions_equal_the_paper_equations(shared_data: Path) -> None:
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

    # then they equal eqs. 10 and 9 and the P(alive) note, evaluated in plain Python
    for index, (_, x, t_x, big_t, _) in enumerate(rows):
        assert p_alive[index] == pytest.approx(
            _plain_p_alive(r, alpha, a, b, x, t_x, big_t), rel=1e-12
        )
        assert expected[index] == pytest.approx(
            _plain_expected(r, alpha, a, b, x, t_x, big_t, 39.0), rel=1e-9
        )
    for index, t in enumerate((10.0, 39.0)):
        plain = (
            (a + b - 1)
            / (a - 1)
            * (
                1
                - (alpha / (alpha + t)) ** r * hypergeometric_2f1(r, b, a + b - 1, t / (alpha + t))
            )
        )
        assert new_customer[index] == pytest.approx(plain, rel=1e-9)


def test_cdnow_holdout_forecast_next_to_the_actuals(shared_data: Path) -> None:
    # given the calibration fit and the actual repeat purchases of the 39-week holdout
    summary = cdnow_summary(shared_data)
    model = BetaGeoModel().fit(summary)
    actual = cdnow_holdout_purchases(shared_data)
    actual_by_customer = np.array([actual[customer] for customer in summary["customer_id"]])

    # when each customer's holdout purchases are forecast
    forecast = model.expected_purchases(HOLDOUT_WEEKS, summary)

    # then the total and the mean per calibration frequency track the actuals
    frequency = summary["frequency"].to_numpy()
    total_forecast, total_actual = forecast.sum(), actual_by_customer.sum()
    print(f"\nholdout repeat purchases: forecast {total_forecast:.1f}, actual {total_actual}")
    for bucket in range(8):
        members = frequency == bucket if bucket < 7 else frequency >= 7
        print(
            f"x={bucket}{'+' if bucket == 7 else ' '} customers {members.sum():4d}  "
            f"forecast {forecast[members].mean():.3f}  "
            f"actual {actual_by_customer[members].mean():.3f}"
        )
    # The conditional forecast of the calibrated model undershoots the sample's 1,882 holdout
    # purchases by about 12%, as the paper's conditional-expectation plot shows for x >= 1.
    r, alpha, a, b = model.fitted_params()
    plain_total = math.fsum(
        _plain_expected(r, alpha, a, b, x, t_x, big_t, HOLDOUT_WEEKS)
        for _, x, t_x, big_t, _ in cdnow_summary_rows(shared_data)
    )
    assert forecast.sum() == pytest.approx(plain_total, rel=1e-9)
    assert abs(forecast.sum() - actual_by_customer.sum()) / actual_by_customer.sum() < 0.15
    assert abs(forecast[frequency == 0].mean() - actual_by_customer[frequency == 0].mean()) < 0.05


def test_customers_with_ten_thousand_purchases_stay_finite() -> None:
    # given customers with up to 10,000 repeat purchases, some long silent
    data = {
        "frequency": np.array([10_000.0, 10_000.0, 5_000.0, 0.0, 1.0]),
        "recency": np.array([52.0, 30.0, 51.9, 0.0, 0.1]),
        "T": np.array([52.0, 52.0, 52.0, 52.0, 520.0]),
    }
    model = _fixed(PARAMS)

    # when the likelihood, its gradient and the predictions are computed
    terms, gradient = model._log_likelihood_terms(
        np.array(list(PARAMS.values())), model.columns(data)
    )
    outputs = [
        terms,
        gradient,
        model.p_alive(data),
        model.expected_purchases(1.0, data),
        model.expected_purchases(1000.0, data),
    ]

    # then nothing overflows, and a fit with such customers converges
    for output in outputs:
        assert np.all(np.isfinite(output))
    ordinary = {"frequency": [0.0, 1.0, 2.0] * 50, "recency": [0.0, 10.0, 30.0] * 50}
    mixed = {
        "frequency": np.concatenate([data["frequency"], ordinary["frequency"]]),
        "recency": np.concatenate([data["recency"], ordinary["recency"]]),
        "T": np.concatenate([data["T"], np.full(150, 52.0)]),
    }
    fitted = BetaGeoModel().fit(mixed)
    assert all(np.isfinite(value) for value in fitted.params_.values())


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"frequency": [1.0], "recency": [2.0]}, "lacks the column(s) T"),
        ({"frequency": [-1.0], "recency": [0.0], "T": [3.0]}, "frequency is negative in 1 row"),
        (
            {"frequency": [1.0, 2.0], "recency": [4.0, 5.0], "T": [3.0, 6.0]},
            "recency is greater than T in 1 row",
        ),
        (
            {"frequency": [1.0], "recency": [float("nan")], "T": [3.0]},
            "recency is missing or not finite",
        ),
    ],
)
def test_bad_customer_tables_are_refused_before_fitting(
    columns: dict[str, list[float]], message: str
) -> None:
    # given a table with a wrong column or value, as a Polars frame
    frame = pl.DataFrame(columns)

    # when / then fitting it gives a clear error
    with pytest.raises(EngineInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BetaGeoModel().fit(frame)


def test_predictions_need_a_fit() -> None:
    # given an unfitted model / when / then predicting says so
    with pytest.raises(ModelNotFittedError, match="not fitted"):
        BetaGeoModel().p_alive({"frequency": [1.0], "recency": [1.0], "T": [2.0]})


def test_penalizer_moves_the_optimum_to_where_the_penalty_balances_the_likelihood(
    shared_data: Path,
) -> None:
    # given the CDNOW summary and an L2 penalty
    summary = cdnow_summary(shared_data)
    penalizer = 0.01

    # when the model is fitted with it
    model = BetaGeoModel(penalizer=penalizer).fit(summary)
    params = model.fitted_params()
    _, gradient = model.log_likelihood_gradient(params, summary)

    # then it is stationary for mean(-LL) + penalizer * sum(params^2): LL' = 2 n penalizer params
    assert gradient == pytest.approx(2 * 2357 * penalizer * params, rel=1e-3, abs=1e-2)
    assert model.params_["alpha"] < 4.414


def test_any_dataframe_kind_gives_the_same_fit(shared_data: Path) -> None:
    # given the CDNOW summary as a lazy Polars frame, a pandas frame and plain lists
    summary = cdnow_summary(shared_data)
    as_lists = {column: summary[column].to_list() for column in ("frequency", "recency", "T")}

    # when each is fitted
    fits = [
        BetaGeoModel().fit(data).params_ for data in (summary.lazy(), summary.to_pandas(), as_lists)
    ]

    # then the parameters are the same
    assert fits[0] == fits[1] == fits[2]


def test_unknown_initial_parameters_are_refused() -> None:
    # given a misspelt starting value / when / then fitting names the model's parameters
    data = {"frequency": [1.0], "recency": [1.0], "T": [2.0]}
    with pytest.raises(EngineInputError, match="unknown initial parameter"):
        BetaGeoModel(initial_params={"beta": 1.0}).fit(data)


def test_identical_customers_are_evaluated_once_with_their_count() -> None:
    # given five customers, three of them alike
    columns = {
        "frequency": np.array([0.0, 2.0, 0.0, 0.0, 1.0]),
        "recency": np.array([0.0, 3.0, 0.0, 0.0, 1.0]),
        "T": np.array([5.0, 5.0, 5.0, 5.0, 4.0]),
    }

    # when the distinct rows are taken
    distinct, weights = distinct_rows(columns)

    # then each distinct customer appears once, weighted by how often it occurs
    rows = sorted(
        zip(distinct["frequency"], distinct["recency"], distinct["T"], weights, strict=True)
    )
    assert rows == [(0.0, 0.0, 5.0, 3.0), (1.0, 1.0, 4.0, 1.0), (2.0, 3.0, 5.0, 1.0)]


def test_expectations_at_a_equal_to_one_are_the_limit_of_the_formula() -> None:
    # given a fit with a = 1 exactly, where the paper's (a + b + x - 1)/(a - 1) factor is 0/0,
    # and the same fit either side of it, where the formula holds
    summary = {
        "frequency": np.array([0.0, 1.0, 4.0, 30.0]),
        "recency": np.array([0.0, 10.0, 30.0, 70.0]),
        "T": np.array([20.0, 40.0, 60.0, 78.0]),
    }
    at_one = _fixed({"r": 0.5, "alpha": 6.0, "a": 1.0, "b": 2.5})
    step = 1e-3
    below = _fixed({"r": 0.5, "alpha": 6.0, "a": 1.0 - step, "b": 2.5})
    above = _fixed({"r": 0.5, "alpha": 6.0, "a": 1.0 + step, "b": 2.5})
    # then the values at a = 1 are finite and the midpoint of the sides (error O(step^2))
    for horizon in (1.0, 39.0):
        value = at_one.expected_purchases(horizon, summary)
        assert np.isfinite(value).all()
        sides = (
            below.expected_purchases(horizon, summary) + above.expected_purchases(horizon, summary)
        ) / 2.0
        np.testing.assert_allclose(value, sides, rtol=1e-5)
        new = at_one.expected_purchases_new_customer(horizon)
        sides_new = (
            below.expected_purchases_new_customer(horizon)
            + above.expected_purchases_new_customer(horizon)
        ) / 2.0
        np.testing.assert_allclose(new, sides_new, rtol=1e-5)
