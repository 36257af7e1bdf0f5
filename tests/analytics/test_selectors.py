"""Reads of the analytics: the store as the engine's input, segments, migrations, cohorts, KPIs."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import asdict
from decimal import Decimal

import pytest
from django.utils import translation

from patron.analytics.models import AnalysisRun, CustomerAnalysis
from patron.analytics.selectors import (
    UnknownSegmentError,
    cohort_rows,
    inter_purchase_buckets,
    kpi_figures,
    order_lines_frame,
    resolve_segment,
    segment_customers,
    segment_migration,
    segment_summary,
    store_orders,
    successful_runs,
)
from patron.analytics.services import AnalysisError, run_analysis
from patron.customers.models import Customer
from patron.demo.generator import DemoWorld
from patron.orders.models import Order, Refund
from tests.analytics.conftest import AS_OF, store_customers


def _utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.fixture
def tiny_store(db: None) -> None:
    """Two customers; O-1 is placed a second before midnight in Shanghai (refunded twice),
    O-2 (cancelled) at midnight, O-3 weeks earlier in the app."""
    ann = Customer.objects.create(external_id="A1", name="Ann")
    bo = Customer.objects.create(external_id="B2", name="Bo")
    first = Order.objects.create(
        external_id="O-1",
        customer=ann,
        ordered_at=_utc(2024, 3, 1, 15, 59, 59),
        status="paid",
        subtotal_amount=Decimal("100.00"),
        discount_amount=Decimal("10.00"),
        total_amount=Decimal("90.00"),
    )
    Order.objects.create(
        external_id="O-2",
        customer=ann,
        ordered_at=_utc(2024, 3, 1, 16, 0),
        status="cancelled",
        subtotal_amount=Decimal("50.00"),
        total_amount=Decimal("50.00"),
    )
    Order.objects.create(
        external_id="O-3",
        customer=bo,
        ordered_at=_utc(2024, 2, 10, 2, 0),
        status="delivered",
        channel="app",
        subtotal_amount=Decimal("12.34"),
        total_amount=Decimal("12.34"),
    )
    for external_id, amount in (("R-1", "5.00"), ("R-2", "7.50")):
        Refund.objects.create(
            external_id=external_id,
            order=first,
            amount=Decimal(amount),
            refunded_at=_utc(2024, 3, 5),
        )


def test_order_lines_frame_gives_one_row_per_order_in_shop_time(tiny_store: None) -> None:
    # when
    frame = order_lines_frame()

    # then: times in Shanghai (UTC+8), naive; refunds summed; sorted by time
    assert frame.to_dicts() == [
        {
            "order_id": "O-3",
            "customer_id": "B2",
            "ordered_at": dt.datetime(2024, 2, 10, 10, 0),
            "line_total": 12.34,
            "discount": 0.0,
            "refund_amount": 0.0,
            "status": "delivered",
            "channel": "app",
        },
        {
            "order_id": "O-1",
            "customer_id": "A1",
            "ordered_at": dt.datetime(2024, 3, 1, 23, 59, 59),
            "line_total": 100.0,
            "discount": 10.0,
            "refund_amount": 12.5,
            "status": "paid",
            "channel": "web",
        },
        {
            "order_id": "O-2",
            "customer_id": "A1",
            "ordered_at": dt.datetime(2024, 3, 2, 0, 0),
            "line_total": 50.0,
            "discount": 0.0,
            "refund_amount": 0.0,
            "status": "cancelled",
            "channel": "web",
        },
    ]


def test_order_lines_frame_stops_at_the_end_of_the_shop_local_as_of_day(
    tiny_store: None,
) -> None:
    assert order_lines_frame(dt.date(2024, 3, 1))["order_id"].to_list() == ["O-3", "O-1"]
    assert order_lines_frame(dt.date(2024, 2, 9))["order_id"].to_list() == []


def _analysed(run: AnalysisRun) -> list[tuple[str, str, str, Decimal, int, int]]:
    return list(
        CustomerAnalysis.objects.filter(run=run).values_list(
            "customer__external_id",
            "rfm_segment",
            "value_class",
            "monetary",
            "recency_days",
            "frequency",
        )
    )


def test_segment_summary_aggregates_the_runs_rows(demo_store: DemoWorld) -> None:
    # given
    run = run_analysis(with_models=False, as_of=AS_OF)
    rows = _analysed(run)
    total_revenue = sum(row[3] for row in rows)

    # when
    summaries = segment_summary(run, "rfm")

    # then: every segment of the map, best first, empty ones too
    assert [s.code for s in summaries] == [
        "champions", "loyal", "potential_loyalist", "new", "promising", "need_attention",
        "about_to_sleep", "at_risk", "cant_lose_them", "hibernating", "lost",
    ]  # fmt: skip
    for summary in summaries:
        members = [row for row in rows if row[1] == summary.code]
        revenue = sum((row[3] for row in members), Decimal(0))
        assert summary.customers == len(members)
        assert summary.share == pytest.approx(len(members) / len(rows))
        assert summary.revenue == revenue.quantize(Decimal("0.01"))
        if members:
            assert summary.revenue_share == pytest.approx(float(revenue / total_revenue))
            assert summary.mean_recency_days == pytest.approx(
                sum(row[4] for row in members) / len(members)
            )
            assert summary.mean_frequency == pytest.approx(
                sum(row[5] for row in members) / len(members)
            )
        else:
            assert (summary.revenue_share, summary.mean_frequency) == (0.0, None)
    assert sum(s.customers for s in summaries) == len(rows)


def test_segment_labels_follow_the_active_language(demo_store: DemoWorld) -> None:
    # given
    run = run_analysis(with_models=False, as_of=AS_OF)

    # when
    with translation.override("zh-hans"):
        chinese = {s.code: s.label for s in segment_summary(run, "value_class")}
    with translation.override("en"):
        english = {s.code: s.label for s in segment_summary(run, "value_class")}

    # then
    assert chinese["important_value"] == "重要价值客户"
    assert chinese["general_win_back"] == "一般挽留客户"
    assert english["important_value"] == "Important value"


def test_a_segment_is_found_by_code_or_label_in_either_language(demo_store: DemoWorld) -> None:
    # given
    run = run_analysis(with_models=False, as_of=AS_OF)

    # then
    assert resolve_segment(run, "rfm", "cant_lose_them") == "cant_lose_them"
    assert resolve_segment(run, "rfm", "Can't lose them") == "cant_lose_them"
    assert resolve_segment(run, "value_class", "重要价值客户") == "important_value"
    assert resolve_segment(run, "behaviour", "0") == "0"
    with pytest.raises(UnknownSegmentError, match="no rfm segment named 'vip'; use one of: "):
        resolve_segment(run, "rfm", "vip")
    with pytest.raises(UnknownSegmentError, match="unknown segmentation 'colour'"):
        segment_summary(run, "colour")


def test_segment_customers_are_the_rows_of_that_segment(demo_store: DemoWorld) -> None:
    # given
    run = run_analysis(with_models=False, as_of=AS_OF)
    rows = _analysed(run)
    segment = Counter(row[2] for row in rows).most_common(1)[0][0]

    # when
    members = segment_customers(run, "value_class", segment)

    # then
    assert [m.customer.external_id for m in members] == sorted(
        row[0] for row in rows if row[2] == segment
    )


def test_segment_migration_counts_moves_of_customers_in_both_runs(demo_store: DemoWorld) -> None:
    # given
    before = run_analysis(with_models=False, as_of=AS_OF - dt.timedelta(days=120))
    after = run_analysis(with_models=False, as_of=AS_OF)
    was = {row[0]: row[1] for row in _analysed(before)}
    now = {row[0]: row[1] for row in _analysed(after)}

    # when
    migration = segment_migration(before, after, "rfm")

    # then
    expected = Counter((was[c], now[c]) for c in was.keys() & now.keys())
    assert {(c.from_code, c.to_code): c.customers for c in migration.cells} == dict(expected)
    assert sum(c.customers for c in migration.cells) == len(was.keys() & now.keys())
    assert len(now) > len(was)  # newcomers are not part of the matrix
    assert migration.codes[0] == "champions"
    first = migration.cells[0]
    assert migration.count(first.from_code, first.to_code) == first.customers


def test_cohort_rows_count_customers_by_first_month(demo_store: DemoWorld) -> None:
    # given
    truth = store_customers(AS_OF)

    def month(day: dt.date) -> int:
        return day.year * 12 + day.month - 1

    cohorts: Counter[tuple[int, int]] = Counter()
    sizes: Counter[int] = Counter()
    channel_sizes: Counter[tuple[int, str]] = Counter()
    for customer in truth.values():
        first = month(customer.order_days[0])
        sizes[first] += 1
        channel_sizes[(first, customer.first_channel)] += 1
        for period in {month(day) - first for day in customer.order_days}:
            cohorts[(first, period)] += 1

    # when
    run = run_analysis(with_models=False, as_of=AS_OF)
    rows = cohort_rows(run)
    by_channel = cohort_rows(run, "channel")

    # then
    assert {(month(r.cohort_month), r.period): r.active_customers for r in rows} == dict(cohorts)
    assert {month(r.cohort_month): r.cohort_size for r in rows} == dict(sizes)
    assert all(r.retention_rate == r.active_customers / r.cohort_size for r in rows)
    assert {(month(r.cohort_month), r.channel): r.cohort_size for r in by_channel} == dict(
        channel_sizes
    )


def test_kpi_figures_of_a_period_match_the_orders(demo_store: DemoWorld) -> None:
    # given
    start, end = dt.date(2025, 3, 1), dt.date(2025, 3, 31)
    truth = store_customers(end)
    active = {c for c, t in truth.items() if any(start <= day <= end for day in t.order_days)}
    orders = [
        net
        for t in truth.values()
        for day, net in zip(t.order_days, t.order_nets, strict=True)
        if start <= day <= end
    ]
    new = {c for c in active if truth[c].order_days[0] >= start}

    # when
    figures = kpi_figures(start, end)

    # then
    assert (figures.period_start, figures.period_end) == (start, end)
    assert figures.active_customers == len(active)
    assert figures.new_customers == len(new)
    assert figures.returning_customers == len(active) - len(new)
    assert figures.orders == len(orders)
    assert figures.revenue == sum(orders, Decimal(0)).quantize(Decimal("0.01"))
    assert figures.purchase_frequency == pytest.approx(len(orders) / len(active))


def test_kpi_figures_refuse_a_period_ending_before_it_starts(db: None) -> None:
    with pytest.raises(ValueError, match="start 2025-03-02 is after end 2025-03-01"):
        kpi_figures(dt.date(2025, 3, 2), dt.date(2025, 3, 1))


def test_inter_purchase_buckets_count_the_gaps_ending_in_the_period(demo_store: DemoWorld) -> None:
    # given the gaps between consecutive counted orders whose later order is in the period,
    # read with plain SQL and put into the day ranges by hand
    start, end = dt.date(2025, 1, 1), dt.date(2025, 5, 31)
    ranges = [(0, 7), (8, 14), (15, 30), (31, 60), (61, 90), (91, 180), (181, 365), (366, None)]
    counts = [0] * len(ranges)
    for customer in store_customers(end).values():
        for earlier, later in zip(customer.order_days, customer.order_days[1:], strict=False):
            if start <= later <= end:
                gap = (later - earlier).days
                index = next(
                    i
                    for i, (low, high) in enumerate(ranges)
                    if gap >= low and (high is None or gap <= high)
                )
                counts[index] += 1
    # when the buckets are read
    buckets = inter_purchase_buckets(start, end)
    # then they hold those counts and shares, in the order of the ranges
    assert sum(counts) > 0
    assert [bucket.gaps for bucket in buckets] == counts
    assert [bucket.share for bucket in buckets] == pytest.approx([n / sum(counts) for n in counts])
    assert [bucket.label for bucket in buckets] == [
        "0-7",
        "8-14",
        "15-30",
        "31-60",
        "61-90",
        "91-180",
        "181-365",
        ">365",
    ]


def test_successful_runs_are_the_newest_succeeded_ones(demo_store: DemoWorld) -> None:
    # given two successful runs and a failed one
    first = run_analysis(with_models=False, as_of=dt.date(2025, 3, 1))
    second = run_analysis(with_models=False, as_of=AS_OF)
    with pytest.raises(AnalysisError):
        run_analysis(with_models=False, as_of=AS_OF, ahp_matrix=[[1, 9], [1 / 9, 1]])
    # when the runs are listed, then only the successful ones come, newest first, up to the limit
    assert successful_runs(5) == [second, first]
    assert successful_runs(1) == [second]


def test_figures_from_the_orders_read_once_equal_those_read_each_time(
    demo_store: DemoWorld,
) -> None:
    # given the store's orders read once, up to the end of the later period
    orders = store_orders(AS_OF)
    start, end = dt.date(2025, 5, 1), AS_OF
    earlier_start, earlier_end = dt.date(2025, 4, 1), dt.date(2025, 4, 30)
    # when the figures of two periods and the gaps come from them, then they are those read
    # from the store each time
    # (equal up to the last bit of a float sum, whose order may differ)
    for first, last in ((start, end), (earlier_start, earlier_end)):
        once, each_time = asdict(kpi_figures(first, last, orders)), asdict(kpi_figures(first, last))
        rates = {name for name, value in each_time.items() if isinstance(value, float)}
        assert {name: once[name] for name in rates} == pytest.approx(
            {name: each_time[name] for name in rates}, rel=1e-12
        )
        assert {n: v for n, v in once.items() if n not in rates} == {
            n: v for n, v in each_time.items() if n not in rates
        }
    assert inter_purchase_buckets(start, end, orders) == inter_purchase_buckets(start, end)
    assert orders.height == len({o for c in store_customers(AS_OF).values() for o in c.order_ids})
