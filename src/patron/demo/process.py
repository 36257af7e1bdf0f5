"""The hidden purchase process of the demo shop: seasonality, BG/NBD purchases, gamma-gamma spend.

The process (Fader, Hardie & Lee 2005, "Counting your customers the easy way", Marketing
Science 24(2); and "RFM and CLV", JMR 42(4), for the spend model):

- each customer's purchase rate while alive, ``λ ~ Gamma(shape=r, rate=alpha)`` per week;
- each customer's dropout probability ``p ~ Beta(a, b)``: after every *repeat* purchase the
  customer becomes inactive for good with probability ``p`` (the first purchase, at
  acquisition, is not followed by a dropout, as in the BG/NBD likelihood);
- spend per order ``z ~ Gamma(shape=p_spend, rate=ν)`` with ``ν ~ Gamma(shape=q, rate=gamma)``
  per customer, so a customer's expected spend per order is ``p_spend / ν``.

Seasonality makes purchases a non-homogeneous Poisson process with intensity ``λ s(t)``, where
``s`` (weekly and yearly cycle, hour of day, the 618 and 11.11 peaks) averages 1 over the
observation window. Purchases are drawn in *operational time* ``Λ(t) = ∫ s``, in which the
process is the plain BG/NBD one, and mapped back to calendar time; so every BG/NBD identity holds
with ``t`` read as operational weeks (``E[X | λ, p] = (1 − e^{−λpτ}) / p`` for a customer
observed for ``τ`` operational weeks).

No Django here: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

HOURS_PER_WEEK = 168.0

#: Relative activity per hour of the day (shop time): quiet at night, peaks at lunch and 21:00.
_HOUR_OF_DAY = np.array(
    [0.45, 0.25, 0.14, 0.09, 0.07, 0.08, 0.16, 0.35, 0.6, 0.8, 0.95, 1.05,
     1.2, 1.1, 1.0, 1.0, 1.0, 1.05, 1.15, 1.35, 1.6, 1.8, 1.65, 1.1]
)  # fmt: skip
#: Relative activity per day of the week, Monday first: weekends sell more.
_DAY_OF_WEEK = np.array([0.92, 0.93, 0.95, 0.97, 1.03, 1.12, 1.08])


@dataclass(frozen=True)
class Seasonality:
    """The seasonal intensity ``s`` on an hourly grid over the observation window.

    ``intensity[h]`` is ``s`` during hour ``h`` after ``start`` (mean 1 over the window);
    ``operational[h]`` is ``Λ`` at the start of hour ``h``, in operational weeks.
    """

    start: datetime
    hours: int
    intensity: FloatArray
    operational: FloatArray

    @property
    def total_operational_weeks(self) -> float:
        """``Λ`` at the end of the window (equal to the window's length in weeks)."""
        return float(self.operational[-1])

    def to_operational(self, hours: FloatArray) -> FloatArray:
        """Operational weeks ``Λ(t)`` at ``hours`` after the window's start."""
        grid = np.arange(self.hours + 1, dtype=np.float64)
        return np.interp(hours, grid, self.operational)

    def to_calendar(self, operational_weeks: FloatArray) -> FloatArray:
        """Hours after the window's start at which ``Λ`` reaches ``operational_weeks``."""
        grid = np.arange(self.hours + 1, dtype=np.float64)
        return np.interp(operational_weeks, self.operational, grid)


def build_seasonality(start: date, days: int) -> Seasonality:
    """The seasonal intensity over ``days`` days from ``start`` (midnight, shop time).

    Peaks: 618 (June 1–18, the 18th strongest), 双11 (Nov 1–11, the 11th about six times a
    normal day, its first hours busiest), 双12; a mild yearly cycle peaking before the New Year.
    """
    hours = days * 24
    day_dates = [start + timedelta(days=offset) for offset in range(days)]
    day_factor = np.empty(days)
    for index, day in enumerate(day_dates):
        factor = _DAY_OF_WEEK[day.weekday()]
        factor *= 1.0 + 0.12 * np.cos(2 * np.pi * (day.timetuple().tm_yday - 350) / 365.25)
        if day.month == 6 and day.day <= 18:
            factor *= 3.5 if day.day == 18 else 1.25
        elif day.month == 11 and day.day <= 11:
            factor *= 6.0 if day.day == 11 else 1.4
        elif day.month == 12 and day.day == 12:
            factor *= 2.0
        day_factor[index] = factor
    intensity = np.repeat(day_factor, 24) * np.tile(_HOUR_OF_DAY, days)
    for index, day in enumerate(day_dates):
        if (day.month, day.day) in ((11, 11), (6, 18)):
            # The midnight rush: pre-sale deposits are paid off as the peak day opens.
            intensity[index * 24 : index * 24 + 2] *= 4.0
    intensity /= intensity.mean()
    operational = np.concatenate([[0.0], np.cumsum(intensity)]) / HOURS_PER_WEEK
    return Seasonality(
        start=datetime(start.year, start.month, start.day),
        hours=hours,
        intensity=intensity,
        operational=operational,
    )


@dataclass(frozen=True)
class PurchaseDraws:
    """Purchases drawn for a population of customers (one row per purchase, sorted by customer).

    ``customer`` indexes the population; ``hours`` is the purchase time in hours after the
    window's start; ``is_first`` marks each buyer's first purchase (at acquisition).
    """

    customer: IntArray
    hours: FloatArray
    is_first: npt.NDArray[np.bool_]
    repeat_count: IntArray
    dropped_out: npt.NDArray[np.bool_]
    dropped_out_hours: FloatArray
    operational_weeks_observed: FloatArray


def draw_purchases(
    rng: np.random.Generator,
    seasonality: Seasonality,
    first_purchase_hours: FloatArray,
    purchase_rate: FloatArray,
    dropout_probability: FloatArray,
) -> PurchaseDraws:
    """Draw BG/NBD purchases for customers whose first purchase is at ``first_purchase_hours``
    (NaN: never bought), with rate ``λ`` per operational week and dropout probability ``p``.

    Repeat purchases are the points of a Poisson process of rate ``λ`` on ``(Λ(t0), Λ(T)]``
    up to and including the ``J``-th, ``J ~ Geometric(p)`` on {1, 2, ...}: the customer drops out
    right after it.
    """
    count = first_purchase_hours.shape[0]
    is_buyer = ~np.isnan(first_purchase_hours)
    start_operational = np.where(
        is_buyer, seasonality.to_operational(np.nan_to_num(first_purchase_hours)), 0.0
    )
    observed = np.where(is_buyer, seasonality.total_operational_weeks - start_operational, 0.0)
    poisson_count = rng.poisson(purchase_rate * observed)
    dropout_after = rng.geometric(dropout_probability)
    repeat_count = np.minimum(poisson_count, dropout_after).astype(np.int64)
    dropped_out = is_buyer & (dropout_after <= poisson_count)

    # Given N points of a Poisson process on an interval, they are N sorted uniforms on it.
    owner = np.repeat(np.arange(count), poisson_count)
    offsets = rng.uniform(0.0, 1.0, owner.shape[0]) * observed[owner]
    order = np.lexsort((offsets, owner))
    owner, offsets = owner[order], offsets[order]
    rank = np.arange(owner.shape[0]) - np.repeat(
        np.cumsum(poisson_count) - poisson_count, poisson_count
    )
    kept = rank < repeat_count[owner]
    owner, offsets, rank = owner[kept], offsets[kept], rank[kept]
    repeat_hours = seasonality.to_calendar(start_operational[owner] + offsets)

    dropped_out_hours = np.full(count, np.nan)
    last_of_dropped = dropped_out[owner] & (rank == repeat_count[owner] - 1)
    dropped_out_hours[owner[last_of_dropped]] = repeat_hours[last_of_dropped]

    buyers = np.flatnonzero(is_buyer)
    customer = np.concatenate([buyers, owner])
    hours = np.concatenate([first_purchase_hours[buyers], repeat_hours])
    is_first = np.concatenate([np.ones(buyers.shape[0], bool), np.zeros(owner.shape[0], bool)])
    order = np.lexsort((hours, customer))
    return PurchaseDraws(
        customer=customer[order].astype(np.int64),
        hours=hours[order],
        is_first=is_first[order],
        repeat_count=repeat_count,
        dropped_out=dropped_out,
        dropped_out_hours=dropped_out_hours,
        operational_weeks_observed=observed,
    )


def expected_repeat_purchases(
    purchase_rate: FloatArray, dropout_probability: FloatArray, operational_weeks: FloatArray
) -> FloatArray:
    """``E[X | λ, p] = (1 − exp(−λ p τ)) / p``: expected repeat purchases in ``τ`` weeks
    (Fader, Hardie & Lee 2005, the individual-level mean behind their equation 7)."""
    return -np.expm1(-purchase_rate * dropout_probability * operational_weeks) / dropout_probability
