"""Fit diagnostics of the transaction models: P(X(t) = x), the calibration-period frequency
histogram, the holdout tracking plot and the conditional expectations (docs/clv.md).

These are the three checks of Fader, Hardie & Lee (2005), "Counting Your Customers the Easy
Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284: Figure 2
(repeat transactions per customer in the calibration period, actual against the model),
Figure 3 (cumulative repeat transactions week by week, calibration and holdout) and Figure 4
(holdout transactions per customer by calibration frequency). Each function takes a fitted
:class:`~patron.engine.clv.beta_geo.BetaGeoModel`,
:class:`~patron.engine.clv.modified_beta_geo.ModifiedBetaGeoModel` or
:class:`~patron.engine.clv.pareto_nbd.ParetoNBDModel` and returns a Polars frame (or a numpy
array for the probabilities) whose columns are documented on the function.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import narwhals as nw
import numpy as np
import polars as pl
from scipy.special import betainc, betaln, gammaln, logsumexp, xlogy

from patron.engine.clv.base import FloatArray, customer_columns, horizon
from patron.engine.clv.beta_geo import BetaGeoModel
from patron.engine.clv.modified_beta_geo import ModifiedBetaGeoModel
from patron.engine.clv.pareto_nbd import ParetoNBDModel
from patron.engine.clv.summary import DAYS_PER_UNIT
from patron.engine.frames import (
    EngineInputError,
    collect,
    date_day_number,
    day_number,
    prepare,
    require_date,
)

ModelKind = Literal["bg", "mbg", "pareto"]

TransactionModel = BetaGeoModel | ModifiedBetaGeoModel | ParetoNBDModel
"""The fitted transaction models the diagnostics read."""

QUADRATURE_NODES = 128
"""Gauss-Legendre nodes of the Pareto/NBD death-time integral in :func:`probability_of_purchases`
(exact for the ``u^x`` factor up to x = 255; about 1e-13 relative against
``scipy.integrate.quad`` on CDNOW in the tests)."""

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(QUADRATURE_NODES)
# Gauss-Legendre on [0, 1].
_UNIT_NODES = (_NODES + 1.0) / 2.0
_LOG_UNIT_WEIGHTS = np.log(_WEIGHTS / 2.0)


def transaction_model_kind(model: Any, what: str) -> ModelKind:
    """Which transaction model ``model`` is, after checking that it is one and fitted.

    Raises :class:`EngineInputError` for any other object and
    :class:`~patron.engine.clv.base.ModelNotFittedError` for an unfitted model.
    """
    kind: ModelKind
    if isinstance(model, BetaGeoModel):
        kind = "bg"
    elif isinstance(model, ModifiedBetaGeoModel):
        kind = "mbg"
    elif isinstance(model, ParetoNBDModel):
        kind = "pareto"
    else:
        raise EngineInputError(
            f"{what}: needs a BetaGeoModel, ModifiedBetaGeoModel or ParetoNBDModel, "
            f"got {type(model).__name__}"
        )
    model.fitted_params()  # raises ModelNotFittedError before any work
    return kind


def probability_of_purchases(model: TransactionModel, x: Any, t: Any) -> FloatArray:
    r"""P(X(t) = x): probability that a customer just acquired makes ``x`` repeat purchases
    in ``(0, t]``.

    ``x`` (whole numbers, not negative) and ``t`` (time units of the fit, not negative)
    broadcast against each other like numpy arrays.

    BG/NBD (Fader, Hardie & Lee 2005, eq. 8), with the NBD probabilities
    :math:`\mathrm{NB}(j) = \frac{\Gamma(r+j)}{\Gamma(r) j!}
    (\frac{\alpha}{\alpha+t})^r (\frac{t}{\alpha+t})^j`:

    .. math::

        P(X(t) = x) = \frac{B(a, b + x)}{B(a, b)} \mathrm{NB}(x)
            + \delta_{x > 0} \frac{B(a + 1, b + x - 1)}{B(a, b)}
              \Big[1 - \sum_{j=0}^{x-1} \mathrm{NB}(j)\Big]

    MBG/NBD (Batislam, Denizel & Filiztekin 2007; the customer may also drop out at time 0):

    .. math::

        P(X(t) = x) = \frac{B(a, b + x + 1)}{B(a, b)} \mathrm{NB}(x)
            + \frac{B(a + 1, b + x)}{B(a, b)} \Big[1 - \sum_{j=0}^{x-1} \mathrm{NB}(j)\Big]

    The bracket, the NBD's upper tail, is the regularised incomplete beta function
    :math:`I_{t/(\alpha+t)}(x, r)` (no cancellation when it is small); everything else is in
    log-gamma / log-beta terms joined by log-sum-exp.

    Pareto/NBD (Schmittlein, Morrison & Colombo 1987; the derivation of Fader & Hardie's note
    "Deriving an Expression for P(X(t) = x) Under the Pareto/NBD Model", before its 2F1
    closed form, which subtracts nearly equal terms): alive at t with x purchases, or dead at
    :math:`\tau < t` with x purchases by then,

    .. math::

        P(X(t) = x) = \frac{\Gamma(r + x) \alpha^r \beta^s}{\Gamma(r) x!}
            \Big[\frac{t^x}{(\alpha + t)^{r+x} (\beta + t)^s}
            + s \int_0^t \frac{\tau^x \, d\tau}{(\alpha + \tau)^{r+x} (\beta + \tau)^{s+1}}\Big].

    With :math:`u = \tau / (\alpha + \tau)` the integral is
    :math:`\alpha^{1-r} \int_0^{t/(\alpha+t)} u^x (1-u)^{r+s-1} (\beta + (\alpha-\beta) u)^{-(s+1)}
    du`, a positive integrand summed by Gauss-Legendre quadrature in logs
    (:data:`QUADRATURE_NODES` nodes).

    Returns a float64 array of the broadcast shape.
    """
    kind = transaction_model_kind(model, "probability_of_purchases")
    counts = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(counts)) or np.any(counts < 0) or np.any(counts != np.round(counts)):
        raise EngineInputError(
            "probability_of_purchases: x must be whole numbers of purchases, not negative"
        )
    t_values = horizon(t, "probability_of_purchases")
    counts, t_values = np.broadcast_arrays(counts, t_values)
    return np.asarray(np.exp(_log_probability(model, kind, counts, t_values)), dtype=np.float64)


def _log_probability(
    model: TransactionModel, kind: ModelKind, x: FloatArray, t: FloatArray
) -> FloatArray:
    if kind == "pareto":
        return _pareto_log_probability(model.fitted_params(), x, t)
    r, alpha, a, b = (float(value) for value in model.fitted_params())
    # log NB(x) with 0 log 0 = 0, so that t = 0 gives P(X(0) = 0) = 1.
    log_nbd = (
        gammaln(r + x)
        - gammaln(r)
        - gammaln(x + 1.0)
        + r * (np.log(alpha) - np.log(alpha + t))
        + xlogy(x, t / (alpha + t))
    )
    # Upper tail P(NB >= x) = I_{t/(alpha+t)}(x, r); 1 at x = 0 (betainc needs x > 0).
    with np.errstate(divide="ignore"):
        log_tail = np.where(x > 0, np.log(betainc(np.maximum(x, 1.0), r, t / (alpha + t))), 0.0)
    if kind == "bg":
        log_stay = betaln(a, b + x) - betaln(a, b)
        # np.maximum keeps b + x - 1 positive where x = 0 (that term is absent there).
        log_drop = np.where(
            x > 0, betaln(a + 1.0, b + np.maximum(x, 1.0) - 1.0) - betaln(a, b), -np.inf
        )
    else:
        log_stay = betaln(a, b + x + 1.0) - betaln(a, b)
        log_drop = betaln(a + 1.0, b + x) - betaln(a, b)
    result: FloatArray = np.logaddexp(log_stay + log_nbd, log_drop + log_tail)
    return result


def _pareto_log_probability(params: FloatArray, x: FloatArray, t: FloatArray) -> FloatArray:
    r, alpha, s, beta = (float(value) for value in params)
    log_front = (
        gammaln(r + x) - gammaln(r) - gammaln(x + 1.0) + r * np.log(alpha) + s * np.log(beta)
    )
    log_alive = xlogy(x, t) - (r + x) * np.log(alpha + t) - s * np.log(beta + t)
    # Death-time integral over u in [0, u_t], u = u_t v with v on Gauss-Legendre nodes.
    u_end = t / (alpha + t)
    u = u_end[..., None] * _UNIT_NODES
    with np.errstate(divide="ignore"):
        log_integrand = (
            xlogy(x[..., None], u)
            + (r + s - 1.0) * np.log1p(-u)
            - (s + 1.0) * np.log(beta + (alpha - beta) * u)
        )
        log_integral = (
            (1.0 - r) * np.log(alpha)
            + np.log(u_end)
            + logsumexp(log_integrand + _LOG_UNIT_WEIGHTS, axis=-1)
        )
    # t = 0: no time to die in (log u_end = -inf), and X(0) = 0 with certainty.
    log_died = np.where(t > 0, np.log(s) + log_integral, -np.inf)
    result: FloatArray = log_front + np.logaddexp(log_alive, log_died)
    return result


def _check_max_frequency(max_frequency: int, what: str) -> None:
    if isinstance(max_frequency, bool) or not isinstance(max_frequency, int) or max_frequency < 1:
        raise EngineInputError(f"{what}: max_frequency must be a whole number >= 1")


def _bucket_labels(max_frequency: int) -> list[str]:
    return [str(value) for value in range(max_frequency)] + [f"{max_frequency}+"]


def frequency_histogram(
    model: TransactionModel, summary: Any, max_frequency: int = 7
) -> pl.DataFrame:
    """Calibration-period repeat purchases per customer: actual counts against the model.

    The check of Fader, Hardie & Lee (2005), Figure 2. The model's expected number of
    customers with ``x`` repeat purchases is :math:`\\sum_i P(X(T_i) = x)`
    (:func:`probability_of_purchases` at each customer's age ``T``); the last bucket,
    ``max_frequency`` and more, takes the rest, so the expected counts add up to the number
    of customers. ``summary`` has ``frequency, recency, T`` (:func:`rfm_summary`) in the time
    unit the model was fitted in.

    Returns one row per bucket: ``frequency`` (0 to ``max_frequency``; the last means "that
    many or more"), ``label`` (``"0"`` ... ``"7+"``), ``actual`` (customers) and ``expected``.
    """
    _check_max_frequency(max_frequency, "frequency_histogram")
    kind = transaction_model_kind(model, "frequency_histogram")
    columns = model.columns(summary)
    # Customers' ages repeat (whole days), so P is computed once per distinct T.
    ages, age_counts = np.unique(columns["T"], return_counts=True)
    counts = np.arange(max_frequency, dtype=np.float64)
    probabilities = np.exp(_log_probability(model, kind, counts[None, :], ages[:, None]))
    expected_below = age_counts.astype(np.float64) @ probabilities
    customers = float(len(columns["T"]))
    expected = np.append(expected_below, customers - expected_below.sum())
    buckets = np.minimum(columns["frequency"], max_frequency).astype(np.int64)
    actual = np.bincount(buckets, minlength=max_frequency + 1)
    return pl.DataFrame(
        {
            "frequency": np.arange(max_frequency + 1, dtype=np.int64),
            "label": _bucket_labels(max_frequency),
            "actual": actual.astype(np.int64),
            "expected": expected,
        }
    )


def conditional_expectations(
    model: TransactionModel, summary: Any, max_frequency: int = 7
) -> pl.DataFrame:
    """Holdout purchases per customer by calibration frequency: actual means against the model.

    The check of Fader, Hardie & Lee (2005), Figure 4. ``summary`` is a calibration/holdout
    summary (:func:`rfm_summary` with ``calibration_end``): ``frequency, recency, T`` of the
    calibration period, ``frequency_holdout`` and ``duration_holdout``. The model's value for a
    customer is :math:`E[Y(t) \\mid x, t_x, T]` with ``t`` their ``duration_holdout``
    (``model.expected_purchases``).

    Returns one row per calibration frequency bucket (0 to ``max_frequency`` and more):
    ``frequency``, ``label``, ``customers``, ``actual_mean``, ``expected_mean``, and the
    bucket totals ``actual`` and ``expected``. Buckets without customers have null means.
    """
    _check_max_frequency(max_frequency, "conditional_expectations")
    transaction_model_kind(model, "conditional_expectations")
    columns = model.columns(summary)
    holdout = customer_columns(
        summary, ("frequency_holdout", "duration_holdout"), "conditional_expectations"
    )
    expected = model.expected_purchases(holdout["duration_holdout"], summary)
    buckets = np.minimum(columns["frequency"], max_frequency).astype(np.int64)
    size = max_frequency + 1
    customers = np.bincount(buckets, minlength=size)
    actual_total = np.bincount(buckets, weights=holdout["frequency_holdout"], minlength=size)
    expected_total = np.bincount(buckets, weights=expected, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        actual_mean = np.where(customers > 0, actual_total / customers, np.nan)
        expected_mean = np.where(customers > 0, expected_total / customers, np.nan)
    return pl.DataFrame(
        {
            "frequency": np.arange(size, dtype=np.int64),
            "label": _bucket_labels(max_frequency),
            "customers": customers.astype(np.int64),
            "actual_mean": actual_mean,
            "expected_mean": expected_mean,
            "actual": actual_total,
            "expected": expected_total,
        }
    ).with_columns(pl.col("actual_mean", "expected_mean").fill_nan(None))


def cumulative_tracking(
    model: TransactionModel,
    transactions: Any,
    customer_id_col: str,
    datetime_col: str,
    *,
    observation_end: dt.date,
    calibration_end: dt.date | None = None,
    period_start: dt.date | None = None,
    time_unit: str = "W",
) -> pl.DataFrame:
    """Cumulative repeat purchases of a cohort period by period: actual against the model.

    The tracking plot of Fader, Hardie & Lee (2005), Figure 3 (CDNOW: weeks 1-39 calibration,
    40-78 holdout). Purchases are counted as :func:`rfm_summary` counts them: one customer's
    transactions of one day are one occasion, the first occasion is not a repeat purchase.

    Parameters
    ----------
    model
        A fitted transaction model, fitted in ``time_unit``.
    transactions
        One row per transaction (any dataframe Narwhals reads), with ``customer_id_col`` and
        ``datetime_col`` (a date or datetime).
    observation_end
        Last day counted (whole day); the last period ends on it.
    calibration_end
        When given, the cohort is the customers whose first purchase is on or before it, and
        periods that start after it are marked ``is_holdout``; otherwise the cohort is every
        customer who bought by ``observation_end``.
    period_start
        First day of period 1; the cohort's first purchase day when ``None``. Must not be
        after any cohort customer's first purchase.
    time_unit
        ``"W"`` (periods of 7 days, ages in weeks) or ``"D"`` (days); the model's unit.

    The model's cumulative repeat purchases at the end of period ``k`` (day ``L_k``) are
    :math:`\\sum_i E[X((L_k - f_i) / u)]` over the cohort's customers acquired by then
    (``f_i`` their first purchase day, ``u`` days per unit, ``E[X(t)]`` the model's
    ``expected_purchases_new_customer``): each customer's unconditional expectation from their
    own first purchase, as in the paper.

    Returns one row per period: ``period`` (1, 2, ...), ``period_end`` (Date; the last
    period may be shorter and ends on ``observation_end``), ``actual`` and ``expected``
    (repeat purchases in the period), ``actual_cumulative``, ``expected_cumulative``, and
    ``is_holdout`` when ``calibration_end`` is given.
    """
    what = "cumulative_tracking"
    transaction_model_kind(model, what)
    require_date(observation_end, "observation_end")
    if calibration_end is not None:
        require_date(calibration_end, "calibration_end")
        if calibration_end >= observation_end:
            raise EngineInputError(
                f"calibration_end {calibration_end} must be before observation_end "
                f"{observation_end}"
            )
    if period_start is not None:
        require_date(period_start, "period_start")
    if time_unit not in DAYS_PER_UNIT:
        raise EngineInputError(f"time_unit must be 'W' or 'D', got {time_unit!r}")
    unit_days = int(DAYS_PER_UNIT[time_unit])
    end_day = date_day_number(observation_end)
    cohort_end_day = date_day_number(calibration_end) if calibration_end is not None else end_day

    prepared = prepare(transactions, [customer_id_col, datetime_col], "transactions")
    occasions = (
        prepared.frame.select(
            nw.col(customer_id_col).alias("customer_id"),
            day_number(nw.col(datetime_col)).alias("day"),
        )
        .filter(~nw.col("customer_id").is_null() & ~nw.col("day").is_null())
        .filter(nw.col("day") <= end_day)
        .unique(["customer_id", "day"])
        .with_columns(nw.col("day").min().over("customer_id").alias("first_day"))
        .filter(nw.col("first_day") <= cohort_end_day)
        .select("day", "first_day")
    )
    frame = collect(occasions)
    days = frame["day"].to_numpy().astype(np.int64)
    first_days = frame["first_day"].to_numpy().astype(np.int64)
    if len(days) == 0:
        raise EngineInputError(f"{what}: no customer bought by the end of the cohort period")

    start_day = int(first_days.min()) if period_start is None else date_day_number(period_start)
    if start_day > int(first_days.min()):
        raise EngineInputError(
            f"{what}: period_start {period_start} is after the first purchase of "
            f"{int(np.count_nonzero(np.unique(first_days) < start_day))} cohort day(s)"
        )
    period_count = -(-(end_day - start_day + 1) // unit_days)
    period_ends = np.minimum(
        start_day + unit_days * np.arange(1, period_count + 1, dtype=np.int64) - 1, end_day
    )

    is_repeat = days > first_days
    repeat_periods = (days[is_repeat] - start_day) // unit_days
    actual = np.bincount(repeat_periods, minlength=period_count).astype(np.int64)

    # Customers acquired on one day share their expectation: evaluate per distinct first day.
    is_first = days == first_days
    acquired_days, acquired_counts = np.unique(first_days[is_first], return_counts=True)
    ages = np.maximum(period_ends[None, :] - acquired_days[:, None], 0) / float(
        DAYS_PER_UNIT[time_unit]
    )
    expected_cumulative = acquired_counts.astype(np.float64) @ np.asarray(
        model.expected_purchases_new_customer(ages), dtype=np.float64
    ).reshape(ages.shape)
    actual_cumulative = np.cumsum(actual)

    epoch = dt.date(1970, 1, 1)
    result = pl.DataFrame(
        {
            "period": np.arange(1, period_count + 1, dtype=np.int64),
            "period_end": [epoch + dt.timedelta(days=int(day)) for day in period_ends],
            "actual": actual,
            "expected": np.diff(expected_cumulative, prepend=0.0),
            "actual_cumulative": actual_cumulative,
            "expected_cumulative": expected_cumulative,
        },
        schema={
            "period": pl.Int64,
            "period_end": pl.Date,
            "actual": pl.Int64,
            "expected": pl.Float64,
            "actual_cumulative": pl.Int64,
            "expected_cumulative": pl.Float64,
        },
    )
    if calibration_end is not None:
        period_starts = start_day + unit_days * np.arange(period_count, dtype=np.int64)
        result = result.with_columns(
            pl.Series("is_holdout", period_starts > cohort_end_day, dtype=pl.Boolean)
        )
    return result
