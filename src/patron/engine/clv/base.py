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

``fit(data)`` then reads and checks the columns once (:func:`customer_columns`), maximises
the log-likelihood with L-BFGS-B over the logarithms of the parameters (so they stay
positive, and the optimiser sees a better-conditioned surface), and sets ``params_``,
``log_likelihood_``, ``params_se_`` (from the inverse Hessian of the negative
log-likelihood, the Hessian taken by forward differences of the analytic gradient) and
``n_customers_``. Prediction methods read fitted values through :meth:`fitted_params`.

``data`` is any dataframe Narwhals reads (Polars, pandas, PySpark ...) or a mapping of column
names to array-likes; it is turned into float64 numpy arrays once.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def horizon(t: Any, what: str) -> FloatArray:
    """A forecast horizon (scalar or array, in the model's time unit) as float64, not negative."""
    values = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise EngineInputError(f"{what}: the horizon t must be finite and not negative")
    return values


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
        log-likelihood per customer plus the penalty, minimised by L-BFGS-B over
        ``log(params)`` with the analytic gradient (chain rule: ``d/d log p = p d/dp``).
        Customers with identical columns are evaluated once, weighted by their number
        (:func:`distinct_rows`), in the fit and in the standard errors alike.
        """
        columns = self.columns(data)
        count = len(next(iter(columns.values())))
        if count == 0:
            raise EngineInputError(f"{self.model_name}: no customers to fit")

        distinct, weights = distinct_rows(columns)

        def objective(log_params: FloatArray) -> tuple[float, FloatArray]:
            params = np.exp(log_params)
            terms, gradient = self._log_likelihood_terms(params, distinct)
            value = -float(terms @ weights) / count + self.penalizer * float(np.sum(params**2))
            grad = -(gradient @ weights) / count + 2.0 * self.penalizer * params
            if not np.isfinite(value):
                # A trial point out where the likelihood underflows: tell the line search to
                # step back rather than letting NaN into the L-BFGS memory.
                return float(np.finfo(np.float64).max / 1e10), np.zeros_like(log_params)
            return float(value), grad * params

        start = np.log(self._initial_vector())
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
        total_gradient = gradient @ weights
        # The objective's gradient at the end, in log-parameters: -mean gradient * params.
        final_gradient = (-total_gradient / count + 2.0 * self.penalizer * params) * params
        at_bound = np.abs(result.x) >= LOG_PARAMETER_BOUND
        projected = np.where(at_bound, 0.0, final_gradient)
        if not result.success and float(np.max(np.abs(projected))) > GRADIENT_TOLERANCE:
            raise ModelFitError(
                f"{self.model_name}: the optimiser stopped without an optimum ({result.message})"
            )
        self.params_ = dict(zip(self.parameter_names, map(float, params), strict=True))
        self.log_likelihood_ = float(terms @ weights)
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
            shifted_gradient = self._log_likelihood_terms(shifted, distinct)[1] @ weights
            hessian[index] = -(shifted_gradient - gradient) / step
        hessian = (hessian + hessian.T) / 2.0
        try:
            covariance = np.linalg.inv(hessian)
        except np.linalg.LinAlgError:
            return np.full(size, np.nan)
        variances = np.diag(covariance)
        return np.where(variances > 0, np.sqrt(np.abs(variances)), np.nan)
