"""The churn model: the time split on Online Retail against the BG/NBD baseline, reasons, errors.

The metrics are recomputed here from ``validation_scores_`` (scikit-learn's ROC-AUC and
average precision, plain numpy for the Brier score and a loop for the top-decile lift), and
the snapshots' customers and churn rates from loops over the order table.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from patron.engine.churn import ChurnModel, ChurnModelError, churn_features
from patron.engine.churn.reasons import top_reasons, typical_values, wordings
from patron.engine.clv import ModelNotFittedError
from tests.conftest import SHARED_DATA, require
from tests.engine.churn.data import ONLINE_RETAIL_AS_OF, online_retail_orders

HORIZON = 90
TRAIN_AS_OF = dt.date(2011, 6, 12)
VALIDATION_AS_OF = dt.date(2011, 9, 10)


@pytest.fixture(scope="module")
def orders() -> pl.DataFrame:
    """The Online Retail order table (read once for the module)."""
    folder = SHARED_DATA / "online_retail"
    require(folder.is_dir(), f"Online Retail not found at {folder}")
    return online_retail_orders(SHARED_DATA)


@pytest.fixture(scope="module")
def fitted(orders: pl.DataFrame) -> ChurnModel:
    """The churn model fitted on Online Retail up to its last day, horizon 90 days."""
    return ChurnModel(horizon_days=HORIZON).fit(orders, ONLINE_RETAIL_AS_OF)


def plain_lift(labels: list[bool], scores: list[float]) -> float:
    """Churn rate of the top tenth by score over the overall rate; a group of tied scores
    straddling the cut counts with the part of it that fits, at its own rate."""
    groups: dict[float, list[bool]] = {}
    for label, score in zip(labels, scores, strict=True):
        groups.setdefault(score, []).append(label)
    room = len(labels) / 10
    churned = 0.0
    for score in sorted(groups, reverse=True):
        members = groups[score]
        taken = min(len(members), room)
        churned += sum(members) / len(members) * taken
        room -= taken
        if room <= 0:
            break
    return (churned / (len(labels) / 10)) / (sum(labels) / len(labels))


def test_the_snapshots_are_the_time_split_of_the_issue(
    orders: pl.DataFrame, fitted: ChurnModel
) -> None:
    # plain: who had ordered by each snapshot day, and who of them ordered in the next 90 days
    days: dict[str, list[dt.date]] = {}
    for customer, ordered_at in orders.select("customer_id", "ordered_at").iter_rows():
        days.setdefault(customer, []).append(ordered_at.date())
    for key, as_of in (("train", TRAIN_AS_OF), ("validation", VALIDATION_AS_OF)):
        customers = [c for c, ds in days.items() if min(ds) <= as_of]
        end = as_of + dt.timedelta(days=HORIZON)
        churned = [c for c in customers if not any(as_of < d <= end for d in days[c])]
        facts = fitted.metrics_[key]
        assert facts["as_of"] == as_of
        assert facts["label_end"] == end
        assert facts["customers"] == len(customers)
        assert facts["positive_rate"] == pytest.approx(len(churned) / len(customers), abs=1e-12)
    assert fitted.metrics_["validation"]["label_end"] == ONLINE_RETAIL_AS_OF
    assert fitted.validation_scores_.height == fitted.metrics_["validation"]["customers"]


def test_the_reported_metrics_are_those_of_the_validation_scores(fitted: ChurnModel) -> None:
    scores = fitted.validation_scores_
    y = scores["churned"].to_numpy().astype(int)
    labels = scores["churned"].to_list()
    cases = [
        ("model", scores["churn_probability"].to_numpy(), scores["churn_probability"].to_numpy()),
        (
            "bgnbd",
            -scores["bgnbd_expected_purchases"].to_numpy(),
            scores["bgnbd_p_no_purchase"].to_numpy(),
        ),
        (
            "one_minus_p_alive",
            1 - scores["bgnbd_p_alive"].to_numpy(),
            1 - scores["bgnbd_p_alive"].to_numpy(),
        ),
    ]
    for key, score, probability in cases:
        metrics = fitted.metrics_[key]
        assert metrics["roc_auc"] == pytest.approx(roc_auc_score(y, score), abs=1e-12)
        assert metrics["pr_auc"] == pytest.approx(average_precision_score(y, score), abs=1e-12)
        assert metrics["brier"] == pytest.approx(float(np.mean((probability - y) ** 2)), abs=1e-12)
        lift = plain_lift(labels, score.tolist())
        assert metrics["top_decile_lift"] == pytest.approx(lift, rel=1e-9)
    uncalibrated = scores["churn_probability_uncalibrated"].to_numpy()
    assert fitted.metrics_["model"]["brier_uncalibrated"] == pytest.approx(
        float(np.mean((uncalibrated - y) ** 2)), abs=1e-12
    )


def test_the_model_beats_the_bgnbd_baseline_on_roc_auc(fitted: ChurnModel) -> None:
    model, baseline = fitted.metrics_["model"], fitted.metrics_["bgnbd"]
    assert model["roc_auc"] > baseline["roc_auc"] + 0.005
    assert model["pr_auc"] > baseline["pr_auc"]
    assert model["brier"] < baseline["brier"]
    # the calibration improves on the trees' own probabilities, or holds
    assert model["brier"] <= model["brier_uncalibrated"] + 1e-3
    # 1 - P(alive) ranks worse than chance here: P(alive) is 1 without a repeat purchase
    assert fitted.metrics_["one_minus_p_alive"]["roc_auc"] < baseline["roc_auc"]


@pytest.mark.xfail(
    strict=True,
    reason=(
        "open: on Online Retail the trees trained on the summer snapshot (T-2N = 2011-06-12) "
        "weigh spend over age for one-off buyers; in the Christmas quarter of the validation "
        "the age matters more, and the model's top tenth churns at about 1.55x the base rate "
        "against 1.57x for BG/NBD (top 5%: model better). See docs/churn.md."
    ),
)
def test_the_model_beats_the_bgnbd_baseline_on_top_decile_lift(fitted: ChurnModel) -> None:
    assert fitted.metrics_["model"]["top_decile_lift"] > fitted.metrics_["bgnbd"]["top_decile_lift"]


def test_predictions_give_a_probability_and_reasons_from_the_customer_values(
    orders: pl.DataFrame, fitted: ChurnModel
) -> None:
    # when the customers are scored as of the last day
    scored = fitted.predict(orders, ONLINE_RETAIL_AS_OF)
    features = churn_features(orders, ONLINE_RETAIL_AS_OF, horizon_days=HORIZON)
    # then there is one row per customer with an order, a probability and up to 3 reasons
    assert scored.columns == ["customer_id", "churn_probability", "reasons"]
    assert scored["customer_id"].to_list() == features["customer_id"].to_list()
    probabilities = scored["churn_probability"].to_numpy()
    assert np.all((probabilities >= 0) & (probabilities <= 1))
    values = {row["customer_id"]: row for row in features.iter_rows(named=True)}
    lengths = scored["reasons"].list.len().to_list()
    assert max(lengths) == 3
    for row in scored.head(200).iter_rows(named=True):
        codes = [reason["code"] for reason in row["reasons"]]
        assert len(codes) == len(set(codes))
        for reason in row["reasons"]:
            assert reason["value"] == values[row["customer_id"]][reason["code"]]
            assert reason["en"]
            assert reason["zh"]
    # and the riskiest customers are those who have not bought for longest, by and large
    riskiest = scored.sort("churn_probability", descending=True).head(300)["customer_id"]
    safest = scored.sort("churn_probability").head(300)["customer_id"]
    recency = features.select("customer_id", "days_since_last_order")
    mean_days = [
        recency.filter(pl.col("customer_id").is_in(group.implode()))["days_since_last_order"].mean()
        for group in (riskiest, safest)
    ]
    assert mean_days[0] > mean_days[1]  # type: ignore[operator]


def test_reasons_word_the_largest_risk_raising_contributions_of_a_customer() -> None:
    # given a customer who last bought 140 days ago, three times their usual 46.7-day gap,
    # with 20% of their spend refunded
    row = {
        "days_since_last_order": 140.0,
        "recency_gap_ratio": 3.0,
        "gap_mean_days": 46.7,
        "refund_share": 0.2,
        "orders": 4.0,
        "bgnbd_expected_purchases": 0.35,
    }
    contributions = {
        "days_since_last_order": 0.9,
        "recency_gap_ratio": 0.5,  # the same fact as above: worded once
        "refund_share": 0.3,
        "bgnbd_expected_purchases": 0.2,
        "orders": -0.4,  # lowers the risk: never a reason
        "gap_mean_days": 0.0,
    }
    # when they are put into words
    reasons = top_reasons(row, contributions, wordings(90))
    # then the three largest positive contributions are given, one per fact, in both languages
    assert reasons == [
        {
            "code": "days_since_last_order",
            "value": 140.0,
            "en": "no purchase for 140 days, 3× longer than usual",
            "zh": "已 140 天未购买，是平常间隔的 3 倍",
        },
        {
            "code": "refund_share",
            "value": 0.2,
            "en": "20% of spend refunded",
            "zh": "20% 的消费已退款",
        },
        {
            "code": "bgnbd_expected_purchases",
            "value": 0.35,
            "en": "expected to buy 0.3 times in the next 90 days (BG/NBD)",
            "zh": "BG/NBD 预计未来 90 天购买 0.3 次",
        },
    ]
    # and a customer whose contributions all lower the risk gets no reason
    assert top_reasons(row, {"orders": -0.1, "refund_share": -0.2}, wordings(90)) == []


def test_reasons_on_levels_name_the_typical_customer() -> None:
    # given three customers' spend and refund shares, the median customer being the second
    features = {
        "average_order_value": [120.0, 310.5, 900.0],
        "refund_share": [0.0, 0.05, None],
        "days_since_last_order": [10.0, 20.0, 30.0],  # a fact that speaks for itself
    }
    typical = typical_values(features)
    assert typical == {"average_order_value": 310.5, "refund_share": 0.025}
    # when the first customer's reasons are worded with them
    row = {"average_order_value": 120.0, "refund_share": 0.0, "days_since_last_order": 10.0}
    contributions = {"average_order_value": 0.4, "days_since_last_order": 0.2}
    reasons = top_reasons(row, contributions, wordings(90), typical=typical)
    # then the level names the typical customer's value, the recency does not
    assert [(reason["en"], reason["zh"]) for reason in reasons] == [
        (
            "average order of 120.00 (typical customer: 310.50)",
            "平均每单 120.00（一般客户：310.50）",
        ),
        ("no purchase for 10 days", "已 10 天未购买"),
    ]


def test_every_feature_has_its_own_wording() -> None:
    # given every feature a snapshot can have (channels and events included)
    events = pl.DataFrame(
        {"customer_id": ["1"], "occurred_at": [dt.date(2025, 1, 1)], "event_type": ["visit"]}
    )
    lines = pl.DataFrame(
        {
            "order_id": ["1", "2"],
            "customer_id": ["1", "1"],
            "ordered_at": [dt.date(2024, 12, 1), dt.date(2025, 1, 1)],
            "line_total": [10.0, 20.0],
            "channel": ["web", "store"],
        }
    )
    names = churn_features(lines, dt.date(2025, 1, 2), events).columns[1:]
    wording = wordings(90)
    # then each has a wording, and features of different groups never read alike
    assert sorted(wording) == sorted(names)
    row = dict.fromkeys(names, 2.0)
    texts: dict[str, set[str]] = {}
    for entry in wording.values():
        texts.setdefault(entry.words(row)[0], set()).add(entry.group)
    assert all(len(groups) == 1 for groups in texts.values())


def _weekly_orders(customers: int, first: dt.date, last: dt.date) -> pl.DataFrame:
    rows = []
    day = first
    while day <= last:
        for customer in range(customers):
            rows.append((f"{customer}-{day}", str(customer), day, 10.0))
        day += dt.timedelta(days=7)
    return pl.DataFrame(
        rows, schema=["order_id", "customer_id", "ordered_at", "line_total"], orient="row"
    )


def test_too_little_history_is_refused_naming_the_missing_snapshot() -> None:
    # given orders of the last 100 days only: nobody had bought by T - 2N
    orders = _weekly_orders(5, dt.date(2025, 3, 1), dt.date(2025, 6, 8))
    with pytest.raises(
        ChurnModelError, match=r"no customers with an order on or before 2024-12-10, the training"
    ):
        ChurnModel().fit(orders, dt.date(2025, 6, 8))


def test_a_snapshot_where_nobody_churns_is_refused() -> None:
    # given customers who all buy every week for a year: nobody ever churns
    orders = _weekly_orders(5, dt.date(2024, 6, 1), dt.date(2025, 6, 8))
    with pytest.raises(ChurnModelError, match="stayed over the next 90 days"):
        ChurnModel().fit(orders, dt.date(2025, 6, 8))


def test_customers_who_look_alike_but_differ_in_outcome_are_refused() -> None:
    # given 40 customers with one order each on the same day and for the same amount, of
    # whom every other one buys again in the training label window and again after it:
    # the training snapshot has both classes but nothing to tell them apart
    as_of = dt.date(2025, 6, 8)
    rows = []
    for customer in range(40):
        rows.append((f"{customer}-a", str(customer), dt.date(2024, 10, 1), 10.0))
        if customer % 2:
            rows.append((f"{customer}-b", str(customer), dt.date(2025, 1, 15), 10.0))
            if customer % 4 == 1:
                rows.append((f"{customer}-c", str(customer), dt.date(2025, 5, 1), 10.0))
    orders = pl.DataFrame(
        rows, schema=["order_id", "customer_id", "ordered_at", "line_total"], orient="row"
    )
    # then the model says so rather than give everyone the same risk without reasons
    with pytest.raises(ChurnModelError, match="40 customers of the training snapshot show no"):
        ChurnModel().fit(orders, as_of)


def test_scoring_before_fitting_is_refused() -> None:
    with pytest.raises(ModelNotFittedError, match="call fit"):
        ChurnModel().predict(
            _weekly_orders(1, dt.date(2025, 1, 1), dt.date(2025, 1, 1)), dt.date(2025, 1, 1)
        )


def test_a_day_before_any_order_scores_nobody(orders: pl.DataFrame, fitted: ChurnModel) -> None:
    scored = fitted.predict(orders, dt.date(2010, 11, 30))
    assert scored.height == 0
    assert scored.columns == ["customer_id", "churn_probability", "reasons"]
