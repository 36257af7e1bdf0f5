"""Benchmark: RFM + loyalty KPIs + cohort retention through Patron's engine, DuckDB SQL and pandas.

    .venv/bin/python bench/analytics.py [--lines 10000000] [--customers 1000000]
                                        [--out DIR] [--seed 7] [--repeat 1]
                                        [--implementations duckdb,patron,...]

It generates (or reuses, when the parameters match) a Parquet file of order lines: skewed
order counts per customer (1 + negative binomial), 1 + Poisson(1.5) lines per order, three
years of dates with a growing shop, string ids, a few per cent cancelled orders, coupons,
partial and full refunds, five channels. Prices, coupons and refunds are multiples of 0.5, so
every sum is exact in float64 and the implementations must agree exactly, not merely
within a rounding error that could move a customer across a quintile boundary.

Then it measures, each implementation in its own process (so that peak memory is its own:
the child's ``VmHWM``), the same work with the same definitions (docs/analytics.md):

- patron: ``rfm_table``, ``loyalty_kpis`` and ``cohort_retention`` of ``patron.engine`` on
  ``pl.scan_parquet(...)``, each result collected as Patron collects (``frames.collect``:
  Polars' streaming engine);
- patron-in-memory (only when asked for with ``--implementations``): the same plans
  collected on Polars' in-memory engine, to show what the engine choice is worth;
- duckdb: the same three results hand-written as SQL over ``read_parquet``;
- pandas: a straightforward pandas implementation (``read_parquet``, ``groupby``).

Like Patron's three functions, the three DuckDB queries each read the file and build the
order table on their own; pandas reads the file once and shares its order table (timed as
``load``), which is what a pandas user would write. The work: RFM as of the last day of the
data, KPIs of its last 12 months (retention against the 12 months before), and the monthly
cohort retention matrix. The results of every implementation are compared, column by column.
``--repeat N`` runs N rounds, the implementations interleaved, and keeps each one's fastest
run, since the machine may be shared.

It prints seconds per part and in all, peak memory, and the goals of issue 3: Patron within
1.5x of DuckDB's time, at least 3x faster than pandas, under 4 GB peak.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
DATA_START = dt.date(2022, 1, 1)
DATA_END = dt.date(2024, 12, 31)
AS_OF = DATA_END
KPI_START = dt.date(2024, 1, 1)
KPI_END = DATA_END
IMPLEMENTATIONS = ("duckdb", "patron", "pandas")
EXTRA_IMPLEMENTATIONS = ("patron-in-memory",)
# How each Patron variant collects the lazy results: as Patron itself does
# (patron.engine.frames.collect), or with a plain collect() on Polars' in-memory engine.
PATRON_ENGINES = {"patron": "patron", "patron-in-memory": "in-memory"}
PARTS = ("rfm", "kpis", "cohorts")
CHANNELS = ("web", "app", "mini_program", "marketplace", "store")
CHANNEL_SHARES = (0.35, 0.30, 0.20, 0.10, 0.05)
COUPONS = (5.0, 10.0, 20.0, 50.0)

# The classic RFM map of the spec: SEGMENT_GRID[r_score][fm_score], FM = (F + M + 1) // 2.
# Written out here again, not imported from the engine, so that DuckDB and pandas check it.
SEGMENT_GRID = {
    5: ("new", "potential_loyalist", "potential_loyalist", "champions", "champions"),
    4: ("promising", "potential_loyalist", "potential_loyalist", "loyal", "champions"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose_them"),
    1: ("lost", "lost", "at_risk", "cant_lose_them", "cant_lose_them"),
}
# (R above average, F above average, M above average) -> value class.
VALUE_CLASSES = {
    (True, True, True): "important_value",
    (True, False, True): "important_develop",
    (False, True, True): "important_retain",
    (False, False, True): "important_win_back",
    (True, True, False): "general_value",
    (True, False, False): "general_develop",
    (False, True, False): "general_retain",
    (False, False, False): "general_win_back",
}

RFM_COLUMNS = (
    "customer_id",
    "first_order_at",
    "last_order_at",
    "recency_days",
    "tenure_days",
    "frequency",
    "monetary",
    "average_order_value",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "value_class",
)
KPI_COLUMNS = (
    "period_start",
    "period_end",
    "active_customers",
    "new_customers",
    "returning_customers",
    "orders",
    "revenue",
    "repeat_purchase_rate",
    "retention_rate",
    "churn_rate",
    "purchase_frequency",
    "average_order_value",
    "average_inter_purchase_days",
    "median_inter_purchase_days",
    "top20_revenue_share",
)
COHORT_COLUMNS = (
    "cohort_month",
    "period",
    "cohort_size",
    "active_customers",
    "retention_rate",
    "orders",
    "revenue",
)
RESULT_COLUMNS = {"rfm": RFM_COLUMNS, "kpis": KPI_COLUMNS, "cohorts": COHORT_COLUMNS}


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01, the engine's integer day."""
    return (day - dt.date(1970, 1, 1)).days


def previous_period() -> tuple[dt.date, dt.date]:
    """The period of the same length just before the KPI period (spec: retention_rate)."""
    length = KPI_END - KPI_START + dt.timedelta(days=1)
    return KPI_START - length, KPI_START - dt.timedelta(days=1)


# --------------------------------------------------------------------------- data


def dataset_path(out: Path, lines: int, customers: int, seed: int) -> Path:
    return out / f"order-lines-{lines}-{customers}-seed{seed}-v{FORMAT_VERSION}.parquet"


def generate(path: Path, lines: int, customers: int, seed: int) -> None:
    """Write ``lines`` order lines of ``customers`` customers to ``path`` (Parquet), vectorised."""
    import polars as pl

    rng = np.random.default_rng(seed)
    days = (DATA_END - DATA_START).days + 1
    target_orders = max(customers, round(lines / 2.5))
    extra_mean = target_orders / customers - 1
    # Order counts: most customers buy once or twice, a long tail buys often.
    counts = np.ones(customers, dtype=np.int64)
    if extra_mean > 0:
        dispersion = 0.5
        counts += rng.negative_binomial(
            dispersion, dispersion / (dispersion + extra_mean), customers
        )
    orders = int(counts.sum())
    if orders > lines:
        raise SystemExit(f"{orders:,} orders need at least as many lines; raise --lines")
    preferred_channel = rng.choice(len(CHANNELS), size=customers, p=CHANNEL_SHARES)
    # A growing shop: more customers are acquired late (first day ~ sqrt of a uniform).
    first_day = np.floor(days * np.sqrt(rng.random(customers))).astype(np.int64)

    customer_of_order = np.repeat(np.arange(customers), counts)
    first_of_customer = np.zeros(orders, dtype=bool)
    first_of_customer[np.concatenate(([0], np.cumsum(counts)[:-1]))] = True
    # Repeat orders cluster soon after acquisition and thin out (u**2), up to the last day.
    room = days - first_day[customer_of_order]
    offset = np.floor(room * rng.random(orders) ** 2).astype(np.int64)
    order_day = first_day[customer_of_order] + np.where(first_of_customer, 0, offset)
    order_second = order_day * 86_400 + rng.integers(0, 86_400, size=orders)
    by_time = np.argsort(order_second, kind="stable")
    customer_of_order = customer_of_order[by_time]
    order_second = order_second[by_time]

    is_own_channel = rng.random(orders) < 0.85
    channel = np.where(
        is_own_channel,
        preferred_channel[customer_of_order],
        rng.choice(len(CHANNELS), size=orders, p=CHANNEL_SHARES),
    )
    status_draw = rng.random(orders)
    status = np.select([status_draw < 0.03, status_draw < 0.05], [1, 2], 0)  # cancelled, refunded

    lines_per_order = 1 + np.bincount(
        rng.integers(0, orders, size=lines - orders), minlength=orders
    )
    order_of_line = np.repeat(np.arange(orders), lines_per_order)
    first_line = np.concatenate(([0], np.cumsum(lines_per_order)[:-1]))
    quantity = rng.integers(1, 4, size=lines)
    unit_price = np.round(rng.gamma(2.0, 30.0, size=lines) * 2) / 2 + 0.5
    line_total = quantity * unit_price
    order_total = np.bincount(order_of_line, weights=line_total, minlength=orders)

    has_coupon = rng.random(orders) < 0.20
    discount = np.where(has_coupon, np.asarray(COUPONS)[rng.integers(0, len(COUPONS), orders)], 0.0)
    # Refunds: the whole order when its status says so, one line of it on 3% of the others.
    partial_refund = (status == 0) & (rng.random(orders) < 0.03)
    refund = np.where(status == 2, order_total, np.where(partial_refund, line_total[first_line], 0))

    started = np.datetime64(DATA_START.isoformat(), "s")
    frame = pl.DataFrame(
        {
            "order_number": order_of_line,
            "customer_number": np.random.default_rng(seed + 1).permutation(customers)[
                customer_of_order[order_of_line]
            ],
            "ordered_at": (started + order_second[order_of_line].astype("timedelta64[s]")).astype(
                "datetime64[us]"
            ),
            "product_number": rng.zipf(1.3, size=lines) % 20_000,
            "quantity": quantity,
            "unit_price": unit_price,
            "line_total": line_total,
            "status_code": status[order_of_line],
            "channel_code": channel[order_of_line],
            "discount": discount[order_of_line],
            "refund_amount": refund[order_of_line],
        }
    )
    table = frame.select(
        pl.format("O{}", pl.col("order_number").cast(pl.String).str.zfill(9)).alias("order_id"),
        pl.format("C{}", pl.col("customer_number").cast(pl.String).str.zfill(8)).alias(
            "customer_id"
        ),
        "ordered_at",
        pl.format("P{}", pl.col("product_number").cast(pl.String).str.zfill(5)).alias("product_id"),
        "quantity",
        "unit_price",
        "line_total",
        pl.col("status_code")
        .replace_strict({0: "completed", 1: "cancelled", 2: "refunded"}, return_dtype=pl.String)
        .alias("status"),
        pl.col("channel_code")
        .replace_strict(dict(enumerate(CHANNELS)), return_dtype=pl.String)
        .alias("channel"),
        "discount",
        "refund_amount",
    )
    partial = path.with_suffix(".partial")
    table.write_parquet(partial)
    partial.replace(path)


# --------------------------------------------------------------------------- patron


def run_patron(path: Path, engine: str) -> tuple[dict[str, float], dict[str, Any]]:
    """Patron's engine: the order summary of a LazyFrame scan, then the three analyses on it.

    ``engine="patron"`` collects as Patron does for its own callers (``frames.collect``),
    ``"in-memory"`` with Polars' in-memory engine, for comparison. As in ``patron analyze``,
    the order table is built once (``load``) and every analysis reads it.
    """
    import narwhals as nw
    import polars as pl

    from patron.engine.cohorts import cohort_retention
    from patron.engine.frames import collect, order_summary
    from patron.engine.kpis import loyalty_kpis
    from patron.engine.rfm import rfm_table

    def collected(lazy: Any) -> Any:
        if engine == "patron":
            return collect(nw.from_native(lazy)).to_native()
        return lazy.collect(engine=engine)

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    orders = collected(order_summary(pl.scan_parquet(path), with_channel=False)).lazy()
    seconds["load"] = time.perf_counter() - started
    steps: dict[str, Callable[[], Any]] = {
        "rfm": lambda: rfm_table(orders, AS_OF),
        "kpis": lambda: loyalty_kpis(orders, KPI_START, KPI_END),
        "cohorts": lambda: cohort_retention(orders, AS_OF),
    }
    results: dict[str, Any] = {}
    for part, step in steps.items():
        started = time.perf_counter()
        results[part] = collected(step())
        seconds[part] = time.perf_counter() - started
    return seconds, results


# --------------------------------------------------------------------------- duckdb


def duckdb_orders_sql(path: Path) -> str:
    """The spec's order table, built once into a temporary table ``all_orders``."""
    source = str(path).replace("'", "''")
    return f"""
    CREATE TEMP TABLE all_orders AS
    WITH orders AS (
        SELECT order_id, max(customer_id) AS customer_id, min(ordered_at) AS ordered_at,
               sum(CAST(line_total AS DOUBLE)) AS lines_amount,
               coalesce(bool_or(status = 'cancelled'), false) AS is_cancelled,
               coalesce(max(CAST(discount AS DOUBLE)), 0) AS discount,
               coalesce(max(CAST(refund_amount AS DOUBLE)), 0) AS refund
        FROM read_parquet('{source}')
        GROUP BY order_id
    )
    SELECT customer_id, order_id, ordered_at,
           CAST(ordered_at AS DATE) - DATE '1970-01-01' AS order_day,
           year(ordered_at) * 12 + month(ordered_at) - 1 AS order_month,
           greatest(greatest(lines_amount - discount, 0) - refund, 0) AS net_amount
    FROM orders
    WHERE NOT is_cancelled"""


def _duckdb_orders(as_of: dt.date | None) -> str:
    """The CTE ``counted``: the orders of ``all_orders`` up to ``as_of``."""
    as_of_filter = f"WHERE order_day <= {day_number(as_of)}" if as_of else ""
    return f"counted AS (SELECT * FROM all_orders {as_of_filter})"


def _duckdb_segment_case() -> str:
    branches = [
        f"WHEN r_score = {r} AND fm_score = {fm} THEN '{segment}'"
        for r, row in SEGMENT_GRID.items()
        for fm, segment in enumerate(row, start=1)
    ]
    return "CASE " + " ".join(branches) + " END"


def _duckdb_value_case() -> str:
    branches = [
        f"WHEN r_high = {r} AND f_high = {f} AND m_high = {m} THEN '{name}'"
        for (r, f, m), name in VALUE_CLASSES.items()
    ]
    return "CASE " + " ".join(branches) + " END"


def duckdb_rfm_sql(path: Path) -> str:
    as_of_day = day_number(AS_OF)
    return f"""
    WITH {_duckdb_orders(AS_OF)},
    per_customer AS (
        SELECT customer_id, min(ordered_at) AS first_order_at, max(ordered_at) AS last_order_at,
               {as_of_day} - max(order_day) AS recency_days,
               {as_of_day} - min(order_day) AS tenure_days,
               count(*) AS frequency, sum(net_amount) AS monetary
        FROM counted GROUP BY customer_id
    ),
    ranked AS (
        SELECT *, monetary / frequency AS average_order_value, count(*) OVER () AS n,
               row_number() OVER (ORDER BY recency_days DESC, customer_id) AS r_rank,
               row_number() OVER (ORDER BY frequency, customer_id) AS f_rank,
               row_number() OVER (ORDER BY monetary, customer_id) AS m_rank,
               recency_days < avg(recency_days) OVER () AS r_high,
               frequency > avg(frequency) OVER () AS f_high,
               monetary > avg(monetary) OVER () AS m_high
        FROM per_customer
    ),
    scored AS (
        SELECT *, (r_rank - 1) * 5 // n + 1 AS r_score, (f_rank - 1) * 5 // n + 1 AS f_score,
               (m_rank - 1) * 5 // n + 1 AS m_score
        FROM ranked
    ),
    graded AS (SELECT *, (f_score + m_score + 1) // 2 AS fm_score FROM scored)
    SELECT {", ".join(RFM_COLUMNS[:-2])},
           {_duckdb_segment_case()} AS rfm_segment, {_duckdb_value_case()} AS value_class
    FROM graded ORDER BY customer_id
    """


def duckdb_kpis_sql(path: Path) -> str:
    start, end = day_number(KPI_START), day_number(KPI_END)
    previous_start, previous_end = (day_number(day) for day in previous_period())
    return f"""
    WITH {_duckdb_orders(None)},
    first_orders AS (SELECT customer_id, min(order_day) AS first_day FROM counted GROUP BY 1),
    per_customer AS (
        SELECT customer_id, count(*) AS orders, sum(net_amount) AS revenue
        FROM counted WHERE order_day BETWEEN {start} AND {end} GROUP BY customer_id
    ),
    previous AS (
        SELECT DISTINCT customer_id FROM counted
        WHERE order_day BETWEEN {previous_start} AND {previous_end}
    ),
    gaps AS (
        SELECT order_day, order_day - lag(order_day) OVER (
                   PARTITION BY customer_id ORDER BY order_day, order_id) AS gap_days
        FROM counted WHERE order_day <= {end}
    ),
    period_gaps AS (
        SELECT avg(gap_days) AS mean_gap, median(gap_days) AS median_gap FROM gaps
        WHERE gap_days IS NOT NULL AND order_day BETWEEN {start} AND {end}
    ),
    ranked AS (
        SELECT revenue, row_number() OVER (ORDER BY revenue DESC, customer_id) AS position,
               count(*) OVER () AS n
        FROM per_customer
    ),
    totals AS (
        SELECT count(*) AS active, CAST(coalesce(sum(orders), 0) AS BIGINT) AS orders,
               coalesce(sum(revenue), 0) AS revenue,
               count(*) FILTER (WHERE first_day >= {start}) AS new,
               count(*) FILTER (WHERE orders >= 2) AS repeaters
        FROM per_customer JOIN first_orders USING (customer_id)
    ),
    retention AS (
        SELECT count(*) AS previous_active,
               count(p.customer_id) AS retained
        FROM previous LEFT JOIN per_customer AS p USING (customer_id)
    )
    SELECT DATE '{KPI_START}' AS period_start, DATE '{KPI_END}' AS period_end,
           active AS active_customers, new AS new_customers,
           active - new AS returning_customers, orders, revenue,
           CASE WHEN active > 0 THEN repeaters / active END AS repeat_purchase_rate,
           CASE WHEN previous_active > 0 THEN retained / previous_active END AS retention_rate,
           CASE WHEN previous_active > 0 THEN 1 - retained / previous_active END AS churn_rate,
           CASE WHEN active > 0 THEN orders / active END AS purchase_frequency,
           CASE WHEN orders > 0 THEN revenue / orders END AS average_order_value,
           mean_gap AS average_inter_purchase_days,
           CAST(median_gap AS DOUBLE) AS median_inter_purchase_days,
           CASE WHEN revenue > 0 THEN (
               SELECT sum(revenue) FROM ranked WHERE position <= ceil(0.2 * n)
           ) / revenue END AS top20_revenue_share
    FROM totals, retention, period_gaps
    """


def duckdb_cohorts_sql(path: Path) -> str:
    return f"""
    WITH {_duckdb_orders(AS_OF)},
    cohorts AS (SELECT customer_id, min(order_month) AS cohort FROM counted GROUP BY 1),
    sizes AS (SELECT cohort, count(*) AS cohort_size FROM cohorts GROUP BY cohort),
    activity AS (
        SELECT cohort, order_month - cohort AS period,
               count(DISTINCT customer_id) AS active_customers,
               count(*) AS orders, sum(net_amount) AS revenue
        FROM counted JOIN cohorts USING (customer_id) GROUP BY ALL
    )
    SELECT make_date(CAST(cohort // 12 AS INTEGER), CAST(cohort % 12 + 1 AS INTEGER), 1)
               AS cohort_month,
           period, cohort_size, active_customers,
           active_customers / cohort_size AS retention_rate, orders, revenue
    FROM activity JOIN sizes USING (cohort)
    ORDER BY cohort_month, period
    """


def run_duckdb(path: Path) -> tuple[dict[str, float], dict[str, Any]]:
    """The three results as hand-written DuckDB SQL, fetched as Polars frames.

    The order table is built once into a temporary table (``load``), as Patron and pandas do.
    """
    import duckdb
    import polars as pl

    connection = duckdb.connect()
    connection.execute("SET enable_progress_bar = false")
    queries = {
        "rfm": duckdb_rfm_sql(path),
        "kpis": duckdb_kpis_sql(path),
        "cohorts": duckdb_cohorts_sql(path),
    }
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    connection.execute(duckdb_orders_sql(path))
    seconds["load"] = time.perf_counter() - started
    results: dict[str, Any] = {}
    for part, sql in queries.items():
        started = time.perf_counter()
        results[part] = pl.from_arrow(connection.sql(sql).to_arrow_table())
        seconds[part] = time.perf_counter() - started
    return seconds, results


# --------------------------------------------------------------------------- pandas


def run_pandas(path: Path) -> tuple[dict[str, float], dict[str, Any]]:
    """A straightforward pandas implementation: one read, one order table, three groupbys."""
    import pandas as pd

    seconds: dict[str, float] = {}
    started = time.perf_counter()
    lines = pd.read_parquet(
        path,
        columns=[
            "order_id",
            "customer_id",
            "ordered_at",
            "line_total",
            "status",
            "discount",
            "refund_amount",
        ],
    )
    lines["discount"] = lines["discount"].fillna(0.0)
    lines["refund_amount"] = lines["refund_amount"].fillna(0.0)
    lines["is_cancelled"] = lines["status"] == "cancelled"
    # The customer repeats on every line of an order: "first" reads it.
    orders = lines.groupby("order_id", sort=False).agg(
        customer_id=("customer_id", "first"),
        ordered_at=("ordered_at", "min"),
        lines_amount=("line_total", "sum"),
        is_cancelled=("is_cancelled", "any"),
        discount=("discount", "max"),
        refund=("refund_amount", "max"),
    )
    del lines
    orders = orders[~orders["is_cancelled"]].reset_index()
    orders["order_day"] = (orders["ordered_at"].dt.floor("D") - pd.Timestamp("1970-01-01")).dt.days
    orders["order_month"] = orders["ordered_at"].dt.year * 12 + orders["ordered_at"].dt.month - 1
    gross = (orders["lines_amount"] - orders["discount"]).clip(lower=0)
    orders["net_amount"] = (gross - orders["refund"]).clip(lower=0)
    counted = orders[orders["order_day"] <= day_number(AS_OF)]
    seconds["load"] = time.perf_counter() - started

    results: dict[str, Any] = {}
    for part, compute in (
        ("rfm", _pandas_rfm),
        ("kpis", _pandas_kpis),
        ("cohorts", _pandas_cohorts),
    ):
        started = time.perf_counter()
        results[part] = compute(counted)
        seconds[part] = time.perf_counter() - started
    return seconds, results


def _pandas_rfm(counted: Any) -> Any:
    import pandas as pd

    as_of_day = day_number(AS_OF)
    table = (
        counted.groupby("customer_id")
        .agg(
            first_order_at=("ordered_at", "min"),
            last_order_at=("ordered_at", "max"),
            first_day=("order_day", "min"),
            last_day=("order_day", "max"),
            frequency=("order_id", "size"),
            monetary=("net_amount", "sum"),
        )
        .reset_index()
    )
    table["recency_days"] = as_of_day - table["last_day"]
    table["tenure_days"] = as_of_day - table["first_day"]
    table["average_order_value"] = table["monetary"] / table["frequency"]
    n = len(table)
    for score, column, ascending in (
        ("r_score", "recency_days", False),
        ("f_score", "frequency", True),
        ("m_score", "monetary", True),
    ):
        order = table.sort_values([column, "customer_id"], ascending=[ascending, True]).index
        rank = pd.Series(np.arange(1, n + 1), index=order)
        table[score] = ((rank - 1) * 5 // n + 1).reindex(table.index)
    grid = {(r, fm): name for r, row in SEGMENT_GRID.items() for fm, name in enumerate(row, 1)}
    fm_score = (table["f_score"] + table["m_score"] + 1) // 2
    table["rfm_segment"] = [grid[key] for key in zip(table["r_score"], fm_score, strict=True)]
    highs = zip(
        table["recency_days"] < table["recency_days"].mean(),
        table["frequency"] > table["frequency"].mean(),
        table["monetary"] > table["monetary"].mean(),
        strict=True,
    )
    table["value_class"] = [VALUE_CLASSES[key] for key in highs]
    return table[list(RFM_COLUMNS)]


def _pandas_kpis(counted: Any) -> Any:
    import pandas as pd

    start, end = day_number(KPI_START), day_number(KPI_END)
    previous_start, previous_end = (day_number(day) for day in previous_period())
    in_period = counted[counted["order_day"].between(start, end)]
    per_customer = in_period.groupby("customer_id").agg(
        orders=("order_id", "size"), revenue=("net_amount", "sum")
    )
    first_day = counted.groupby("customer_id")["order_day"].min()
    active = len(per_customer)
    new = int((first_day.reindex(per_customer.index) >= start).sum())
    orders = int(per_customer["orders"].sum())
    revenue = float(per_customer["revenue"].sum())
    previous = counted.loc[
        counted["order_day"].between(previous_start, previous_end), "customer_id"
    ].unique()
    retained = int(per_customer.index.isin(previous).sum())
    retention = retained / len(previous) if len(previous) else None
    history = counted[counted["order_day"] <= end].sort_values(
        ["customer_id", "order_day", "order_id"]
    )
    gap_days = history.groupby("customer_id")["order_day"].diff()
    gaps = gap_days[history["order_day"].between(start, end)].dropna()
    top = per_customer.reset_index().sort_values(
        ["revenue", "customer_id"], ascending=[False, True]
    )
    top_revenue = float(top["revenue"].head(math.ceil(0.2 * active)).sum())
    row = {
        "period_start": KPI_START,
        "period_end": KPI_END,
        "active_customers": active,
        "new_customers": new,
        "returning_customers": active - new,
        "orders": orders,
        "revenue": revenue,
        "repeat_purchase_rate": (per_customer["orders"] >= 2).sum() / active if active else None,
        "retention_rate": retention,
        "churn_rate": 1 - retention if retention is not None else None,
        "purchase_frequency": orders / active if active else None,
        "average_order_value": revenue / orders if orders else None,
        "average_inter_purchase_days": gaps.mean() if len(gaps) else None,
        "median_inter_purchase_days": gaps.median() if len(gaps) else None,
        "top20_revenue_share": top_revenue / revenue if revenue else None,
    }
    return pd.DataFrame([row])


def _pandas_cohorts(counted: Any) -> Any:
    import pandas as pd

    cohort = counted.groupby("customer_id")["order_month"].min().rename("cohort")
    orders = counted.join(cohort, on="customer_id")
    orders["period"] = orders["order_month"] - orders["cohort"]
    matrix = (
        orders.groupby(["cohort", "period"])
        .agg(
            active_customers=("customer_id", "nunique"),
            orders=("order_id", "size"),
            revenue=("net_amount", "sum"),
        )
        .reset_index()
    )
    matrix["cohort_size"] = matrix["cohort"].map(cohort.value_counts())
    matrix["retention_rate"] = matrix["active_customers"] / matrix["cohort_size"]
    matrix["cohort_month"] = [
        dt.date(int(month) // 12, int(month) % 12 + 1, 1) for month in matrix["cohort"]
    ]
    return pd.DataFrame(matrix.sort_values(["cohort", "period"])[list(COHORT_COLUMNS)])


# --------------------------------------------------------------------------- processes


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM), in MB."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def thread_counts(implementation: str) -> str:
    if implementation in PATRON_ENGINES:
        import polars as pl

        return f"polars {pl.thread_pool_size()} threads"
    if implementation == "duckdb":
        import duckdb

        row = duckdb.connect().execute("SELECT current_setting('threads')").fetchone()
        return f"duckdb {row[0] if row else '?'} threads"
    return "pandas 1 thread"


def child(implementation: str, path: Path, results: Path) -> None:
    """Run one implementation, write its results, print its timings as one JSON line."""
    threads = thread_counts(implementation)
    import_mb = peak_rss_mb()
    if implementation in PATRON_ENGINES:
        seconds, frames = run_patron(path, PATRON_ENGINES[implementation])
    elif implementation == "duckdb":
        seconds, frames = run_duckdb(path)
    else:
        seconds, frames = run_pandas(path)
    # The work is the sum of the parts: imports (scikit-learn comes with patron.engine) and
    # process start are the same whatever the data size, and are not what is compared.
    total = sum(seconds.values())
    peak = peak_rss_mb()  # before writing the results, which is not part of the work
    results.mkdir(parents=True, exist_ok=True)
    for part, frame in frames.items():
        target = results / f"{implementation}-{part}.parquet"
        if implementation == "pandas":
            frame.to_parquet(target, index=False)
        else:
            frame.write_parquet(target)
    report = {
        "implementation": implementation,
        "seconds": total,
        "parts": seconds,
        "peak_mb": peak,
        "import_mb": import_mb,
        "threads": threads,
    }
    print(json.dumps(report), flush=True)


def measure(implementation: str, path: Path, results: Path) -> dict[str, Any] | None:
    """Run one implementation in a fresh process; its report, or None when it failed."""
    command = [
        sys.executable,
        __file__,
        "--child",
        implementation,
        "--data",
        str(path),
        "--results",
        str(results),
    ]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        print(f"{implementation} failed:\n{finished.stderr[-3000:]}", flush=True)
        return None
    report: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    return report


# --------------------------------------------------------------------------- checks


def _normalised(frame: Any, part: str) -> Any:
    import polars as pl

    columns = [column for column in RESULT_COLUMNS[part] if column in frame.columns]
    frame = frame.select(columns)
    casts: dict[str, Any] = {}
    for column, dtype in frame.schema.items():
        if dtype.is_integer() or dtype == pl.Boolean:
            casts[column] = pl.Int64
        elif dtype.is_float() or dtype.is_decimal():
            casts[column] = pl.Float64
        elif isinstance(dtype, pl.Datetime):
            casts[column] = pl.Datetime("us")
        elif dtype == pl.Null:
            casts[column] = pl.Float64
    frame = frame.cast(casts)
    if part == "cohorts":
        frame = frame.with_columns(pl.col("cohort_month").cast(pl.Date))
    return frame


def summary(frames: dict[str, Any]) -> str:
    """A few totals of one implementation's results, printed to show what was compared."""
    import polars as pl

    rfm, kpis, cohorts = frames["rfm"], frames["kpis"], frames["cohorts"]
    scores = rfm.select(pl.sum_horizontal(pl.sum("r_score", "f_score", "m_score"))).item()
    return (
        f"rfm rows {rfm.height:,}, monetary {rfm['monetary'].sum():,.2f}, scores {scores:,}, "
        f"champions {(rfm['rfm_segment'] == 'champions').sum():,}; "
        f"kpis active {kpis['active_customers'][0]:,}, revenue {kpis['revenue'][0]:,.2f}, "
        f"retention {kpis['retention_rate'][0]:.6f}, top20 {kpis['top20_revenue_share'][0]:.6f}; "
        f"cohorts rows {cohorts.height:,}, active {cohorts['active_customers'].sum():,}, "
        f"revenue {cohorts['revenue'].sum():,.2f}"
    )


def compare(results: Path, implementations: list[str]) -> bool:
    """Compare every implementation's results with the first one's, column by column."""
    import polars as pl
    from polars.testing import assert_frame_equal

    loaded = {
        name: {
            part: _normalised(pl.read_parquet(results / f"{name}-{part}.parquet"), part)
            for part in PARTS
        }
        for name in implementations
    }
    for name, frames in loaded.items():
        print(f"  {name:<17} {summary(frames)}")
    reference, *others = implementations
    agree = True
    for name in others:
        for part in PARTS:
            expected, actual = loaded[reference][part], loaded[name][part]
            shared = [column for column in expected.columns if column in actual.columns]
            missing = sorted(set(RESULT_COLUMNS[part]) - set(shared))
            try:
                assert_frame_equal(
                    expected.select(shared), actual.select(shared), rel_tol=1e-9, abs_tol=1e-9
                )
            except AssertionError as error:
                agree = False
                print(f"  {part}: {name} differs from {reference}: {str(error).splitlines()[0]}")
            if missing:
                print(f"  {part}: not compared, missing in {reference} or {name}: {missing}")
    return agree


# --------------------------------------------------------------------------- main


def verdict(is_met: bool) -> str:
    return "PASS" if is_met else "FAIL"


def report(measured: dict[str, dict[str, Any]], lines: int, customers: int) -> None:
    print(f"\n{lines:,} order lines, {customers:,} customers, {os.cpu_count()} CPUs")
    print(
        f"{'implementation':<18}{'load':>7}{'rfm':>7}{'kpis':>7}{'cohorts':>8}"
        f"{'total s':>9}{'peak MB':>9}  threads"
    )
    for name, result in measured.items():
        parts = result["parts"]
        cells = "".join(
            f"{parts[part]:>{width}.2f}" if part in parts else f"{'-':>{width}}"
            for part, width in (("load", 7), ("rfm", 7), ("kpis", 7), ("cohorts", 8))
        )
        print(
            f"{name:<18}{cells}{result['seconds']:>9.2f}{result['peak_mb']:>9.0f}"
            f"  {result['threads']}"
        )
    figures: dict[str, Any] = {"lines": lines, "customers": customers}
    for name, result in measured.items():
        figures[f"{name}_seconds"] = round(result["seconds"], 2)
        figures[f"{name}_peak_mb"] = round(result["peak_mb"])
    for name in PATRON_ENGINES:
        patron = measured.get(name)
        if patron is None:
            continue
        how = "frames.collect" if PATRON_ENGINES[name] == "patron" else "in-memory collect()"
        print(f"{name} ({how}):")
        if "duckdb" in measured:
            ratio = patron["seconds"] / measured["duckdb"]["seconds"]
            figures[f"{name}_over_duckdb"] = round(ratio, 2)
            print(f"  Patron / DuckDB time {ratio:7.2f}    (goal <= 1.5)   {verdict(ratio <= 1.5)}")
        if "pandas" in measured:
            ratio = measured["pandas"]["seconds"] / patron["seconds"]
            figures[f"pandas_over_{name}"] = round(ratio, 2)
            print(f"  pandas / Patron time {ratio:7.2f}    (goal >= 3)     {verdict(ratio >= 3)}")
        peak = patron["peak_mb"]
        print(f"  Patron peak memory   {peak:7.0f} MB (goal < 4096) {verdict(peak < 4096)}")
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "patron-bench-analytics",
        help="folder of the generated Parquet files, kept and reused (default: %(default)s)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per implementation, best kept")
    parser.add_argument(
        "--implementations",
        default=",".join(IMPLEMENTATIONS),
        help=f"comma-separated subset of %(default)s and {', '.join(EXTRA_IMPLEMENTATIONS)}",
    )
    parser.add_argument(
        "--child", choices=IMPLEMENTATIONS + EXTRA_IMPLEMENTATIONS, help=argparse.SUPPRESS
    )
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--results", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(arguments.child, arguments.data, arguments.results)
        return

    arguments.out.mkdir(parents=True, exist_ok=True)
    path = dataset_path(arguments.out, arguments.lines, arguments.customers, arguments.seed)
    if path.exists():
        print(f"reusing {path}", flush=True)
    else:
        started = time.perf_counter()
        generate(path, arguments.lines, arguments.customers, arguments.seed)
        print(f"generated {path} in {time.perf_counter() - started:.1f} s", flush=True)
    print(f"{path.stat().st_size / 2**20:.0f} MB Parquet", flush=True)
    path.read_bytes()  # every implementation starts with the file in the page cache
    threads = os.environ.get("POLARS_MAX_THREADS", "unset")
    print(f"POLARS_MAX_THREADS={threads}; threads used are printed per implementation")
    print(
        f"RFM as of {AS_OF}; KPIs {KPI_START}..{KPI_END} (previous period "
        f"{previous_period()[0]}..{previous_period()[1]}); cohorts to {AS_OF}",
        flush=True,
    )

    implementations = [name.strip() for name in arguments.implementations.split(",")]
    unknown = set(implementations) - set(IMPLEMENTATIONS + EXTRA_IMPLEMENTATIONS)
    if unknown:
        parser.error(f"unknown implementation(s): {', '.join(sorted(unknown))}")
    measured: dict[str, dict[str, Any]] = {}
    failed: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="patron-bench-results-") as folder:
        # Rounds interleave the implementations, so that a burst of load from elsewhere on the
        # machine does not fall on one of them only; the fastest run of each is kept.
        for _ in range(arguments.repeat):
            for name in implementations:
                if name in failed:
                    continue
                result = measure(name, path, Path(folder))
                if result is None:
                    failed.add(name)
                    continue
                print(
                    f"{name}: {result['seconds']:.2f} s, peak {result['peak_mb']:.0f} MB",
                    flush=True,
                )
                if name not in measured or result["seconds"] < measured[name]["seconds"]:
                    measured[name] = result
        if len(measured) > 1:
            print("results:")
            agree = compare(Path(folder), list(measured))
            print(f"results agree: {'yes' if agree else 'NO'}")
    report(measured, arguments.lines, arguments.customers)


if __name__ == "__main__":
    main()
