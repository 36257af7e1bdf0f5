"""Next purchase: the wait of an alive customer against simulation and integration over the
posterior of the purchase rate and the drop-out probability."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import integrate, stats

from patron.engine.clv.base import ModelNotFittedError
from patron.engine.clv.beta_geo import BetaGeoModel
from patron.engine.clv.gamma_gamma import GammaGammaModel
from patron.engine.clv.modified_beta_geo import ModifiedBetaGeoModel
from patron.engine.clv.next_purchase import next_purchase
from patron.engine.clv.pareto_nbd import ParetoNBDModel
from patron.engine.frames import EngineInputError
from tests.engine.clv.data import cdnow_summary

BG = {"r": 0.2426, "alpha": 4.4136, "a": 0.7929, "b": 2.4259}
"""The CDNOW BG/NBD fit (docs/clv.md)."""
MBG = {"r": 0.5248, "alpha": 6.183, "a": 0.8914, "b": 1.614}
PARETO = {"r": 0.5533, "alpha": 10.578, "s": 0.6062, "beta": 11.668}

CUSTOMERS = pl.DataFrame(
    {
        "customer_id": ["new", "regular", "silent", "heavy", "old regular"],
        "frequency": [0.0, 6.0, 6.0, 2_000.0, 6.0],
        "recency": [0.0, 30.0, 5.0, 38.0, 70.0],
        "T": [38.0, 32.0, 32.0, 39.0, 72.0],
    }
)


def _bg() -> BetaGeoModel:
    model = BetaGeoModel()
    model.params_ = dict(BG)
    return model


def _mbg() -> ModifiedBetaGeoModel:
    model = ModifiedBetaGeoModel()
    model.params_ = dict(MBG)
    return model


def test_quantiles_are_those_of_simulated_waits() -> None:
    # given customers and the BG/NBD at the CDNOW parameters
    result = next_purchase(_bg(), CUSTOMERS, quantiles=(0.1, 0.5, 0.9))

    # when each alive customer's wait is simulated: a rate from the posterior
    # Gamma(r + x, alpha + T), then an exponential wait at that rate
    generator = np.random.default_rng(20261122)
    draws = 200_000
    for row, (x, big_t) in enumerate(zip(CUSTOMERS["frequency"], CUSTOMERS["T"], strict=True)):
        rates = generator.gamma(BG["r"] + x, 1.0 / (BG["alpha"] + big_t), size=draws)
        waits = generator.exponential(1.0 / rates)
        # then the share of simulated waits below each reported quantile q is q, within four
        # binomial standard errors sqrt(q (1 - q) / n) (at most 0.0045 for n = 200,000)
        for level, column in ((0.1, "next_purchase_q10"), (0.5, "next_purchase_q50")):
            share = float(np.mean(waits <= result[column][row]))
            assert abs(share - level) < 4 * math.sqrt(level * (1 - level) / draws)
        share = float(np.mean(waits <= result["next_purchase_q90"][row]))
        assert abs(share - 0.9) < 4 * math.sqrt(0.9 * 0.1 / draws)
    assert result["next_purchase_median"].to_list() == result["next_purchase_q50"].to_list()
    # and they are the quantiles of scipy's Lomax with shape r + x and scale alpha + T
    expected = stats.lomax.ppf(
        0.9, BG["r"] + CUSTOMERS["frequency"].to_numpy(), scale=BG["alpha"] + CUSTOMERS["T"]
    )
    assert result["next_purchase_q90"].to_numpy() == pytest.approx(expected, rel=1e-12)


def test_waits_grow_with_q_and_with_time_without_purchases() -> None:
    result = next_purchase(_bg(), CUSTOMERS, quantiles=(0.05, 0.25, 0.5, 0.75, 0.95))
    columns = [f"next_purchase_q{p}" for p in (5, 25, 50, 75, 95)]
    table = result.select(columns).to_numpy()
    assert np.all(np.diff(table, axis=1) > 0)
    by_id = {row["customer_id"]: row for row in result.iter_rows(named=True)}
    # the same six purchases over 72 weeks instead of 32: a lower rate, a later purchase
    assert by_id["old regular"]["next_purchase_median"] > by_id["regular"]["next_purchase_median"]
    # a heavy buyer buys again within hours, a customer without a repeat purchase much later
    assert by_id["heavy"]["next_purchase_median"] < 0.05
    assert by_id["new"]["next_purchase_median"] > 10 * by_id["regular"]["next_purchase_median"]
    # the silence since the last purchase changes only how likely the customer is alive
    assert by_id["silent"]["next_purchase_median"] == by_id["regular"]["next_purchase_median"]
    assert by_id["silent"]["p_alive"] < 0.5 * by_id["regular"]["p_alive"]


def _pareto() -> ParetoNBDModel:
    model = ParetoNBDModel()
    model.params_ = dict(PARETO)
    return model


def test_pareto_race_against_simulation() -> None:
    # given customers and the Pareto/NBD at the CDNOW parameters
    result = next_purchase(_pareto(), CUSTOMERS, quantiles=(0.1, 0.5, 0.9))
    generator = np.random.default_rng(20261123)
    draws = 200_000
    for row, (x, big_t) in enumerate(zip(CUSTOMERS["frequency"], CUSTOMERS["T"], strict=True)):
        # when alive customers are simulated: posterior purchase and death rates, then the
        # exponential wait for the next purchase racing the exponential time to death
        rates = generator.gamma(PARETO["r"] + x, 1.0 / (PARETO["alpha"] + big_t), size=draws)
        deaths = generator.gamma(PARETO["s"], 1.0 / (PARETO["beta"] + big_t), size=draws)
        waits = generator.exponential(1.0 / rates)
        buys = waits < generator.exponential(1.0 / deaths)
        # then the share that buys again is p_buys_again / p_alive, within four binomial
        # standard errors
        share = float(buys.mean())
        buys_again = result["p_buys_again"][row] / result["p_alive"][row]
        assert abs(share - buys_again) < 4 * math.sqrt(share * (1 - share) / draws)
        # and among those who buy, the share of waits below quantile q is q (four standard
        # errors of a binomial share over the buyers)
        for level in (0.1, 0.5, 0.9):
            below = float(np.mean(waits[buys] <= result[f"next_purchase_q{level * 100:g}"][row]))
            assert abs(below - level) < 4 * math.sqrt(level * (1 - level) / buys.sum())


def test_pareto_race_against_integration_of_its_density() -> None:
    # The defective density of an alive customer's next purchase, E[lambda e^(-lambda w)]
    # E[e^(-mu w)] over the posteriors, integrated by scipy.
    result = next_purchase(_pareto(), CUSTOMERS, quantiles=(0.25, 0.75), within=13.0)
    for row, (x, big_t) in enumerate(zip(CUSTOMERS["frequency"], CUSTOMERS["T"], strict=True)):
        k, scale = PARETO["r"] + x, PARETO["alpha"] + big_t
        death_scale = PARETO["beta"] + big_t

        def density(w: float, k: float = k, scale: float = scale, b: float = death_scale) -> float:
            s = PARETO["s"]
            return float(k / scale * (scale / (scale + w)) ** (k + 1) * (b / (b + w)) ** s)

        total = integrate.quad(density, 0, np.inf, limit=500)[0]
        alive = result["p_alive"][row]
        assert result["p_buys_again"][row] == pytest.approx(alive * total, rel=1e-6)
        within = integrate.quad(density, 0, 13.0, limit=500)[0]
        assert result["p_purchase_within"][row] == pytest.approx(alive * within, rel=1e-6)
        for level in (0.25, 0.5, 0.75):
            column = "next_purchase_median" if level == 0.5 else f"next_purchase_q{level * 100:g}"
            wait = result[column][row]
            assert integrate.quad(density, 0, wait, limit=500)[0] / total == pytest.approx(
                level, rel=1e-6
            )
    # an active customer of the BG/NBD always buys again
    bg = next_purchase(_bg(), CUSTOMERS)
    assert bg["p_buys_again"].to_list() == bg["p_alive"].to_list()


def _integrated_purchase_within(
    model_name: str, params: dict[str, float], x: float, t_x: float, big_t: float, wait: float
) -> float:
    """P(a purchase in (T, T + wait] | x, t_x, T) by integrating over the rate and p.

    Joint posterior of (lambda, p) given the history: prior times the likelihood of being alive
    at T (the customer survived every drop-out chance) plus that of having dropped out at the
    last purchase; only the alive part buys in the window, with probability 1 - e^(-lambda w).
    """
    r, alpha, a, b = params["r"], params["alpha"], params["a"], params["b"]
    beta_pdf = stats.beta(a, b).pdf
    gamma_pdf = stats.gamma(r, scale=1 / alpha).pdf
    if model_name == "bg":
        survived = integrate.quad(lambda p: (1 - p) ** x * beta_pdf(p), 0, 1)[0]
        dropped = (
            integrate.quad(lambda p: p * (1 - p) ** (x - 1) * beta_pdf(p), 0, 1)[0] if x else 0.0
        )
    else:
        survived = integrate.quad(lambda p: (1 - p) ** (x + 1) * beta_pdf(p), 0, 1)[0]
        dropped = integrate.quad(lambda p: p * (1 - p) ** x * beta_pdf(p), 0, 1)[0]

    def rate_integral(weight: object) -> float:
        def integrand(rate: float) -> float:
            return float(rate**x * gamma_pdf(rate) * weight(rate))  # type: ignore[operator]

        return float(
            integrate.quad(integrand, 0, 0.05, limit=200)[0]
            + integrate.quad(integrand, 0.05, np.inf, limit=200)[0]
        )

    alive = survived * rate_integral(lambda rate: math.exp(-rate * big_t))
    alive_buying = survived * rate_integral(
        lambda rate: math.exp(-rate * big_t) * -math.expm1(-rate * wait)
    )
    dead = dropped * rate_integral(lambda rate: math.exp(-rate * t_x))
    return alive_buying / (alive + dead)


@pytest.mark.parametrize(("model_name", "params"), [("bg", BG), ("mbg", MBG)])
def test_purchase_within_equals_integration_over_the_posterior(
    model_name: str, params: dict[str, float]
) -> None:
    model = _bg() if model_name == "bg" else _mbg()
    customers = CUSTOMERS.filter(pl.col("customer_id") != "heavy")
    result = next_purchase(model, customers, within=13.0)
    for row, (x, t_x, big_t) in enumerate(
        zip(customers["frequency"], customers["recency"], customers["T"], strict=True)
    ):
        assert result["p_purchase_within"][row] == pytest.approx(
            _integrated_purchase_within(model_name, params, x, t_x, big_t, 13.0), rel=1e-6
        )


def test_cdnow_next_purchase(shared_data: Path) -> None:
    # given the CDNOW fit
    summary = cdnow_summary(shared_data)
    model = BetaGeoModel().fit(summary)

    # when every customer's next purchase is estimated
    result = next_purchase(model, summary, within=13.0)
    print("\n" + str(result.describe()))

    # then there is one finite row per customer, in order, with the model's P(alive)
    assert result["customer_id"].to_list() == summary["customer_id"].to_list()
    assert result["p_alive"].to_numpy() == pytest.approx(model.p_alive(summary), rel=1e-15)
    assert np.all(np.isfinite(result.select(pl.exclude("customer_id")).to_numpy()))
    assert np.all(result["p_purchase_within"].to_numpy() <= result["p_alive"].to_numpy())


def test_unfitted_and_other_models_are_refused() -> None:
    with pytest.raises(ModelNotFittedError):
        next_purchase(BetaGeoModel(), CUSTOMERS)
    with pytest.raises(ModelNotFittedError):
        next_purchase(ParetoNBDModel(), CUSTOMERS)
    with pytest.raises(EngineInputError, match="GammaGammaModel"):
        next_purchase(GammaGammaModel(), CUSTOMERS)  # type: ignore[arg-type]
    with pytest.raises(EngineInputError, match="quantiles"):
        next_purchase(_bg(), CUSTOMERS, quantiles=(0.5, 1.0))
    with pytest.raises(EngineInputError, match="recency"):
        next_purchase(_bg(), CUSTOMERS.with_columns(pl.lit(100.0).alias("recency")))
