"""Fit diagnostics: P(X(t) = x), the frequency histogram, the tracking plot and the conditional
expectations, against the papers' equations written out here and numerical integration."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl
import pytest
from scipy import integrate, stats

from patron.engine.clv.base import ModelNotFittedError
from patron.engine.clv.beta_geo import BetaGeoModel
from patron.engine.clv.diagnostics import (
    conditional_expectations,
    cumulative_tracking,
    frequency_histogram,
    probability_of_purchases,
)
from patron.engine.clv.gamma_gamma import GammaGammaModel
from patron.engine.clv.modified_beta_geo import ModifiedBetaGeoModel
from patron.engine.clv.pareto_nbd import ParetoNBDModel
from patron.engine.frames import EngineInputError
from tests.engine.clv.data import (
    CALIBRATION_END,
    HOLDOUT_WEEKS,
    OBSERVATION_END,
    cdnow_holdout_purchases,
    cdnow_sample_rows,
    cdnow_sample_transactions,
    cdnow_summary,
    hypergeometric_2f1,
)

BG = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
"""The CDNOW BG/NBD fit (docs/clv.md)."""
MBG = {"r": 0.5248, "alpha": 6.183, "a": 0.8914, "b": 1.614}
PARETO = {"r": 0.5533, "alpha": 10.578, "s": 0.6062, "beta": 11.668}


Model = TypeVar("Model", BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel)


def _fixed(model_class: type[Model], params: dict[str, float]) -> Model:
    model = model_class()
    model.params_ = dict(params)
    return model


def _plain_bg_probability(params: dict[str, float], x: int, t: float) -> float:
    """Fader, Hardie & Lee (2005) eq. 8 as printed: the NBD terms summed one by one."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]

    def log_beta(p: float, q: float) -> float:
        return math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q)

    def nbd(j: int) -> float:
        return math.exp(
            math.lgamma(r + j)
            - math.lgamma(r)
            - math.lgamma(j + 1)
            + r * math.log(alpha / (alpha + t))
            + (j * math.log(t / (alpha + t)) if j else 0.0)
        )

    value = math.exp(log_beta(a, b + x) - log_beta(a, b)) * nbd(x)
    if x > 0:
        value += math.exp(log_beta(a + 1, b + x - 1) - log_beta(a, b)) * (
            1.0 - math.fsum(nbd(j) for j in range(x))
        )
    return value


def _integrated_mbg_probability(x: int, t: float) -> float:
    """MBG/NBD P(X(t) = x) by integrating over the purchase rate and the drop-out probability.

    Given lambda and p, the customer drops out at purchase D (0 = right after the first,
    P(D = k) = p (1 - p)^k) and would make N ~ Poisson(lambda t) purchases without dropping
    out; X(t) = min(N, D) = x when N = x and D > x, or D = x and N >= x.
    """
    r, alpha, a, b = MBG["r"], MBG["alpha"], MBG["a"], MBG["b"]
    beta_pdf = stats.beta(a, b).pdf
    stay = integrate.quad(lambda p: (1 - p) ** (x + 1) * beta_pdf(p), 0, 1)[0]
    drop = integrate.quad(lambda p: p * (1 - p) ** x * beta_pdf(p), 0, 1)[0]
    gamma_pdf = stats.gamma(r, scale=1 / alpha).pdf

    def given_rate(rate: float) -> float:
        poisson = stats.poisson(rate * t)
        return float((stay * poisson.pmf(x) + drop * poisson.sf(x - 1)) * gamma_pdf(rate))

    # The gamma density has an integrable spike at 0 (r < 1): split the range there.
    return float(
        integrate.quad(given_rate, 0, 0.05, limit=200)[0]
        + integrate.quad(given_rate, 0.05, np.inf, limit=200)[0]
    )


def _integrated_pareto_probability(x: int, t: float) -> float:
    """Pareto/NBD P(X(t) = x): alive at t with x purchases, or died at tau < t with x by then,
    the purchase rate integrated out (NBD), the death rate's density integrated with quad."""
    r, alpha, s, beta = PARETO["r"], PARETO["alpha"], PARETO["s"], PARETO["beta"]

    def nbd(elapsed: float) -> float:
        return float(stats.nbinom(r, alpha / (alpha + elapsed)).pmf(x))

    alive = nbd(t) * (beta / (beta + t)) ** s
    # Death time density of the Pareto (Lomax) lifetime: s beta^s / (beta + tau)^(s + 1).
    died = integrate.quad(
        lambda tau: nbd(tau) * s * beta**s / (beta + tau) ** (s + 1), 0, t, epsabs=0, epsrel=1e-12
    )[0]
    return alive + died


@pytest.mark.parametrize(
    ("model_class", "params"),
    [(BetaGeoModel, BG), (ModifiedBetaGeoModel, MBG), (ParetoNBDModel, PARETO)],
)
def test_probabilities_over_x_sum_to_one(
    model_class: type[BetaGeoModel] | type[ModifiedBetaGeoModel] | type[ParetoNBDModel],
    params: dict[str, float],
) -> None:
    # given a model at its CDNOW parameters and horizons up to the 78 weeks of the data
    model = model_class()
    model.params_ = dict(params)
    counts = np.arange(600)

    for t in (0.0, 0.5, 39.0, 78.0):
        # when P(X(t) = x) is evaluated for x = 0 ... 599
        probabilities = probability_of_purchases(model, counts, t)

        # then they are probabilities and add up to one (the tail beyond 600 is negligible)
        assert np.all(probabilities >= 0)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-9)
    assert probability_of_purchases(model, 0, 0.0) == pytest.approx(1.0, rel=1e-14)


def test_bg_probability_equals_the_paper_equation() -> None:
    model = _fixed(BetaGeoModel, BG)
    for x in (0, 1, 2, 5, 12, 40):
        for t in (1.0, 38.86, 78.0):
            assert probability_of_purchases(model, x, t) == pytest.approx(
                _plain_bg_probability(BG, x, t), rel=1e-9
            )


def test_mbg_probability_equals_integration_over_rate_and_dropout() -> None:
    model = _fixed(ModifiedBetaGeoModel, MBG)
    for x in (0, 1, 3, 10):
        for t in (5.0, 39.0):
            assert probability_of_purchases(model, x, t) == pytest.approx(
                _integrated_mbg_probability(x, t), rel=1e-6
            )


def test_pareto_probability_equals_integration_over_the_death_time() -> None:
    model = _fixed(ParetoNBDModel, PARETO)
    for x in (0, 1, 4, 20, 60):
        for t in (2.0, 39.0, 78.0):
            assert probability_of_purchases(model, x, t) == pytest.approx(
                _integrated_pareto_probability(x, t), rel=1e-9
            )
    # alpha > beta takes the other side of the integrand's last factor
    swapped = _fixed(ParetoNBDModel, {"r": 0.5533, "alpha": 11.668, "s": 0.6062, "beta": 2.0})
    assert probability_of_purchases(swapped, np.arange(400), 39.0).sum() == pytest.approx(
        1.0, abs=1e-9
    )


def test_cdnow_frequency_histogram_matches_the_paper_figure_2(shared_data: Path) -> None:
    # given the BG/NBD fitted on the CDNOW calibration summary
    summary = cdnow_summary(shared_data)
    model = BetaGeoModel().fit(summary)

    # when the calibration frequencies are tabulated against the model
    histogram = frequency_histogram(model, summary, max_frequency=7)
    print("\n" + str(histogram))

    # then the actual column counts the summary, the expected ones sum to the customers ...
    frequencies = Counter(min(int(x), 7) for x in summary["frequency"])
    assert histogram["actual"].to_list() == [frequencies[x] for x in range(8)]
    assert histogram["label"].to_list() == ["0", "1", "2", "3", "4", "5", "6", "7+"]
    assert histogram["expected"].sum() == pytest.approx(2357, rel=1e-12)
    # ... and equal eq. 8 summed over the customers' ages
    r, alpha, a, b = model.fitted_params()
    fitted = {"r": r, "alpha": alpha, "a": a, "b": b}
    ages = Counter(summary["T"].to_list())
    plain = [
        math.fsum(count * _plain_bg_probability(fitted, x, age) for age, count in ages.items())
        for x in range(7)
    ]
    assert histogram["expected"].to_list()[:7] == pytest.approx(plain, rel=1e-9)
    # Figure 2's shape: 1,411 customers without a repeat purchase against about 1,408 expected,
    # a steadily falling count, every bucket within 15% of the actual one.
    expected = histogram["expected"].to_numpy()
    actual = histogram["actual"].to_numpy()
    assert actual[0] == 1411
    assert expected[0] == pytest.approx(1411, abs=10)
    assert np.all(np.diff(expected[:7]) < 0)
    assert np.all(np.abs(expected - actual) < 0.15 * actual)


def _holdout_summary(shared_data: Path) -> pl.DataFrame:
    holdout = cdnow_holdout_purchases(shared_data)
    summary = cdnow_summary(shared_data)
    return summary.with_columns(
        pl.Series("frequency_holdout", [float(holdout[c]) for c in summary["customer_id"]]),
        pl.lit(HOLDOUT_WEEKS).alias("duration_holdout"),
    )


def test_cdnow_conditional_expectations_are_bucket_means(shared_data: Path) -> None:
    # given the calibration fit and each customer's actual holdout purchases
    summary = _holdout_summary(shared_data)
    model = BetaGeoModel().fit(summary)

    # when the holdout is compared per calibration frequency
    table = conditional_expectations(model, summary, max_frequency=7)
    print("\n" + str(table))

    # then each bucket holds the means of the actuals and of model.expected_purchases
    forecast = model.expected_purchases(HOLDOUT_WEEKS, summary)
    frequency = summary["frequency"].to_list()
    actual = summary["frequency_holdout"].to_list()
    for row in table.iter_rows(named=True):
        members = [
            index
            for index, x in enumerate(frequency)
            if (x == row["frequency"] if row["frequency"] < 7 else x >= 7)
        ]
        assert row["customers"] == len(members)
        assert row["actual_mean"] == pytest.approx(
            math.fsum(actual[i] for i in members) / len(members), rel=1e-12
        )
        assert row["expected_mean"] == pytest.approx(
            math.fsum(forecast[i] for i in members) / len(members), rel=1e-12
        )
    assert table["customers"].sum() == 2357
    assert table["actual"].sum() == 1882


def test_conditional_expectations_need_the_holdout_columns(shared_data: Path) -> None:
    summary = cdnow_summary(shared_data)
    model = _fixed(BetaGeoModel, BG)
    with pytest.raises(EngineInputError, match="frequency_holdout"):
        conditional_expectations(model, summary)


def _plain_new_customer_expectation(params: dict[str, float], t: float) -> float:
    """Fader, Hardie & Lee (2005) eq. 9 with the hypergeometric series."""
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    if t == 0:
        return 0.0
    return (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + t)) ** r * hypergeometric_2f1(r, b, a + b - 1, t / (alpha + t)))
    )


def test_cdnow_tracking_plot_totals(shared_data: Path) -> None:
    # given the BG/NBD fitted on the calibration summary and the raw transactions
    summary = _holdout_summary(shared_data)
    model = BetaGeoModel().fit(summary)
    transactions = cdnow_sample_transactions(shared_data)

    # when the 78 weeks are tracked
    tracking = cumulative_tracking(
        model,
        transactions,
        "customer_id",
        "ordered_at",
        observation_end=OBSERVATION_END,
        calibration_end=CALIBRATION_END,
    )
    print("\n" + str(tracking.filter(pl.col("period").is_in([1, 13, 26, 39, 52, 65, 78]))))

    # then there are 78 weeks, 39 of calibration, ending on the calibration and data ends
    assert tracking.height == 78
    assert tracking["period_end"][38] == CALIBRATION_END
    assert tracking["period_end"][77] == OBSERVATION_END
    assert tracking["is_holdout"].to_list() == [False] * 39 + [True] * 39
    # the actual repeat purchases to week 39 are the calibration frequencies, to week 78 those
    # plus the holdout's
    calibration_total = int(summary["frequency"].sum())
    assert tracking["actual_cumulative"][38] == calibration_total == 2457
    assert tracking["actual_cumulative"][77] == calibration_total + 1882
    # weekly counts, from the raw rows: a customer's distinct days after their first one
    first_day: dict[int, dt.date] = {}
    days: set[tuple[int, dt.date]] = set()
    for customer, _, day, _, _ in cdnow_sample_rows(shared_data):
        days.add((customer, day))
        first_day[customer] = min(day, first_day.get(customer, day))
    weekly = Counter(
        (day - dt.date(1997, 1, 1)).days // 7 + 1
        for customer, day in days
        if day > first_day[customer]
    )
    assert tracking["actual"].to_list() == [weekly[week] for week in range(1, 79)]
    # the model: eq. 9 from each customer's first purchase to the end of week 78
    r, alpha, a, b = model.fitted_params()
    fitted = {"r": r, "alpha": alpha, "a": a, "b": b}
    acquired = Counter(first_day.values())
    plain_78 = math.fsum(
        count * _plain_new_customer_expectation(fitted, (OBSERVATION_END - day).days / 7)
        for day, count in acquired.items()
    )
    assert tracking["expected_cumulative"][77] == pytest.approx(plain_78, rel=1e-9)
    # Figure 3: the model tracks the holdout within 5% at week 78 (4,161 against 4,339)
    assert abs(plain_78 - 4339) / 4339 < 0.05
    assert np.all(np.diff(tracking["expected_cumulative"].to_numpy()) > 0)


def test_tracking_period_start_cannot_follow_a_first_purchase(shared_data: Path) -> None:
    transactions = cdnow_sample_transactions(shared_data)
    with pytest.raises(EngineInputError, match="period_start"):
        cumulative_tracking(
            _fixed(BetaGeoModel, BG),
            transactions,
            "customer_id",
            "ordered_at",
            observation_end=OBSERVATION_END,
            period_start=dt.date(1997, 2, 1),
        )


def test_unfitted_and_unsupported_models_are_refused() -> None:
    summary = {"frequency": [1.0], "recency": [2.0], "T": [3.0]}
    with pytest.raises(ModelNotFittedError):
        frequency_histogram(BetaGeoModel(), summary)
    with pytest.raises(ModelNotFittedError):
        probability_of_purchases(ParetoNBDModel(), 1, 2.0)
    with pytest.raises(EngineInputError, match="GammaGammaModel"):
        probability_of_purchases(GammaGammaModel(), 1, 2.0)  # type: ignore[arg-type]
    with pytest.raises(EngineInputError, match="whole numbers"):
        probability_of_purchases(_fixed(BetaGeoModel, BG), 1.5, 2.0)
    with pytest.raises(EngineInputError, match="horizon"):
        probability_of_purchases(_fixed(BetaGeoModel, BG), 1, -2.0)
    with pytest.raises(EngineInputError, match="max_frequency"):
        frequency_histogram(_fixed(BetaGeoModel, BG), summary, max_frequency=0)
