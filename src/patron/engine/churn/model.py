"""The churn model: gradient-boosted trees on time-split snapshots, calibrated, with reasons.

See docs/churn.md. A customer churns over a horizon of N days when they place no counted
order in it. The model learns from the past as it will be used in the future: features as
of T - 2N labelled on (T - 2N, T - N] train it, features as of T - N labelled on (T - N, T]
validate it, where T is the last day of the data.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Self

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.calibration import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import GroupKFold

from patron.engine.churn.features import (
    BASE_FEATURES,
    BGNBD_FEATURES,
    CHANNEL_FEATURES,
    EVENT_FEATURES,
    churn_features,
    churn_labels,
    order_summary_of,
)
from patron.engine.churn.reasons import (
    TYPICAL_FORMATS,
    top_reasons,
    typical_values,
    wordings,
)
from patron.engine.clv import ModelNotFittedError
from patron.engine.frames import EngineInputError, require_date

FloatArray = npt.NDArray[np.float64]

CALIBRATION_METHODS = ("isotonic", "sigmoid")

REASON_FIELDS = {"code": pl.String, "value": pl.Float64, "en": pl.String, "zh": pl.String}
REASONS_DTYPE = pl.List(pl.Struct(REASON_FIELDS))
"""Type of the ``reasons`` column of :meth:`ChurnModel.predict`."""


MODEL_FEATURES = (
    *BASE_FEATURES,
    *CHANNEL_FEATURES,
    *EVENT_FEATURES,
    "bgnbd_expected_purchases",
    "bgnbd_p_no_purchase",
)
"""Features the classifier reads, those of the snapshot that it has. ``bgnbd_p_alive`` is
left out: it is 1 for every customer without a repeat purchase and within 1e-9 of 1 for
most others on Online Retail, so that trees split on rounding noise; P(no purchase) holds
what it says."""


class ChurnModelError(ValueError):
    """The data cannot train or validate the churn model (too few customers, one class ...)."""


def top_decile_lift(labels: Any, scores: Any) -> float:
    """Churn rate among the 10% highest ``scores`` over the overall churn rate.

    Ties are shared fairly: where the tenth percentile falls inside a group of equal scores,
    that group counts with the fraction of it that fits, at its own churn rate (the expected
    lift of a random order within ties), so that a constant score has a lift of exactly 1.
    """
    y = np.asarray(labels, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if y.size == 0 or y.sum() == 0:
        raise ChurnModelError("top-decile lift needs at least one churned customer")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    distinct, starts, counts = np.unique(-s_sorted, return_index=True, return_counts=True)
    del distinct
    room = y.size / 10.0
    positives = 0.0
    for start, count in zip(starts, counts, strict=True):
        if room <= 0:
            break
        taken = min(float(count), room)
        positives += y_sorted[start : start + count].mean() * taken
        room -= taken
    return float((positives / (y.size / 10.0)) / y.mean())


def score_metrics(labels: Any, scores: Any, probabilities: Any = None) -> dict[str, float]:
    """ROC-AUC, PR-AUC (average precision) and top-decile lift of ``scores``, and the Brier
    score of ``probabilities`` when given."""
    y = np.asarray(labels, dtype=np.int64)
    metrics = {
        "roc_auc": float(roc_auc_score(y, scores)),
        "pr_auc": float(average_precision_score(y, scores)),
        "top_decile_lift": top_decile_lift(y, scores),
    }
    if probabilities is not None:
        metrics["brier"] = float(brier_score_loss(y, probabilities))
    return metrics


class ChurnModel:
    """Probability that a customer places no order in the next ``horizon_days`` days.

    A LightGBM classifier (Ke et al. 2017, "LightGBM: A Highly Efficient Gradient Boosting
    Decision Tree", NeurIPS) on :func:`~patron.engine.churn.churn_features`, trained on a
    time split, with probabilities calibrated on customers held out of the training fit
    (isotonic regression, Zadrozny & Elkan 2002, or Platt's sigmoid, Platt 1999), and
    per-customer reasons from the trees' exact SHAP contributions (Lundberg et al. 2020,
    "From local explanations to global understanding with explainable AI for trees",
    Nature Machine Intelligence).

    Parameters
    ----------
    horizon_days : int
        N, the churn horizon: no order in the next N days.
    random_state : int
        Seed of the calibration split and of LightGBM's bagging.
    n_estimators, learning_rate, num_leaves : LightGBM settings.
    min_child_samples : int
        Fewest training rows in a leaf; a small shop's training snapshot uses 5 % of its rows
        (at least 10) when that is fewer, so that its trees can split at all.
    calibration : {"isotonic", "sigmoid"}
        How the raw scores become probabilities.
    calibration_folds : int
        The calibration is fitted on out-of-fold scores: the training customers are split
        into this many folds (a customer's rows stay in one fold), each fold is scored by
        trees trained on the others, and the calibration maps those held-out scores to the
        labels; the trees that score are then trained on every customer.
    training_snapshots : int
        Snapshots the model learns from: T - 2N, and before it every ``snapshot_step_days``
        back (T - 2N - 7, T - 2N - 14, ...), as many as this; each is labelled on its own
        next N days, so every label still ends by T - N and the validation stays out of
        sight. Older snapshots without customers or with one class only are skipped. They
        show the trees more seasons and more customers than one snapshot can (on Online
        Retail, one snapshot loses to BG/NBD on the top-decile lift; see docs/churn.md).
    snapshot_step_days : int
        Days between the training snapshots.
    refit : bool
        After validation, train the scoring model again, the same way, on the latest labelled
        snapshot (features as of T - N labelled on (T - N, T]), so that it has seen the most
        recent behaviour; ``metrics_`` describe the validated (not refitted) model.

    Attributes
    ----------
    metrics_ : dict
        ``model`` (roc_auc, pr_auc, brier, brier_uncalibrated, top_decile_lift), ``bgnbd``
        (the BG/NBD baseline: score = -expected purchases over the horizon; brier of its
        P(no purchase)), ``one_minus_p_alive`` (reported beside), and ``train`` /
        ``validation`` (``as_of``, ``customers``, ``positive_rate``, ``label_end``).
    validation_scores_ : polars.DataFrame
        The validation snapshot's ``customer_id, churned, churn_probability,
        churn_probability_uncalibrated, bgnbd_expected_purchases, bgnbd_p_no_purchase,
        bgnbd_p_alive``, for anyone to recompute the metrics.
    feature_names_ : list of str
        The features the scoring model reads.
    scoring_snapshot_ : datetime.date
        The snapshot the scoring model was trained on.
    """

    metrics_: dict[str, Any]
    validation_scores_: pl.DataFrame
    feature_names_: list[str]
    scoring_snapshot_: dt.date

    def __init__(
        self,
        horizon_days: int = 90,
        random_state: int = 0,
        n_estimators: int = 100,
        learning_rate: float = 0.05,
        num_leaves: int = 4,
        min_child_samples: int = 100,
        calibration: str = "sigmoid",
        calibration_folds: int = 5,
        training_snapshots: int = 1,
        snapshot_step_days: int = 7,
        refit: bool = True,
    ) -> None:
        self.horizon_days = horizon_days
        self.random_state = random_state
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.calibration = calibration
        self.calibration_folds = calibration_folds
        self.training_snapshots = training_snapshots
        self.snapshot_step_days = snapshot_step_days
        self.refit = refit

    # -- fitting ------------------------------------------------------------------------------

    def fit(self, orders: Any, as_of: dt.date, events: Any = None) -> Self:
        """Train on the snapshot as of ``as_of - 2N``, validate on ``as_of - N``; returns self.

        ``orders``: order lines or the order table of
        :func:`patron.engine.frames.order_summary`; ``as_of``: the last day of the data (T);
        ``events``: optional ``customer_id, occurred_at, event_type`` table.
        Raises :class:`ChurnModelError` when the training or validation snapshot has no
        customers or one class only.
        """
        require_date(as_of, "as_of")
        self._check_settings()
        horizon = dt.timedelta(days=self.horizon_days)
        train_as_of, validation_as_of = as_of - 2 * horizon, as_of - horizon
        # The order table is built once: every snapshot filters it.
        orders = order_summary_of(orders)
        train_x, train_y, train_days = self._snapshots(orders, train_as_of, events, "training")
        validation_x, validation_y = self._snapshot(orders, validation_as_of, events, "validation")
        feature_names = [name for name in MODEL_FEATURES if name in train_x.columns]

        booster, calibrator = self._train(train_x, train_y, feature_names)
        raw = _booster_probability(booster, _matrix(validation_x, feature_names))
        probability = _calibrated(calibrator, raw)
        y = validation_y.to_numpy().astype(np.int64)
        model_metrics = score_metrics(y, probability, probability)
        model_metrics["brier_uncalibrated"] = float(brier_score_loss(y, raw))
        metrics: dict[str, Any] = {"model": model_metrics}
        has_bgnbd = validation_x.select(pl.col(BGNBD_FEATURES[0]).is_not_null().all()).item()
        if has_bgnbd:
            expected = validation_x["bgnbd_expected_purchases"].to_numpy()
            p_none = validation_x["bgnbd_p_no_purchase"].to_numpy()
            dead = 1.0 - validation_x["bgnbd_p_alive"].to_numpy()
            metrics["bgnbd"] = score_metrics(y, -expected, p_none)
            metrics["one_minus_p_alive"] = score_metrics(y, dead, dead)
        else:
            # The snapshot's BG/NBD fit failed (see churn_features): no baseline to report.
            metrics["bgnbd"] = None
            metrics["one_minus_p_alive"] = None
        metrics["train"] = _snapshot_facts(train_as_of, validation_as_of, train_y)
        metrics["train"]["snapshots"] = train_days
        metrics["train"]["customers"] = train_x["customer_id"].n_unique()
        metrics["train"]["rows"] = train_x.height
        metrics["validation"] = _snapshot_facts(validation_as_of, as_of, validation_y)
        self.metrics_ = metrics
        self.validation_scores_ = validation_x.select(
            "customer_id",
            validation_y.alias("churned"),
            pl.Series("churn_probability", probability),
            pl.Series("churn_probability_uncalibrated", raw),
            pl.col("bgnbd_expected_purchases"),
            pl.col("bgnbd_p_no_purchase"),
            pl.col("bgnbd_p_alive"),
        )
        if self.refit:
            refit_x, refit_y, _ = self._snapshots(orders, validation_as_of, events, "refit")
            booster, calibrator = self._train(refit_x, refit_y, feature_names)
            self.scoring_snapshot_ = validation_as_of
        else:
            self.scoring_snapshot_ = train_as_of
        self._booster, self._calibrator = booster, calibrator
        self.feature_names_ = feature_names
        return self

    def _check_settings(self) -> None:
        for name in ("horizon_days", "training_snapshots", "snapshot_step_days"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise EngineInputError(f"{name} must be a positive integer: {value!r}")
        if self.calibration not in CALIBRATION_METHODS:
            raise EngineInputError(
                f"calibration must be one of {', '.join(CALIBRATION_METHODS)}: {self.calibration!r}"
            )
        if not isinstance(self.calibration_folds, int) or self.calibration_folds < 2:
            raise EngineInputError(
                f"calibration_folds must be an integer of at least 2: {self.calibration_folds!r}"
            )

    def _snapshots(
        self, orders: Any, latest: dt.date, events: Any, what: str
    ) -> tuple[pl.DataFrame, pl.Series, list[dt.date]]:
        """The stacked labelled snapshots ``latest``, ``latest - step``, ... (see
        ``training_snapshots``); ``latest`` must be usable, older ones are skipped if not."""
        features, labels = self._snapshot(orders, latest, events, what)
        frames, series, days = [features], [labels], [latest]
        step = dt.timedelta(days=self.snapshot_step_days)
        for index in range(1, self.training_snapshots):
            day = latest - index * step
            try:
                older_features, older_labels = self._snapshot(orders, day, events, what)
            except ChurnModelError:
                # The data does not reach back this far (or one class only): stop here.
                break
            frames.append(older_features.select(features.columns))
            series.append(older_labels)
            days.append(day)
        return pl.concat(frames), pl.concat(series), days

    def _snapshot(
        self, orders: Any, as_of: dt.date, events: Any, what: str
    ) -> tuple[pl.DataFrame, pl.Series]:
        """Features as of ``as_of`` and their labels over the horizon after it, checked."""
        features = churn_features(orders, as_of, events, horizon_days=self.horizon_days)
        if features.height == 0:
            back = {"training": "2 x ", "validation": "", "refit": ""}[what]
            raise ChurnModelError(
                f"no customers with an order on or before {as_of}, the {what} snapshot "
                f"(as_of - {back}{self.horizon_days} days): the data must reach further back"
            )
        labels = churn_labels(orders, as_of, self.horizon_days)
        joined = features.join(labels, on="customer_id", how="left")
        churned = joined["churned"].fill_null(True)
        positives = int(churned.sum())
        if positives in (0, churned.len()):
            kind = "churned" if positives else "stayed"
            raise ChurnModelError(
                f"every one of the {churned.len()} customers of the {what} snapshot {as_of} "
                f"{kind} over the next {self.horizon_days} days: both churners and "
                "non-churners are needed to train and validate"
            )
        return joined.drop("churned"), churned

    def _lightgbm_params(self, rows: int) -> dict[str, Any]:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": min(self.min_child_samples, max(10, rows // 20)),
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "feature_fraction": 0.8,
            "lambda_l2": 1.0,
            "seed": self.random_state,
            "deterministic": True,
            "force_row_wise": True,
            # One thread: the data are small, and threads would make the fit depend on the
            # machine; patron analyze runs jobs side by side instead.
            "num_threads": 1,
            "verbose": -1,
        }

    def _boost(self, x: FloatArray, y: npt.NDArray[np.int64], names: list[str]) -> lgb.Booster:
        dataset = lgb.Dataset(x, label=y, feature_name=names, free_raw_data=True)
        return lgb.train(self._lightgbm_params(len(y)), dataset, num_boost_round=self.n_estimators)

    def _train(
        self, features: pl.DataFrame, labels: pl.Series, feature_names: list[str]
    ) -> tuple[lgb.Booster, Any]:
        """Trees on every row; the calibration on out-of-fold scores, folds by customer."""
        x = _matrix(features, feature_names)
        y = labels.to_numpy().astype(np.int64)
        # Integer codes: GroupKFold tests membership with np.isin, which is slow on strings.
        customers = np.unique(features["customer_id"].to_numpy(), return_inverse=True)[1]
        folds = min(self.calibration_folds, len(np.unique(customers)))
        if folds < 2:
            raise ChurnModelError("one customer is too few to calibrate the churn model")
        held_out = np.empty(y.size, dtype=np.float64)
        splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        for fit_index, score_index in splitter.split(x, y, groups=customers):
            if y[fit_index].min() == y[fit_index].max():
                raise ChurnModelError(
                    f"too few customers ({len(np.unique(customers))}, {int(y.sum())} churned "
                    "rows) to have both classes in every calibration fold"
                )
            booster = self._boost(x[fit_index], y[fit_index], feature_names)
            held_out[score_index] = _booster_probability(booster, x[score_index])
        calibrator: Any
        if self.calibration == "isotonic":
            calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            calibrator.fit(held_out, y)
        else:
            calibrator = LogisticRegression(C=1e6)
            calibrator.fit(_logit(held_out).reshape(-1, 1), y)
        booster = self._boost(x, y, feature_names)
        if all(tree["num_leaves"] <= 1 for tree in booster.dump_model()["tree_info"]):
            raise ChurnModelError(
                f"the {len(np.unique(customers))} customers of the training snapshot show no "
                "pattern the trees can split on (every customer would get the same risk and "
                "no reasons): the churn model needs more customers or more history"
            )
        return booster, calibrator

    # -- scoring ------------------------------------------------------------------------------

    def predict(self, orders: Any, as_of: dt.date, events: Any = None) -> pl.DataFrame:
        """Churn probability and reasons of every customer with an order on or before ``as_of``.

        Returns ``customer_id``, ``churn_probability`` (calibrated, of no order in the
        ``horizon_days`` after ``as_of``) and ``reasons``: up to three risk-raising
        contributions (exact TreeSHAP values on the log-odds, positive only, largest first,
        one per kind of fact), each ``{code, value, en, zh}`` (feature name, its value, the
        English and Chinese wording; levels such as spend also name the median of the
        customers scored). Sorted by ``customer_id``.
        """
        if not hasattr(self, "_booster"):
            raise ModelNotFittedError("ChurnModel is not fitted yet: call fit(orders, as_of)")
        require_date(as_of, "as_of")
        features = churn_features(orders, as_of, events, horizon_days=self.horizon_days)
        schema: dict[str, pl.DataType | type[pl.DataType]] = {
            "customer_id": pl.String,
            "churn_probability": pl.Float64,
            "reasons": REASONS_DTYPE,
        }
        if features.height == 0:
            return pl.DataFrame(schema=schema)
        x = _matrix(features, self.feature_names_)
        probability = _calibrated(self._calibrator, _booster_probability(self._booster, x))
        contributions = np.asarray(self._booster.predict(x, pred_contrib=True))[:, :-1]
        wording = wordings(self.horizon_days)
        present = [name for name in self.feature_names_ if name in features.columns]
        rows = features.select("customer_id", *present).to_dicts()
        typical = typical_values(
            {name: features[name].to_list() for name in present if name in TYPICAL_FORMATS}
        )
        reasons = [
            top_reasons(
                row,
                dict(zip(self.feature_names_, values, strict=True)),
                wording,
                typical=typical,
            )
            for row, values in zip(rows, contributions.tolist(), strict=True)
        ]
        return pl.DataFrame(
            {
                "customer_id": features["customer_id"],
                "churn_probability": probability,
                "reasons": reasons,
            },
            schema=schema,
        )


def _matrix(features: pl.DataFrame, names: list[str]) -> FloatArray:
    """The feature matrix in ``names`` order (null = NaN, which LightGBM treats as missing);
    a feature the frame lacks (no events given now, say) is all missing."""
    columns = [
        features[name].cast(pl.Float64).fill_null(math.nan).to_numpy()
        if name in features.columns
        else np.full(features.height, math.nan)
        for name in names
    ]
    if not columns:
        return np.empty((features.height, 0))
    return np.asarray(np.column_stack(columns), dtype=np.float64)


def _booster_probability(booster: lgb.Booster, x: FloatArray) -> FloatArray:
    return np.asarray(booster.predict(x), dtype=np.float64)


def _logit(p: FloatArray) -> FloatArray:
    clipped = np.clip(p, 1e-12, 1.0 - 1e-12)
    return np.asarray(np.log(clipped / (1.0 - clipped)), dtype=np.float64)


def _calibrated(calibrator: Any, raw: FloatArray) -> FloatArray:
    if isinstance(calibrator, IsotonicRegression):
        return np.asarray(calibrator.predict(raw), dtype=np.float64)
    return np.asarray(calibrator.predict_proba(_logit(raw).reshape(-1, 1))[:, 1], dtype=np.float64)


def _snapshot_facts(as_of: dt.date, label_end: dt.date, labels: pl.Series) -> dict[str, Any]:
    return {
        "as_of": as_of,
        "label_end": label_end,
        "customers": labels.len(),
        "positive_rate": float(np.mean(labels.to_numpy().astype(np.float64))),
    }
