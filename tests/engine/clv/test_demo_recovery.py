"""The CLV models recover the demo shop's hidden parameters (issue 4: 20,000 customers).

The demo shop draws each person's purchases from a BG/NBD process and each order's total from
a Gamma-Gamma one (``patron.demo.process``); the truth names the parameters. The summary is
built at the level the process draws its purchases:

* per **person**: an order placed from a person's duplicate account is that person's;
* cancelled orders are left out (noise added outside the process; every other order is a draw);
* in **operational weeks** ``Λ(t) = ∫ s``, the clock in which the seasonal process is the plain
  BG/NBD one (the truth's time unit); read in calendar weeks, the peaks move ``a`` and ``r`` by
  1.5 to 1.8 standard errors;
* each purchase its own occasion: the process is continuous in time, while ``rfm_summary``
  merges one day's purchases. Read at the day, about 900 of the 63,500 purchases (the heaviest
  buyers') merge, which moves ``alpha`` by two and a half standard errors; so the operational
  clock is written with one summary "day" per operational minute, where two purchases of one
  person (almost) never meet.
"""

from __future__ import annotations

import functools
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from patron.demo.generator import DemoConfig, DemoWorld, generate_world
from patron.demo.process import HOURS_PER_WEEK, Seasonality, build_seasonality
from patron.engine.clv import BetaGeoModel, GammaGammaModel, rfm_summary

MINUTES_PER_WEEK = HOURS_PER_WEEK * 60
EPOCH = datetime(1970, 1, 1)
Z_95 = 1.96


@functools.cache
def _world() -> DemoWorld:
    """The 20,000-customer world of the demo tests (generated once per session)."""
    return generate_world(DemoConfig(customers=20_000, seed=7, as_of=date(2025, 6, 1)))


@functools.cache
def _season() -> Seasonality:
    """The seasonal clock of the world's observation window."""
    truth = _world().truth
    return build_seasonality(
        truth.observation_start.date(), (truth.observation_end - truth.observation_start).days
    )


@functools.cache
def _purchases() -> pl.DataFrame:
    """The process draws: one row per order that is not cancelled, with its ``person``, order
    ``total`` and ``operational_minutes`` (operational time since the window's start)."""
    world = _world()
    truth = world.truth_customers
    person_of_account = pl.concat(
        [
            truth.select("customer_id", person=pl.col("customer_id")),
            truth.filter(pl.col("duplicate_customer_id").is_not_null()).select(
                customer_id=pl.col("duplicate_customer_id"), person=pl.col("customer_id")
            ),
        ]
    )
    orders = (
        world.orders.filter(pl.col("status") != "cancelled")
        .group_by("order_id")
        .agg(
            pl.col("customer_id").first(),
            pl.col("ordered_at").first(),
            (
                (pl.col("quantity") * pl.col("unit_price").cast(pl.Float64)).sum()
                - pl.col("discount").first().cast(pl.Float64)
            ).alias("total"),
        )
        .join(person_of_account, on="customer_id")
    )
    start = world.truth.observation_start
    hours = (orders["ordered_at"] - start).dt.total_seconds().to_numpy() / 3600.0
    operational_minutes = _season().to_operational(hours) * MINUTES_PER_WEEK
    return orders.with_columns(operational_minutes=pl.Series(operational_minutes))


@functools.cache
def _summary() -> pl.DataFrame:
    """``rfm_summary`` of the process draws, per person, ``recency`` and ``T`` in operational
    weeks, ``monetary_value`` the mean order total of the repeat purchases."""
    purchases = _purchases()
    # One operational minute is one "day" of the summary: its day-level merging then only
    # merges purchases of one person within a minute, which the process all but never draws.
    clock = np.datetime64(EPOCH, "us") + (
        purchases["operational_minutes"].to_numpy() * 86_400e6
    ).astype("timedelta64[us]")
    window_minutes = round(_season().total_operational_weeks * MINUTES_PER_WEEK)
    summary = rfm_summary(
        purchases.with_columns(clock=pl.Series(clock)),
        "person",
        "clock",
        "total",
        observation_end=(EPOCH + timedelta(days=window_minutes)).date(),
        time_unit="D",
    )
    return summary.with_columns(pl.col("recency", "T") / MINUTES_PER_WEEK)


def _outside_interval(
    fitted: dict[str, float], standard_errors: dict[str, float], true: dict[str, float]
) -> dict[str, tuple[float, float, float]]:
    """The parameters whose true value is outside fitted ± 1.96 SE: (true, fitted, SE)."""
    return {
        name: (true[name], fitted[name], standard_errors[name])
        for name in true
        if abs(fitted[name] - true[name]) > Z_95 * standard_errors[name]
    }


def test_the_summary_is_the_process_draws() -> None:
    # Given the truth per buyer (repeat purchases drawn, operational weeks observed), and the
    # purchases a summary at the minute merges: those in the same operational minute as the
    # person's previous one (a handful by chance among some 45,000)
    minute = (
        _purchases()
        .sort("person", "operational_minutes")
        .select("person", minute=pl.col("operational_minutes").floor())
    )
    merged = minute.filter(
        (pl.col("person") == pl.col("person").shift())
        & (pl.col("minute") == pl.col("minute").shift())
    )
    buyers = _world().truth_customers.filter("is_buyer")

    # When the summary is joined to the truth
    joined = buyers.join(_summary(), on="customer_id", how="left")

    # Then every buyer has a row, with its drawn repeat purchases less the merged ones, and T
    # is its observed span
    assert _summary().height == buyers.height
    assert merged.height <= 5
    assert (joined["frequency"] <= joined["repeat_purchases"]).all()
    assert (joined["repeat_purchases"] - joined["frequency"]).sum() == merged.height
    # (T starts at the first purchase's minute, read from a time kept to the whole second, and
    # one calendar second is up to max(s) operational seconds at the peaks)
    slack = (1 + _season().intensity.max() / 60) / MINUTES_PER_WEEK
    assert (joined["T"] - joined["operational_weeks"]).is_between(0.0, slack).all()


def test_bg_nbd_recovers_the_hidden_parameters_within_95_percent_intervals() -> None:
    # Given the demo shop's purchases summarised as the process draws them
    parameters = _world().truth.parameters
    true = {
        "r": parameters.r,
        "alpha": parameters.alpha,
        "a": parameters.a,
        "b": parameters.b,
    }

    # When BG/NBD is fitted
    model = BetaGeoModel().fit(_summary())

    # Then every true parameter lies within fitted ± 1.96 standard errors
    assert _outside_interval(model.params_, model.params_se_, true) == {}


def test_gamma_gamma_recovers_the_hidden_spend_parameters_within_95_percent_intervals() -> None:
    # Given the repeat buyers' mean order totals
    parameters = _world().truth.parameters
    true = {"p": parameters.p, "q": parameters.q, "gamma": parameters.gamma}
    repeat_buyers = _summary().filter(pl.col("frequency") > 0)

    # When Gamma-Gamma is fitted
    model = GammaGammaModel().fit(repeat_buyers)

    # Then every true parameter lies within fitted ± 1.96 standard errors
    assert _outside_interval(model.params_, model.params_se_, true) == {}
