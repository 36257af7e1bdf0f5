"""Benchmark: recommendation training at scale, basket mining, and the endpoint over HTTP.

    .venv/bin/python bench/recommend.py [--customers 1000000] [--products 50000]
                                        [--interactions 20000000] [--factors 64]
                                        [--baskets 100000] [--basket-products 5000]
                                        [--min-support 0.001] [--shop-customers 20000]
                                        [--rate 200] [--seconds 20]
                                        [--parts training baskets http]

Each part runs in its own child processes (a fresh interpreter each, so that the memory of
one does not count in another's), in one run:

1. **Training at scale**, on the engine (``patron.engine.recommend``) without the store:
   ``--interactions`` synthetic purchases of ``--customers`` customers over ``--products``
   products (numpy, seeded: Zipf popularity of the products, exponent 1; a log-normal number
   of interactions per customer, at least one; each customer's events in the months before
   their own last day in a year), written to Parquet by one child. A second child reads them
   and trains, step by step: the interaction matrix (``build_interactions``, the Parquet read
   included), ALS with ``--factors`` factors (``implicit``, CPU, ``--iterations``: 15, its default),
   item neighbours (``ItemKNNRecommender``, cosine, top ``--neighbours``) and the top-10
   lists of the active customers (the 10% with the most recent last event) by ALS
   (``recommend_indices``, already-seen items excluded). Wall time of each step and the peak
   resident memory of the child after it (``getrusage``: numpy's and implicit's memory
   included). Goal: the whole training under 3 minutes and 4 GB.
2. **Basket mining**: ``--baskets`` synthetic baskets over ``--basket-products`` products
   (Zipf popularity, a geometric basket size of mean 4, a third of the baskets holding one of
   200 product bundles) mined at ``--min-support`` by our ``fpgrowth``, mlxtend's
   ``fpgrowth`` (on its one-hot table; the encoding timed apart) and efficient-apriori's
   itemset search (``itemsets_from_transactions``, without its rules), each in its own
   child; the three results are compared itemset by itemset (same itemsets, same counts).
   Goal: ours no slower than the faster of the two.
3. **The recommendation endpoint over HTTP**: a demo shop of ``--shop-customers`` customers
   (``build_demo_shop``, which trains the recommendations) in a fresh PostgreSQL database of
   the local server (``PATRON_TEST_POSTGRES_URL``, default
   ``postgresql://postgres@127.0.0.1:5432/postgres``, dropped at the end), ``patron serve``'s
   Granian (2 workers x 4 threads), and a separate load process sending
   ``GET /api/v1/customers/{external_id}/recommendations?n=10`` at a fixed ``--rate`` for
   ``--seconds`` (open loop, 32 keep-alive connections: ``bench/http_load.py``), half to
   customers with a precomputed list and half to customers without one (then each kind alone,
   to tell them apart), with the CPU time per request of the server (Granian and its
   workers), of PostgreSQL (the database's backends) and of the load process.
   Goal: p99 < 20 ms.

Prints the figures, the goals as PASS/FAIL, the load average, and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

POSTGRES_SERVER = os.environ.get(
    "PATRON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TRAINING_SECONDS_GOAL = 180.0
TRAINING_MEMORY_GOAL_MB = 4_096.0
P99_GOAL_MS = 20.0
ACTIVE_SHARE = 0.10
LIST_LENGTH = 10


def _peak_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- child: synthetic interactions and training ----------------------------------------------


def generate_interactions(
    path: str, customers: int, products: int, interactions: int, seed: int
) -> dict[str, Any]:
    """Write the synthetic purchases (customer_id, product_id, occurred_at) to ``path``."""
    import numpy as np
    import polars as pl

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    appetite = rng.lognormal(0.0, 1.0, customers)
    per_customer = 1 + rng.multinomial(interactions - customers, appetite / appetite.sum())
    customer = np.repeat(np.arange(customers, dtype=np.int64), per_customer)
    popularity = 1.0 / np.arange(1, products + 1, dtype=np.float64)
    # Product ids shuffled, so that the most popular products are not the first columns.
    product_ids = rng.permutation(products).astype(np.int64)
    item = product_ids[rng.choice(products, size=interactions, p=popularity / popularity.sum())]
    last_day = rng.integers(0, 365, customers)
    age = np.minimum(rng.exponential(60.0, interactions), 364).astype(np.int64)
    day = np.maximum(last_day[customer] - age, 0) + 19_700  # days since 1970 (2023-12-08 on)
    frame = pl.DataFrame(
        {
            "customer_id": customer,
            "product_id": item,
            "occurred_at": pl.Series(day.astype(np.int32)).cast(pl.Date),
        }
    )
    frame.write_parquet(path)
    return {
        "seconds": time.perf_counter() - started,
        "max_per_customer": int(per_customer.max()),
        "median_per_customer": float(np.median(per_customer)),
        "top_product_share": float(popularity[0] / popularity.sum()),
    }


def train(path: str, factors: int, iterations: int, neighbours: int) -> dict[str, Any]:
    """Train step by step on the Parquet file; seconds and peak memory after each step."""
    import numpy as np
    import polars as pl

    from patron.engine.recommend import ALSRecommender, ItemKNNRecommender, build_interactions

    steps: dict[str, dict[str, float]] = {}
    began = time.perf_counter()

    def done(name: str, started: float) -> None:
        steps[name] = {"seconds": time.perf_counter() - started, "peak_mb": _peak_mb()}
        print(f"  ({name}: {steps[name]})", file=sys.stderr, flush=True)

    started = time.perf_counter()
    events = pl.read_parquet(path)
    interactions = build_interactions(events)
    last_day = events.group_by("customer_id").agg(pl.col("occurred_at").max()).sort("occurred_at")
    del events
    done("interactions", started)

    started = time.perf_counter()
    als = ALSRecommender(factors=factors, iterations=iterations, random_state=0).fit(interactions)
    done("als", started)

    started = time.perf_counter()
    knn = ItemKNNRecommender(k=neighbours).fit(interactions)
    done("item_neighbours", started)

    started = time.perf_counter()
    active = last_day["customer_id"].to_list()[-int(len(last_day) * ACTIVE_SHARE) :]
    index = interactions.customer_index
    rows = np.array([index[customer] for customer in active], dtype=np.int64)
    items, _ = als.recommend_indices(rows, LIST_LENGTH)
    done("active_lists", started)

    return {
        "customers": interactions.n_customers,
        "products": interactions.n_items,
        "cells": int(interactions.matrix.nnz),
        "active_customers": len(rows),
        "full_lists": int((items >= 0).all(axis=1).sum()),
        "neighbour_pairs": int(knn.similarity_.nnz),
        "seconds": time.perf_counter() - began,
        "peak_mb": _peak_mb(),
        "steps": steps,
    }


# --- child: basket mining --------------------------------------------------------------------


def make_baskets(baskets: int, products: int, seed: int) -> list[list[str]]:
    """Synthetic baskets of product ids ``P00000``... (see the module docstring)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    names = np.array([f"P{index:05d}" for index in range(products)], dtype=object)
    popularity = 1.0 / np.arange(1, products + 1, dtype=np.float64)
    sizes = rng.geometric(0.25, baskets)
    drawn = rng.choice(products, size=int(sizes.sum()), p=popularity / popularity.sum())
    bundles = [rng.choice(products, size=rng.integers(2, 5), replace=False) for _ in range(200)]
    has_bundle = rng.random(baskets) < 1 / 3
    bundle_of = rng.integers(0, len(bundles), baskets)
    result: list[list[str]] = []
    offset = 0
    for basket in range(baskets):
        chosen = set(drawn[offset : offset + sizes[basket]].tolist())
        offset += int(sizes[basket])
        if has_bundle[basket]:
            chosen.update(bundles[bundle_of[basket]].tolist())
        result.append(sorted(names[list(chosen)].tolist()))
    return result


def mine(miner: str, baskets: int, products: int, min_support: float, seed: int) -> dict:
    """Mine the baskets with one miner: seconds and every itemset with its count."""
    import math

    transactions = make_baskets(baskets, products, seed)
    encode_seconds = 0.0
    found: list[tuple[list[str], int]] = []
    if miner == "patron":
        from patron.engine.recommend import fpgrowth

        started = time.perf_counter()
        table = fpgrowth(transactions, min_support)
        seconds = time.perf_counter() - started
        found = list(zip(table["itemset"].to_list(), table["count"].to_list(), strict=True))
    elif miner == "mlxtend":
        import pandas as pd
        from mlxtend.frequent_patterns import (  # type: ignore[import-untyped]
            fpgrowth as mlxtend_fpgrowth,
        )
        from mlxtend.preprocessing import TransactionEncoder  # type: ignore[import-untyped]

        started = time.perf_counter()
        encoder = TransactionEncoder()
        onehot = pd.DataFrame(encoder.fit(transactions).transform(transactions))
        onehot.columns = encoder.columns_
        encode_seconds = time.perf_counter() - started
        started = time.perf_counter()
        table = mlxtend_fpgrowth(onehot, min_support=min_support, use_colnames=True)
        seconds = time.perf_counter() - started
        found = [
            (sorted(itemset), round(support * len(transactions)))
            for itemset, support in zip(table["itemsets"], table["support"], strict=True)
        ]
    elif miner == "efficient_apriori":
        from efficient_apriori.itemsets import (  # type: ignore[import-untyped]
            itemsets_from_transactions,
        )

        started = time.perf_counter()
        itemsets, _ = itemsets_from_transactions(
            [tuple(basket) for basket in transactions], min_support
        )
        seconds = time.perf_counter() - started
        found = [
            (sorted(itemset), count)
            for by_length in itemsets.values()
            for itemset, count in by_length.items()
        ]
    else:
        raise SystemExit(f"unknown miner {miner!r}")
    return {
        "seconds": seconds,
        "encode_seconds": encode_seconds,
        "min_count": max(1, math.ceil(min_support * len(transactions))),
        "itemsets": found,
    }


# --- child: a demo shop for the endpoint -----------------------------------------------------


def _django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")
    import django

    django.setup()


def setup_shop(customers: int) -> dict[str, Any]:
    """Build the demo shop (which trains the recommendations); a token and customer ids."""
    from django.contrib.auth.models import User

    from patron.api.tokens import create_token
    from patron.customers.models import Customer
    from patron.demo.services import build_demo_shop
    from patron.recommend.models import Recommendation, TrainingRun

    started = time.perf_counter()
    report = build_demo_shop(customers=customers)
    build_seconds = time.perf_counter() - started
    run = TrainingRun.objects.order_by("-pk").first()
    with_list = list(
        Customer.objects.filter(
            pk__in=Recommendation.objects.values("customer_id").distinct()[:500]
        ).values_list("external_id", flat=True)
    )
    without_list = list(
        Customer.objects.exclude(pk__in=Recommendation.objects.values("customer_id"))
        .order_by("pk")
        .values_list("external_id", flat=True)[:500]
    )
    user = User.objects.create_superuser("bench-recommend")
    token = create_token(user, "bench")[1]
    return {
        "customers": report.customers,
        "products": report.products,
        "orders": report.orders,
        "build_seconds": build_seconds,
        "training_status": None if run is None else str(run.status),
        "with_list": with_list,
        "without_list": without_list,
        "token": token,
    }


def load(base: str, token: str, ids: list[str], rate: float, seconds: float) -> dict:
    """``GET /api/v1/customers/{id}/recommendations?n=10`` over ``ids`` in turn, open loop;
    with the CPU seconds this load process used (``load_cpu_seconds``)."""
    from http_load import Request, open_loop

    def request_for(index: int) -> Request:
        return Request("GET", f"/api/v1/customers/{ids[index % len(ids)]}/recommendations?n=10")

    started = time.process_time()
    result = open_loop(base, {"Authorization": f"Bearer {token}"}, request_for, rate, seconds)
    return {**result, "load_cpu_seconds": time.process_time() - started}


def _postgres_cpu(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database`` (same machine)."""
    import psycopg

    from http_load import cpu_seconds

    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        pids = [
            row[0]
            for row in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                [database],
            ).fetchall()
        ]
    return {pid: cpu_seconds(pid) for pid in pids}


def _measured_load(
    env: dict[str, str], server_pid: int, database: str, *arguments: str
) -> dict[str, Any]:
    """One load child, with the CPU per request of the server (Granian and its workers),
    of PostgreSQL (the database's backends) and of the load process, in milliseconds."""
    from http_load import process_tree_cpu_seconds

    server_before, postgres_before = process_tree_cpu_seconds(server_pid), _postgres_cpu(database)
    # Django closes a connection older than CONN_MAX_AGE (60 s) after a request, and its
    # backend's CPU time goes with it: the backends are sampled every half second, and a
    # closed one counts what it had used at its last sample.
    postgres_seen = dict(postgres_before)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            postgres_seen.update(_postgres_cpu(database))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = _child(env, "load", *arguments)
    finally:
        done.set()
        sampler.join()
    server = process_tree_cpu_seconds(server_pid) - server_before
    postgres_seen.update(_postgres_cpu(database))
    postgres = sum(
        seconds - postgres_before.get(pid, 0.0) for pid, seconds in postgres_seen.items()
    )
    requests = max(result["requests"], 1)
    result["cpu_ms_per_request"] = {
        "server": 1000 * server / requests,
        "postgres": 1000 * postgres / requests,
        "load": 1000 * result.pop("load_cpu_seconds") / requests,
    }
    return result


# --- parent ----------------------------------------------------------------------------------


def _child(env: dict[str, str] | None, *arguments: str) -> Any:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *arguments],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_training(arguments: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="patron-bench-recommend-") as folder:
        path = str(Path(folder) / "interactions.parquet")
        generated = _child(
            None,
            "generate",
            path,
            str(arguments.customers),
            str(arguments.products),
            str(arguments.interactions),
            str(arguments.seed),
        )
        trained = _child(
            None,
            "train",
            path,
            str(arguments.factors),
            str(arguments.iterations),
            str(arguments.neighbours),
        )
    return {"generated": generated, **trained}


def measure_baskets(arguments: argparse.Namespace) -> dict[str, Any]:
    results = {
        miner: _child(
            None,
            "mine",
            miner,
            str(arguments.baskets),
            str(arguments.basket_products),
            str(arguments.min_support),
            str(arguments.seed),
        )
        for miner in ("patron", "mlxtend", "efficient_apriori")
    }
    found = {
        miner: {frozenset(items): count for items, count in result.pop("itemsets")}
        for miner, result in results.items()
    }
    reference = found["patron"]
    by_length: dict[str, dict[int, int]] = {}
    for miner, itemsets in found.items():
        sizes: dict[int, int] = {}
        for itemset in itemsets:
            sizes[len(itemset)] = sizes.get(len(itemset), 0) + 1
        by_length[miner] = dict(sorted(sizes.items()))
        results[miner]["itemsets"] = len(itemsets)
        results[miner]["equal_to_patron"] = itemsets == reference
    return {"miners": results, "by_length": by_length}


def measure_http(arguments: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    name = f"patron_bench_recommend_{os.getpid()}"
    base_url = POSTGRES_SERVER.rsplit("/", 1)[0]
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    try:
        with tempfile.TemporaryDirectory(prefix="patron-bench-recommend-") as home:
            env = {
                **os.environ,
                "PATRON_HOME": home,
                "PATRON_DATABASE_URL": f"{base_url}/{name}",
                "DJANGO_SETTINGS_MODULE": "patron.settings",
            }
            subprocess.run(
                [sys.executable, "-m", "patron", "migrate", "-v", "0"], env=env, check=True
            )
            shop = _child(env, "setup", str(arguments.shop_customers))
            if not shop["with_list"]:
                return {"skipped": "the demo shop's training stored no list", **shop}
            from http_load import patron_server_process

            with patron_server_process(env) as (base, server_pid):
                mixed = [
                    customer
                    for pair in zip(shop["with_list"], shop["without_list"], strict=False)
                    for customer in pair
                ] or shop["with_list"]
                ids = ",".join(mixed)
                # Warm-up, not measured: the workers import the API and open their connections.
                _child(env, "load", base, shop["token"], ids, "20", "2")
                latency = _measured_load(
                    env,
                    server_pid,
                    name,
                    base,
                    shop["token"],
                    ids,
                    str(arguments.rate),
                    str(arguments.seconds),
                )
                # The two kinds apart, to tell where the time goes (not the goal's figure).
                by_kind = {
                    kind: _measured_load(
                        env,
                        server_pid,
                        name,
                        base,
                        shop["token"],
                        ",".join(shop[kind]),
                        str(arguments.rate),
                        str(arguments.seconds),
                    )
                    for kind in ("with_list", "without_list")
                    if shop[kind]
                }
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    shop.pop("token")
    return {
        **{key: value for key, value in shop.items() if key not in ("with_list", "without_list")},
        "customers_requested": len(mixed),
        **latency,
        "by_kind": by_kind,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--interactions", type=int, default=20_000_000)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument(
        "--iterations", type=int, default=15, help="ALS iterations (15: implicit's and the app's)"
    )
    parser.add_argument("--neighbours", type=int, default=100, help="item neighbours kept")
    parser.add_argument("--baskets", type=int, default=100_000)
    parser.add_argument("--basket-products", type=int, default=5_000)
    parser.add_argument("--min-support", type=float, default=0.001)
    parser.add_argument("--shop-customers", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=("training", "baskets", "http"),
        default=["training", "baskets", "http"],
        help="the parts to run (all)",
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        _run_child(arguments.child)
        return

    parts = set(arguments.parts)
    training = measure_training(arguments) if "training" in parts else None
    if training is not None:
        print_training(arguments, training)
    baskets = measure_baskets(arguments) if "baskets" in parts else None
    if baskets is not None:
        print_baskets(arguments, baskets)
    http: dict[str, Any] | None = None
    if "http" in parts:
        http = measure_http(arguments)
        print_http(arguments, http)
    print(f"Load average at the end: {', '.join(f'{value:.1f}' for value in os.getloadavg())}")
    print(
        json.dumps(
            {
                "training": training,
                "baskets": None if baskets is None else baskets["miners"],
                "itemsets_by_length": None if baskets is None else baskets["by_length"],
                "http": None
                if http is None
                else {key: value for key, value in http.items() if key != "first_failures"},
                "load_average": [round(value, 1) for value in os.getloadavg()],
            }
        )
    )


def print_training(arguments: argparse.Namespace, training: dict[str, Any]) -> None:
    print(
        f"Training on {arguments.interactions:,} synthetic interactions "
        f"({training['customers']:,} customers x {training['products']:,} products, "
        f"{training['cells']:,} cells; generated in {training['generated']['seconds']:.1f} s, "
        "not counted), load average "
        f"{os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs:"
    )
    labels = {
        "interactions": "interaction matrix (read + build_interactions)",
        "als": f"ALS, {arguments.factors} factors, {arguments.iterations} iterations",
        "item_neighbours": f"item neighbours (cosine, top {arguments.neighbours})",
        "active_lists": f"top-{LIST_LENGTH} lists of {training['active_customers']:,} "
        "active customers (ALS)",
    }
    for step, label in labels.items():
        figures = training["steps"][step]
        print(
            f"  {label}: {figures['seconds']:.1f} s, peak {figures['peak_mb']:,.0f} MB so far "
            f"({figures['seconds'] / training['seconds']:.0%} of the time)"
        )
    print(f"  whole training: {training['seconds']:.1f} s, peak {training['peak_mb']:,.0f} MB")
    verdict = (
        "PASS"
        if training["seconds"] < TRAINING_SECONDS_GOAL
        and training["peak_mb"] < TRAINING_MEMORY_GOAL_MB
        else "FAIL"
    )
    print(
        f"  goal < {TRAINING_SECONDS_GOAL:.0f} s and < {TRAINING_MEMORY_GOAL_MB:,.0f} MB: {verdict}"
    )


def print_baskets(arguments: argparse.Namespace, baskets: dict[str, Any]) -> None:
    miners = baskets["miners"]
    print(
        f"Basket mining, {arguments.baskets:,} baskets over {arguments.basket_products:,} "
        f"products, min support {arguments.min_support} "
        f"(count >= {miners['patron']['min_count']}):"
    )
    for miner, figures in miners.items():
        extra = (
            f" (+ {figures['encode_seconds']:.1f} s one-hot encoding)"
            if figures["encode_seconds"]
            else ""
        )
        print(
            f"  {miner}: {figures['seconds']:.2f} s{extra}, {figures['itemsets']:,} itemsets "
            f"{baskets['by_length'][miner]}, "
            f"{'same itemsets and counts as ours' if figures['equal_to_patron'] else 'DIFFERENT'}"
        )
    fastest_other = min(miners["mlxtend"]["seconds"], miners["efficient_apriori"]["seconds"])
    ours = miners["patron"]["seconds"]
    agree = all(figures["equal_to_patron"] for figures in miners.values())
    verdict = "PASS" if ours <= fastest_other else "FAIL"
    print(
        f"  goal ours no slower than the faster of the two: {verdict} "
        f"({ours / fastest_other:.2f}x its time); results agree: {'yes' if agree else 'NO'}"
    )


def print_http(arguments: argparse.Namespace, http: dict[str, Any]) -> None:
    if "skipped" in http:
        print(f"HTTP: skipped ({http['skipped']})")
    else:
        print(
            f"HTTP at {arguments.rate:.0f} requests/s for {arguments.seconds:.0f} s, PostgreSQL, "
            f"demo shop of {http['customers']:,} customers and {http['products']:,} products "
            f"(not the 1,000,000 of the training), Granian 2 workers x 4 threads, "
            f"{http['customers_requested']} customers in turn (half with a precomputed list):"
        )
        print(
            f"  GET /customers/{{id}}/recommendations?n=10: p50 {http['p50_ms']:.1f} ms, "
            f"p99 {http['p99_ms']:.1f} ms, max {http['max_ms']:.1f} ms, "
            f"{http['failures']} failures of {http['requests']}; {_cpu_text(http)}"
        )
        labels = {"with_list": "precomputed lists only", "without_list": "computed now only"}
        for kind, figures in http["by_kind"].items():
            print(
                f"  {labels[kind]}: p50 {figures['p50_ms']:.1f} ms, "
                f"p99 {figures['p99_ms']:.1f} ms, max {figures['max_ms']:.1f} ms, "
                f"{figures['failures']} failures; {_cpu_text(figures)}"
            )
        verdict = "PASS" if http["p99_ms"] < P99_GOAL_MS and not http["failures"] else "FAIL"
        print(f"  goal p99 < {P99_GOAL_MS:.0f} ms (both kinds in turn): {verdict}")


def _cpu_text(figures: dict[str, Any]) -> str:
    cpu = figures["cpu_ms_per_request"]
    return (
        f"CPU per request: server {cpu['server']:.2f} ms, PostgreSQL {cpu['postgres']:.2f} ms, "
        f"load process {cpu['load']:.2f} ms"
    )


def _run_child(arguments: list[str]) -> None:
    command, *rest = arguments
    if command == "generate":
        path, customers, products, interactions, seed = rest
        result: Any = generate_interactions(
            path, int(customers), int(products), int(interactions), int(seed)
        )
    elif command == "train":
        result = train(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
    elif command == "mine":
        miner, baskets, products, min_support, seed = rest
        result = mine(miner, int(baskets), int(products), float(min_support), int(seed))
    elif command == "setup":
        _django()
        result = setup_shop(int(rest[0]))
    elif command == "load":
        base, token, ids, rate, seconds = rest
        result = load(base, token, ids.split(","), float(rate), float(seconds))
    else:
        raise SystemExit(f"unknown child command {command!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
