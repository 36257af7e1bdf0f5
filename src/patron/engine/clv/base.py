"""Shared machinery of the CLV estimators: input checks, the maximum-likelihood fit, errors.

How a model plugs in
--------------------
A model subclasses :class:`LikelihoodModel` and declares

* ``parameter_names``: the paper's names, in the order of the parameter vector
  (``("r", "alpha", "a", "b")`` for BG/NBD);
* ``required_columns``: the customer columns its likelihood reads
  (``("frequency", "recency", "T")``);
* ``default_initial_params``: a starting point for the optimiser;
* ``_log_likelihood_terms(params, columns)``: the log-likelihood of each customer (shape
  ``(n,)``) and its analytic gradient with respect to the parameters (shape ``(k, n)``),
  written with log-gamma / log-beta / log-sum-exp so that it is finite for customers with
  thousands of purchases;
* optionally ``_check_columns(columns)``, for checks beyond "finite and not negative"
  (:func:`check_recency_within_T`, :func:`check_positive_where`).

* optionally ``_sufficient_statistics(columns)`` and ``_total_log_likelihood(params,
  statistics)``: what the likelihood needs, gathered once per fit (tables per distinct
  frequency, constant sums), and the total log-likelihood with its analytic gradient and
  Hessian from them. A model that has them is fitted by Newton's method (below).

``fit(data)`` then reads and checks the columns once (:func:`customer_columns`), maximises
the log-likelihood over the logarithms of the parameters (so they stay positive, and the
optimiser sees a better-conditioned surface), and sets ``params_``, ``log_likelihood_``,
``params_se_`` (from the inverse Hessian of the negative log-likelihood) and
``n_customers_``. Prediction methods read fitted values through :meth:`fitted_params`.

Two ways to the maximum:

* models with the analytic Hessian: Newton's method with a backtracking line search
  (:meth:`LikelihoodModel._newton`), started from the maximum on an evenly spread
  subsample of the customers (:data:`SUBSAMPLE_ROWS`) and finished on all of them. Newton
  converges quadratically near the optimum, so a million customers cost a handful of
  passes instead of the 25 to 60 of a quasi-Newton method; the standard errors come from the
  same analytic Hessian. Should it fail (a parameter running to its bound, a Hessian not
  finite), the fit falls back to the next way, from the initial parameters.
* the others: L-BFGS-B with the analytic gradient on the distinct rows weighted by their
  counts (:func:`distinct_rows`), the Hessian for the standard errors taken by forward
  differences of the analytic gradient.

``data`` is any dataframe Narwhals reads (Polars, pandas, PySpark ...) or a mapping of column
names to array-likes; it is turned into float64 numpy arrays once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import narwhals as nw
import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from patron.engine.frames import EngineInputError

FloatArray = npt.NDArray[np.float64]
Columns = dict[str, FloatArray]

LOG_PARAMETER_BOUND = 20.0
"""Bound on the log of every parameter during the fit (e^20 is about 5e8): keeps the
optimiser's trial points away from overflow without constraining any sensible fit."""

GRADIENT_TOLERANCE = 1e-5
"""Largest projected gradient of the per-customer mean negative log-likelihood (in log
parameters) accepted as an optimum when L-BFGS-B stops for another reason."""

NEWTON_GRADIENT_TOLERANCE = 1e-10
"""Newton takes its last step once the largest gradient of the mean negative log-likelihood
per customer (in log parameters) is below this, or once that step would lower that mean by
less than :data:`NEWTON_DECREMENT_TOLERANCE`."""

NEWTON_DECREMENT_TOLERANCE = 1e-14
"""Predicted decrease of the mean negative log-likelihood per customer (Newton's decrement,
``g' H^-1 g``) under which the next step is the last: about ten times float64's
resolution of that mean, so that further evaluations could not tell the difference."""

NEWTON_MAX_STEP = 2.0
"""Longest Newton step in log parameters (a factor e^2): far from the optimum, where the
quadratic model is poor, a longer step is cut to this before the line search."""

SUBSAMPLE_ROWS = 20_000
"""Newton starts from the maximum on every k-th customer, about this many of them, when
there are at least four times as many customers: a start within about 1 % of the optimum,
from which three or four Newton steps on all customers reach it."""

CHUNK_ROWS = 16_000
"""Rows per block in the per-customer passes of a total log-likelihood: 125 KiB a float64
array, small enough for the CPU cache and for malloc's heap (larger arrays are mapped
from the OS and faulted in page by page on every pass), large enough that numpy's call
overhead stays below the arithmetic. Over a million customers this halves the time of an
evaluation."""

IntArray = npt.NDArray[np.intp]


class ModelFitError(RuntimeError):
    """The optimiser did not reach a maximum of the likelihood."""


class ModelNotFittedError(RuntimeError):
    """A fitted attribute was asked of a model before ``fit``."""


def customer_columns(data: Any, required: tuple[str, ...], what: str) -> Columns:
    """Read ``required`` columns of ``data`` into float64 arrays, after checking them.

    ``data`` is a dataframe (anything Narwhals reads; a lazy frame is collected) or a mapping
    of column names to array-likes. Raises :class:`EngineInputError` naming the missing
    columns, or the column and number of rows that are missing, not finite or negative.
    """
    if isinstance(data, Mapping):
        present = [str(name) for name in data]
        missing = [column for column in required if column not in data]
        raw = {column: data[column] for column in required if column in data}
    else:
        try:
            frame = nw.from_native(data)
        except TypeError as error:
            raise EngineInputError(
                f"{what}: expected a dataframe or a mapping of columns, got {type(data).__name__}"
            ) from error
        if isinstance(frame, nw.LazyFrame):
            present = frame.collect_schema().names()
            missing = [column for column in required if column not in present]
            if not missing:
                frame = frame.select(*required).collect()
        else:
            present = frame.columns
            missing = [column for column in required if column not in present]
        raw = {} if missing else {column: frame[column].to_numpy() for column in required}
    if missing:
        raise EngineInputError(
            f"{what} lacks the column(s) {', '.join(missing)}; it has {', '.join(present)}"
        )
    columns: Columns = {}
    length: int | None = None
    for column in required:
        try:
            values = np.asarray(raw[column], dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as error:
            raise EngineInputError(f"{what}: column {column} is not numeric") from error
        if length is not None and values.shape[0] != length:
            raise EngineInputError(f"{what}: column {column} has another length than the rest")
        length = values.shape[0]
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise EngineInputError(
                f"{what}: column {column} is missing or not finite in {bad} row(s)"
            )
        negative = int(np.count_nonzero(values < 0))
        if negative:
            raise EngineInputError(f"{what}: column {column} is negative in {negative} row(s)")
        columns[column] = values
    return columns


def check_recency_within_T(columns: Columns, what: str) -> None:
    """Refuse rows whose recency (age at the last purchase) exceeds T (age at the end)."""
    beyond = int(np.count_nonzero(columns["recency"] > columns["T"]))
    if beyond:
        raise EngineInputError(f"{what}: recency is greater than T in {beyond} row(s)")


def check_positive_where(
    columns: Columns, column: str, where: npt.NDArray[np.bool_], what: str
) -> None:
    """Refuse rows selected by the boolean mask ``where`` whose ``column`` is not above zero.

    Example: Gamma-Gamma needs a positive ``monetary_value`` wherever ``frequency > 0``.
    """
    bad = int(np.count_nonzero(where & (columns[column] <= 0)))
    if bad:
        raise EngineInputError(f"{what}: column {column} is zero or negative in {bad} row(s)")


DISTINCT_SHARE = 0.7
"""Rows are collapsed for the fit only when at most this share of them is distinct."""


def distinct_rows(columns: Columns) -> tuple[Columns, FloatArray]:
    """The distinct rows of ``columns`` and how many times each occurs.

    Customer summaries in whole days repeat a lot (every one-off buyer of a day has the same
    ``frequency, recency, T``), so the likelihood is evaluated once per distinct row and
    weighted by its count. Where most rows are distinct the columns are returned as they are,
    with weights of one, and the sort is the only cost.
    """
    names = list(columns)
    stacked = np.column_stack([columns[name] for name in names])
    order = np.lexsort(stacked.T[::-1])
    ordered = stacked[order]
    is_start = np.ones(len(ordered), dtype=bool)
    is_start[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    starts = np.flatnonzero(is_start)
    if len(starts) > DISTINCT_SHARE * len(ordered):
        return columns, np.ones(len(ordered), dtype=np.float64)
    weights = np.diff(np.append(starts, len(ordered))).astype(np.float64)
    distinct = {
        name: np.ascontiguousarray(ordered[starts, index]) for index, name in enumerate(names)
    }
    return distinct, weights


def dot(left: FloatArray, right: FloatArray) -> float:
    """``sum(left * right)`` of two 1-D arrays.

    Not ``left @ right``: numpy hands a 1-D product to the BLAS, which on a shared machine
    with few cores may start threads and take 50 times longer than one multiply and numpy's
    pairwise sum (also the more accurate of the two on a million terms).
    """
    return float(np.sum(left * right))


DISTINCT_INTEGER_SPAN = 1_000_000
"""Integer columns whose largest value is at most this (plus ten per row) are tabled by
counting (``np.bincount``, one pass) rather than by sorting (``np.unique``)."""


def value_codes(values: FloatArray) -> tuple[FloatArray, IntArray, FloatArray]:
    """The distinct values of ``values``, the index of each row's value among them, counts.

    Per-customer terms that depend on one column only (``log Gamma(r + x)`` on the
    frequency) are computed once per distinct value and gathered or summed with the counts.
    Frequencies are whole numbers, so they are counted in one pass without a sort; other
    columns go through ``np.unique``.
    """
    if len(values) == 0:
        return np.empty(0), np.empty(0, dtype=np.intp), np.empty(0)
    largest = float(values.max())
    if largest <= DISTINCT_INTEGER_SPAN + 10 * len(values) and np.array_equal(
        values, np.floor(values)
    ):
        integers = values.astype(np.intp)
        counts = np.bincount(integers)
        present = np.flatnonzero(counts)
        lookup = np.zeros(len(counts), dtype=np.intp)
        lookup[present] = np.arange(len(present), dtype=np.intp)
        return (
            present.astype(np.float64),
            lookup[integers],
            counts[present].astype(np.float64),
        )
    distinct, codes, counts = np.unique(values, return_inverse=True, return_counts=True)
    return distinct, codes.reshape(-1).astype(np.intp), counts.astype(np.float64)


def horizon(t: Any, what: str) -> FloatArray:
    """A forecast horizon (scalar or array, in the model's time unit) as float64, not negative."""
    values = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise EngineInputError(f"{what}: the horizon t must be finite and not negative")
    return values


@dataclass(frozen=True)
class _NewtonResult:
    """Where Newton stopped (log parameters), the largest gradient there, and the plain
    log-likelihood with its Hessian in the parameters (for ``log_likelihood_`` and the
    standard errors)."""

    log_params: FloatArray
    largest_gradient: float
    log_likelihood: tuple[float, FloatArray]


class LikelihoodModel:
    """Base of the maximum-likelihood CLV models (scikit-learn contract).

    Parameters
    ----------
    penalizer : float
        L2 penalty on the parameters, added to the mean negative log-likelihood per customer
        as ``penalizer * sum(params**2)`` (as in lifetimes); 0 gives the plain MLE.
    tol : float
        Tolerance of L-BFGS-B on the mean negative log-likelihood per customer.
    max_iter : int
        Most optimiser iterations.
    initial_params : mapping of name to value, optional
        Where the optimiser starts; the model's defaults when ``None``.
    """

    parameter_names: ClassVar[tuple[str, ...]] = ()
    required_columns: ClassVar[tuple[str, ...]] = ()
    default_initial_params: ClassVar[tuple[float, ...]] = ()
    model_name: ClassVar[str] = "model"

    params_: dict[str, float]
    params_se_: dict[str, float]
    log_likelihood_: float
    n_customers_: int

    def __init__(
        self,
        penalizer: float = 0.0,
        tol: float = 1e-12,
        max_iter: int = 1000,
        initial_params: Mapping[str, float] | None = None,
    ) -> None:
        self.penalizer = penalizer
        self.tol = tol
        self.max_iter = max_iter
        self.initial_params = initial_params

    # -- what a model provides ---------------------------------------------------------------

    def _log_likelihood_terms(
        self, params: FloatArray, columns: Columns
    ) -> tuple[FloatArray, FloatArray]:
        """Each customer's log-likelihood ``(n,)`` and its gradient ``(k, n)`` in ``params``."""
        raise NotImplementedError

    def _check_columns(self, columns: Columns) -> None:
        """Model-specific checks of validated columns (raise :class:`EngineInputError`)."""

    def _sufficient_statistics(self, columns: Columns) -> Any:
        """What :meth:`_total_log_likelihood` needs of ``columns``, or ``None`` (no Newton fit)."""
        return None

    def _total_log_likelihood(
        self, params: FloatArray, statistics: Any
    ) -> tuple[float, FloatArray, FloatArray]:
        """The total log-likelihood, its gradient ``(k,)`` and Hessian ``(k, k)`` in ``params``."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------

    def columns(self, data: Any) -> Columns:
        """The model's required columns of ``data`` as float64 arrays, checked."""
        columns = customer_columns(data, self.required_columns, self.model_name)
        self._check_columns(columns)
        return columns

    def fitted_params(self) -> FloatArray:
        """The fitted parameter vector, in :attr:`parameter_names` order."""
        if not hasattr(self, "params_"):
            raise ModelNotFittedError(f"{type(self).__name__} is not fitted yet: call fit(data)")
        return np.array([self.params_[name] for name in self.parameter_names], dtype=np.float64)

    def customer_log_likelihood(self, data: Any) -> FloatArray:
        """Each customer's log-likelihood under the fitted parameters."""
        return self._log_likelihood_terms(self.fitted_params(), self.columns(data))[0]

    def log_likelihood_gradient(self, params: FloatArray, data: Any) -> tuple[float, FloatArray]:
        """Total log-likelihood and its analytic gradient at ``params`` (any, not only fitted)."""
        terms, gradient = self._log_likelihood_terms(
            np.asarray(params, dtype=np.float64), self.columns(data)
        )
        return float(terms.sum()), gradient.sum(axis=1)

    def _initial_vector(self) -> FloatArray:
        if self.initial_params is None:
            return np.array(self.default_initial_params, dtype=np.float64)
        unknown = set(self.initial_params) - set(self.parameter_names)
        if unknown:
            raise EngineInputError(
                f"{self.model_name}: unknown initial parameter(s) {', '.join(sorted(unknown))}; "
                f"the parameters are {', '.join(self.parameter_names)}"
            )
        defaults = dict(zip(self.parameter_names, self.default_initial_params, strict=True))
        values = [
            float(self.initial_params.get(name, defaults[name])) for name in self.parameter_names
        ]
        if not all(value > 0 and np.isfinite(value) for value in values):
            raise EngineInputError(f"{self.model_name}: initial parameters must be positive")
        return np.array(values, dtype=np.float64)

    def fit(self, data: Any) -> Self:
        """Maximise the likelihood of ``data``; returns ``self`` with the learned attributes.

        The columns are checked before anything is fitted. The objective is the mean negative
        log-likelihood per customer plus the penalty, minimised over ``log(params)`` (chain
        rule: ``d/d log p = p d/dp``): by Newton's method with the analytic Hessian where the
        model has it (:meth:`_newton`), else (or should Newton fail) by L-BFGS-B with the
        analytic gradient, customers with identical columns evaluated once, weighted by their
        number (:func:`distinct_rows`), in the fit and in the standard errors alike.
        """
        columns = self.columns(data)
        count = len(next(iter(columns.values())))
        if count == 0:
            raise EngineInputError(f"{self.model_name}: no customers to fit")
        start = np.log(self._initial_vector())
        statistics = self._sufficient_statistics(columns)
        if statistics is not None and self._fit_newton(columns, statistics, start, count):
            return self
        return self._fit_lbfgs(columns, start, count)

    def _penalised_objective(
        self, log_params: FloatArray, statistics: Any, count: int
    ) -> tuple[float, FloatArray, FloatArray, tuple[float, FloatArray]]:
        """Mean negative log-likelihood plus penalty, gradient and Hessian in log parameters.

        Not finite anywhere (a trial point where the likelihood underflows) gives ``inf``.
        Last comes the plain total log-likelihood and its Hessian in the parameters.
        """
        params = np.exp(log_params)
        # A trial point far out may give terms that are not finite: the value is then inf
        # (below) and the line search steps back, without warnings.
        with np.errstate(all="ignore"):
            total, gradient, hessian = self._total_log_likelihood(params, statistics)
            value = -total / count + self.penalizer * float(np.sum(params**2))
            grad_params = -gradient / count + 2.0 * self.penalizer * params
            hess_params = -hessian / count + 2.0 * self.penalizer * np.eye(len(params))
            # p = e^theta: d/dtheta = p d/dp, d2/dtheta2 = p p' d2/dp dp' + diag(p d/dp).
            grad = grad_params * params
            hess = params[:, None] * hess_params * params[None, :] + np.diag(grad)
        # The plain log-likelihood and its Hessian come along, for log_likelihood_ and the
        # standard errors at the optimum without another pass over the customers.
        plain = (float(total), hessian)
        if not (np.isfinite(value) and np.all(np.isfinite(grad)) and np.all(np.isfinite(hess))):
            return np.inf, grad, hess, plain
        return float(value), grad, hess, plain

    def _newton(self, statistics: Any, start: FloatArray, count: int) -> _NewtonResult | None:
        """Minimise the penalised objective from ``start`` by Newton's method; ``None`` if it fails.

        Each step solves with the Hessian where it is positive definite; elsewhere (far from
        the optimum) with its eigenvalues made positive, which keeps the step a descent
        direction. Steps longer than :data:`NEWTON_MAX_STEP` are shortened, then halved until
        the objective decreases enough (Armijo). Once the step would lower the objective by
        less than :data:`NEWTON_DECREMENT_TOLERANCE` it is the last: taken without another
        evaluation, since the objective cannot resolve it and what error remains after it is
        of the order of its square (Newton's quadratic convergence); the log-likelihood and
        Hessian returned are those of the point it starts from. A line search that finds no
        decrease stops there too, accepted if the gradient is within
        :data:`GRADIENT_TOLERANCE` (as L-BFGS-B's end is). Fails (``None``) on a start that is
        not finite, a parameter beyond :data:`LOG_PARAMETER_BOUND`, a line search that finds
        no decrease where the gradient is larger, or ``max_iter`` steps.
        """
        theta = start.copy()
        value, grad, hess, plain = self._penalised_objective(theta, statistics, count)
        if not np.isfinite(value):
            return None
        for _ in range(self.max_iter):
            eigenvalues, eigenvectors = np.linalg.eigh(hess)
            floor = 1e-8 * max(1.0, float(np.max(np.abs(eigenvalues))))
            eigenvalues = np.maximum(np.abs(eigenvalues), floor)
            step = -eigenvectors @ ((eigenvectors.T @ grad) / eigenvalues)
            length = float(np.max(np.abs(step)))
            if length > NEWTON_MAX_STEP:
                step *= NEWTON_MAX_STEP / length
            decrement = -float(grad @ step)
            largest = float(np.max(np.abs(grad)))
            if largest < NEWTON_GRADIENT_TOLERANCE or decrement < NEWTON_DECREMENT_TOLERANCE:
                optimum = theta + step
                # A tiny decrement with a gradient that is not small is no optimum (a
                # curvature out of scale): leave it to L-BFGS-B.
                if (
                    float(np.max(np.abs(optimum))) > LOG_PARAMETER_BOUND
                    or largest > GRADIENT_TOLERANCE
                ):
                    return None
                return _NewtonResult(optimum, largest, plain)
            fraction = 1.0
            while True:
                trial = theta + fraction * step
                trial_value, trial_grad, trial_hess, trial_plain = self._penalised_objective(
                    trial, statistics, count
                )
                if np.isfinite(trial_value) and (
                    trial_value <= value - 1e-4 * fraction * decrement
                ):
                    break
                fraction /= 2.0
                if fraction < 1e-10:
                    # No decrease the objective can resolve: on a flat ridge (a parameter
                    # running off) rounding hides it. An optimum by the tolerance L-BFGS-B is
                    # held to, or a failure.
                    largest = float(np.max(np.abs(grad)))
                    if largest > GRADIENT_TOLERANCE:
                        return None
                    return _NewtonResult(theta, largest, plain)
            theta, value, grad, hess = trial, trial_value, trial_grad, trial_hess
            plain = trial_plain
            if float(np.max(np.abs(theta))) > LOG_PARAMETER_BOUND:
                return None
        return None

    def _fit_newton(self, columns: Columns, statistics: Any, start: FloatArray, count: int) -> bool:
        """Fit by Newton's method from a subsample's maximum; whether it succeeded.

        On success the fitted attributes are set, the standard errors from the analytic
        Hessian of the plain (unpenalised) log-likelihood at the optimum.
        """
        if count >= 4 * SUBSAMPLE_ROWS:
            stride = count // SUBSAMPLE_ROWS
            sample = {name: values[::stride] for name, values in columns.items()}
            sample_statistics = self._sufficient_statistics(sample)
            sample_count = len(next(iter(sample.values())))
            sample_result = self._newton(sample_statistics, start, sample_count)
            if sample_result is not None:
                start = sample_result.log_params
        result = self._newton(statistics, start, count)
        if result is None:
            return False
        params = np.exp(result.log_params)
        total, hessian = result.log_likelihood
        self.params_ = dict(zip(self.parameter_names, map(float, params), strict=True))
        self.log_likelihood_ = float(total)
        standard_errors = _standard_errors_from_hessian(hessian)
        self.params_se_ = dict(zip(self.parameter_names, map(float, standard_errors), strict=True))
        self.n_customers_ = count
        return True

    def _fit_lbfgs(self, columns: Columns, start: FloatArray, count: int) -> Self:
        """Fit by L-BFGS-B on the distinct rows; raises :class:`ModelFitError` without optimum."""
        distinct, weights = distinct_rows(columns)

        def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
            params = np.exp(log_params)
            terms, gradient = self._log_likelihood_terms(params, distinct)
            # A trial point may give infinite terms: their sum is then not finite, caught
            # below, without a warning (as the BLAS product this replaced gave none).
            with np.errstate(invalid="ignore", over="ignore"):
                value = -dot(terms, weights) / count + self.penalizer * float(np.sum(params**2))
                grad = -np.sum(gradient * weights, axis=1) / count + 2.0 * self.penalizer * params
            if not np.isfinite(value):
                # A trial point out where the likelihood underflows: tell the line search to
                # step back rather than letting NaN into the L-BFGS memory.
                return float(np.finfo(np.float64).max / 1e10), np.zeros_like(log_params)
            return float(value), grad * params

        bounds = [(-LOG_PARAMETER_BOUND, LOG_PARAMETER_BOUND)] * len(start)
        result = minimize(
            objective,
            start,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": self.max_iter, "ftol": self.tol, "gtol": 1e-9},
        )
        params = np.exp(result.x)
        terms, gradient = self._log_likelihood_terms(params, distinct)
        total_gradient = np.sum(gradient * weights, axis=1)
        # The objective's gradient at the end, in log-parameters: -mean gradient * params.
        final_gradient = (-total_gradient / count + 2.0 * self.penalizer * params) * params
        at_bound = np.abs(result.x) >= LOG_PARAMETER_BOUND
        projected = np.where(at_bound, 0.0, final_gradient)
        if not result.success and float(np.max(np.abs(projected))) > GRADIENT_TOLERANCE:
            raise ModelFitError(
                f"{self.model_name}: the optimiser stopped without an optimum ({result.message})"
            )
        self.params_ = dict(zip(self.parameter_names, map(float, params), strict=True))
        self.log_likelihood_ = dot(terms, weights)
        standard_errors = self._standard_errors(params, distinct, weights, total_gradient)
        self.params_se_ = dict(zip(self.parameter_names, map(float, standard_errors), strict=True))
        self.n_customers_ = count
        return self

    def _standard_errors(
        self, params: FloatArray, distinct: Columns, weights: FloatArray, gradient: FloatArray
    ) -> FloatArray:
        """Square roots of the diagonal of the inverse observed information at ``params``.

        The Hessian of the total log-likelihood (over the ``distinct`` rows weighted by their
        counts) is taken by forward differences of the analytic gradient (``gradient`` is the
        total gradient at ``params``; relative steps of
        1e-6 leave a relative error of about that size, far below the standard errors' own
        uncertainty), then symmetrised. NaN where the Hessian is not negative definite (a
        parameter at a bound, a flat likelihood).
        """
        size = len(params)
        hessian = np.empty((size, size))
        for index in range(size):
            step = 1e-6 * params[index]
            shifted = params.copy()
            shifted[index] += step
            shifted_gradient = np.sum(
                self._log_likelihood_terms(shifted, distinct)[1] * weights, axis=1
            )
            hessian[index] = -(shifted_gradient - gradient) / step
        return _standard_errors_from_hessian(-(hessian + hessian.T) / 2.0)


def _standard_errors_from_hessian(hessian: FloatArray) -> FloatArray:
    """Square roots of the diagonal of ``inv(-hessian)``, ``hessian`` that of the total
    log-likelihood; NaN where a variance is not positive or the matrix is singular."""
    size = len(hessian)
    try:
        covariance = np.linalg.inv(-hessian)
    except np.linalg.LinAlgError:
        return np.full(size, np.nan)
    variances = np.diag(covariance)
    result: FloatArray = np.where(variances > 0, np.sqrt(np.abs(variances)), np.nan)
    return result
