"""Per-customer churn reasons: a feature's risk-raising contribution, in English and Chinese.

Each feature has its own wording, written from the customer's own values (the ``row`` of
features), so that a reason reads as a fact about the customer ("no purchase for 140 days,
3x longer than usual") rather than as a model term. Features that say the same thing
(days since the last order and the same as a multiple of the usual gap) share a ``group``:
a customer gets at most one reason per group.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Row = Mapping[str, float | int | None]


@dataclass(frozen=True)
class Wording:
    """How one feature is put into words: ``(en, zh)`` from the customer's feature row."""

    group: str
    words: Callable[[Row], tuple[str, str]]


def _number(row: Row, name: str) -> float | None:
    value = row.get(name)
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _days(value: float) -> str:
    return f"{round(value):,}"


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _percent(value: float) -> str:
    return f"{round(100 * value)}%"


def _times(value: float) -> str:
    # "3" for 3.04, "2.5" for 2.46: a multiple reads best with at most one decimal.
    rounded = round(value, 1)
    return f"{rounded:g}"


def _recency(row: Row) -> tuple[str, str]:
    days = _number(row, "days_since_last_order") or 0.0
    ratio = _number(row, "recency_gap_ratio")
    en, zh = f"no purchase for {_days(days)} days", f"已 {_days(days)} 天未购买"
    if ratio is not None and ratio >= 1.5:
        en += f", {_times(ratio)}× longer than usual"
        zh += f"，是平常间隔的 {_times(ratio)} 倍"
    return en, zh


def _tenure(row: Row) -> tuple[str, str]:
    days = _number(row, "tenure_days") or 0.0
    return f"first purchase {_days(days)} days ago", f"首次购买在 {_days(days)} 天前"


def _orders(row: Row) -> tuple[str, str]:
    count = int(_number(row, "orders") or 0)
    if count == 1:
        return "a single order so far", "迄今仅 1 笔订单"
    return f"{count} orders so far", f"迄今共 {count} 笔订单"


def _net_spend(row: Row) -> tuple[str, str]:
    value = _number(row, "net_spend") or 0.0
    return f"spent {_money(value)} in all", f"累计消费 {_money(value)}"


def _average_order(row: Row) -> tuple[str, str]:
    value = _number(row, "average_order_value") or 0.0
    return f"average order of {_money(value)}", f"平均每单 {_money(value)}"


def _recent_orders(days: int) -> Callable[[Row], tuple[str, str]]:
    def words(row: Row) -> tuple[str, str]:
        last = int(_number(row, f"orders_last_{days}d") or 0)
        before = int(_number(row, f"orders_prev_{days}d") or 0)
        if last == 0 and before == 0:
            return (
                f"no orders in the last {2 * days} days",
                f"近 {2 * days} 天没有订单",
            )
        return (
            f"{last} orders in the last {days} days against {before} in the {days} days before",
            f"近 {days} 天 {last} 笔订单，之前 {days} 天 {before} 笔",
        )

    return words


def _recent_spend(days: int) -> Callable[[Row], tuple[str, str]]:
    def words(row: Row) -> tuple[str, str]:
        last = _number(row, f"spend_last_{days}d") or 0.0
        before = _number(row, f"spend_prev_{days}d") or 0.0
        if last == 0 and before == 0:
            return f"no spend in the last {2 * days} days", f"近 {2 * days} 天没有消费"
        return (
            f"spent {_money(last)} in the last {days} days against {_money(before)} "
            f"in the {days} days before",
            f"近 {days} 天消费 {_money(last)}，之前 {days} 天 {_money(before)}",
        )

    return words


def _gap_mean(row: Row) -> tuple[str, str]:
    value = _number(row, "gap_mean_days")
    if value is None:
        return "has bought on one day only", "仅在一天购买过"
    return f"usually buys every {_days(value)} days", f"平常每 {_days(value)} 天购买一次"


def _gap_std(row: Row) -> tuple[str, str]:
    value = _number(row, "gap_std_days")
    if value is None:
        return "too few purchases to show a habit", "购买次数太少，尚无规律"
    return (
        f"irregular buying: gaps vary by about {_days(value)} days",
        f"购买间隔不规律：相差约 {_days(value)} 天",
    )


def _refunds(row: Row) -> tuple[str, str]:
    value = _number(row, "refund_share") or 0.0
    return f"{_percent(value)} of spend refunded", f"{_percent(value)} 的消费已退款"


def _discounts(row: Row) -> tuple[str, str]:
    value = _number(row, "discount_share") or 0.0
    return (
        f"discounts made up {_percent(value)} of order value",
        f"折扣占订单金额的 {_percent(value)}",
    )


def _main_channel(row: Row) -> tuple[str, str]:
    value = _number(row, "main_channel_share") or 0.0
    return (
        f"{_percent(value)} of orders through one channel",
        f"{_percent(value)} 的订单来自同一渠道",
    )


def _channel_count(row: Row) -> tuple[str, str]:
    count = int(_number(row, "channel_count") or 0)
    return f"bought through {count} channel(s)", f"通过 {count} 个渠道购买"


def _events(row: Row) -> tuple[str, str]:
    count = int(_number(row, "events_last_30d") or 0)
    if count == 0:
        return "no activity in the last 30 days", "近 30 天没有互动"
    return f"only {count} activities in the last 30 days", f"近 30 天仅 {count} 次互动"


def _last_event(row: Row) -> tuple[str, str]:
    value = _number(row, "days_since_last_event")
    if value is None:
        return "no recorded activity", "没有互动记录"
    return f"no activity for {_days(value)} days", f"已 {_days(value)} 天没有互动"


def _p_alive(row: Row) -> tuple[str, str]:
    value = _number(row, "bgnbd_p_alive") or 0.0
    return (
        f"{_percent(value)} chance of still being an active customer (BG/NBD)",
        f"BG/NBD 估计仍为活跃顾客的概率为 {_percent(value)}",
    )


def _expected(horizon_days: int) -> Callable[[Row], tuple[str, str]]:
    def words(row: Row) -> tuple[str, str]:
        value = _number(row, "bgnbd_expected_purchases") or 0.0
        return (
            f"expected to buy {value:.1f} times in the next {horizon_days} days (BG/NBD)",
            f"BG/NBD 预计未来 {horizon_days} 天购买 {value:.1f} 次",
        )

    return words


def _p_no_purchase(horizon_days: int) -> Callable[[Row], tuple[str, str]]:
    def words(row: Row) -> tuple[str, str]:
        value = _number(row, "bgnbd_p_no_purchase") or 0.0
        return (
            f"{_percent(value)} chance of no purchase in the next {horizon_days} days (BG/NBD)",
            f"BG/NBD 估计未来 {horizon_days} 天不购买的概率为 {_percent(value)}",
        )

    return words


def wordings(horizon_days: int) -> dict[str, Wording]:
    """The wording of every feature of :func:`~patron.engine.churn.churn_features`."""
    return {
        "days_since_last_order": Wording("recency", _recency),
        "recency_gap_ratio": Wording("recency", _recency),
        "tenure_days": Wording("tenure", _tenure),
        "orders": Wording("orders", _orders),
        "net_spend": Wording("spend", _net_spend),
        "average_order_value": Wording("order_value", _average_order),
        "orders_last_90d": Wording("orders_90d", _recent_orders(90)),
        "orders_prev_90d": Wording("orders_90d", _recent_orders(90)),
        "order_trend_90d": Wording("orders_90d", _recent_orders(90)),
        "spend_last_90d": Wording("spend_90d", _recent_spend(90)),
        "spend_prev_90d": Wording("spend_90d", _recent_spend(90)),
        "spend_recent_share_90d": Wording("spend_90d", _recent_spend(90)),
        "orders_last_180d": Wording("orders_180d", _recent_orders(180)),
        "orders_prev_180d": Wording("orders_180d", _recent_orders(180)),
        "order_trend_180d": Wording("orders_180d", _recent_orders(180)),
        "spend_last_180d": Wording("spend_180d", _recent_spend(180)),
        "spend_prev_180d": Wording("spend_180d", _recent_spend(180)),
        "spend_recent_share_180d": Wording("spend_180d", _recent_spend(180)),
        "gap_mean_days": Wording("gap", _gap_mean),
        "gap_std_days": Wording("gap_spread", _gap_std),
        "refund_share": Wording("refunds", _refunds),
        "discount_share": Wording("discounts", _discounts),
        "main_channel_share": Wording("channels", _main_channel),
        "channel_count": Wording("channels", _channel_count),
        "events_last_30d": Wording("events", _events),
        "days_since_last_event": Wording("events_recency", _last_event),
        "bgnbd_p_alive": Wording("bgnbd_alive", _p_alive),
        "bgnbd_expected_purchases": Wording("bgnbd", _expected(horizon_days)),
        "bgnbd_p_no_purchase": Wording("bgnbd", _p_no_purchase(horizon_days)),
    }


def _count(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


TYPICAL_FORMATS: dict[str, Callable[[float], str]] = {
    "tenure_days": _days,
    "orders": _count,
    "net_spend": _money,
    "average_order_value": _money,
    "gap_mean_days": _days,
    "gap_std_days": _days,
    "refund_share": _percent,
    "discount_share": _percent,
}
"""Features whose value says little without the shop's typical one: a spend of 376.60 may be
low in one shop and high in another, so its reason names the median customer's too."""


def typical_values(features: Mapping[str, Any]) -> dict[str, float]:
    """The median of each feature of :data:`TYPICAL_FORMATS` over the customers scored
    (``features`` maps a feature name to its column, a sequence of numbers or None)."""
    typical = {}
    for name in TYPICAL_FORMATS:
        column = features.get(name)
        if column is None:
            continue
        values = [float(v) for v in column if v is not None and not math.isnan(float(v))]
        if values:
            typical[name] = statistics.median(values)
    return typical


def top_reasons(
    row: Row,
    contributions: Mapping[str, float],
    wording: Mapping[str, Wording],
    count: int = 3,
    typical: Mapping[str, float] | None = None,
) -> list[dict[str, str | float | None]]:
    """The ``count`` largest positive contributions of one customer, as worded reasons.

    ``contributions`` maps feature names to their TreeSHAP contribution to the log-odds of
    churn; only positive ones (those raising the risk) are kept, largest first, one per
    wording group. Each reason is ``{code, value, en, zh}`` with ``value`` the feature's value
    (None when missing). With ``typical`` (:func:`typical_values`), a reason on a feature of
    :data:`TYPICAL_FORMATS` also names the typical customer's value: "average order of 120.00
    (typical customer: 310.50)".
    """
    reasons: list[dict[str, str | float | None]] = []
    seen_groups: set[str] = set()
    ranked = sorted(contributions.items(), key=lambda item: item[1], reverse=True)
    for name, contribution in ranked:
        if len(reasons) == count or contribution <= 0:
            break
        entry = wording[name]
        if entry.group in seen_groups:
            continue
        seen_groups.add(entry.group)
        en, zh = entry.words(row)
        if typical is not None and name in typical:
            shown = TYPICAL_FORMATS[name](typical[name])
            en += f" (typical customer: {shown})"
            zh += f"（一般客户：{shown}）"
        reasons.append({"code": name, "value": _number(row, name), "en": en, "zh": zh})
    return reasons
