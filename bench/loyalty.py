"""Benchmark: points earned per second on paid orders, and redemption latency over HTTP.

    .venv/bin/python bench/loyalty.py [--orders 20000] [--workers 1 4] [--rate 200]
                                      [--seconds 20] [--members 200]

Runs on a fresh PostgreSQL database of the local server (``PATRON_TEST_POSTGRES_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``), dropped at the end. In the same run:

1. **Earning.** ``--orders`` paid orders of as many customers (imported with ``patron import``,
   one line each), every customer enrolled; then a tenth of them through
   ``award_points_for_order`` one transaction per order (as the API earns one order: lock the
   member, post the pending points, open the lot, check the tier), and the rest through
   ``award_points_for_orders`` in batches of ``--batch`` (as an import earns), by each of
   ``--workers`` processes splitting the orders. Baseline: the floor of any per-order
   transaction, one ``INSERT`` and ``COMMIT`` per order over one connection (psycopg), measured
   on the same server.
2. **Redemption over HTTP.** ``patron serve``'s Granian (2 workers x 4 threads) on a local
   port; a separate load process sends ``POST /api/v1/loyalty/members/{id}/redemptions``
   (1 point, a new ``Idempotency-Key`` each, over ``--members`` members with points) at a fixed
   ``--rate`` per second for ``--seconds`` (open loop: each request has its scheduled time and
   its latency counts from it, so a slow answer delays nothing else; 32 keep-alive
   connections, as a shop's backend keeps a pool), and the same for
   ``GET /api/v1/loyalty/members/{id}`` as the baseline of a read.

Prints orders per second (goal: at least 2,000 on PostgreSQL), the p50/p99 latencies (goal: p99
of redemption under 50 ms at 200 per second), their ratios to the baselines, the load average,
and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

POSTGRES_SERVER = os.environ.get(
    "PATRON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
EARNING_GOAL = 2_000.0
P99_GOAL_MS = 50.0


def _django(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")
    import django

    django.setup()


# --- child: set up the shop ------------------------------------------------------------------


def setup_shop(orders: int, members: int) -> dict[str, Any]:
    """Import the orders, enrol every customer, give ``members`` of them points; a token."""
    import polars as pl
    from django.contrib.auth.models import User

    from patron.api.tokens import create_token
    from patron.customers.models import Customer
    from patron.ingest.services import ImportOptions, RecordKind, import_frames
    from patron.loyalty.ledger import adjust_points
    from patron.loyalty.members import enrol_members
    from patron.loyalty.models import Member

    frame = pl.DataFrame(
        {
            "order_id": [f"O{i:07d}" for i in range(orders)],
            "customer_id": [f"C{i:07d}" for i in range(orders)],
            "ordered_at": ["2024-11-11T10:00:00+08:00"] * orders,
            "line_total": [f"{100 + i % 400}.00" for i in range(orders)],
            "status": ["paid"] * orders,
            "channel": ["web"] * orders,
        }
    )
    summary = import_frames(
        RecordKind.ORDERS, [frame], options=ImportOptions(source="bench", award_points=False)
    )
    assert summary.rejected == 0, summary
    started = time.perf_counter()
    customer_ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    member_ids = enrol_members(customer_ids)
    enrol_seconds = time.perf_counter() - started
    enrolled = list(
        Member.objects.select_related("customer")
        .filter(pk__in=[member_ids[customer_id] for customer_id in customer_ids[:members]])
        .order_by("pk")
    )
    for member in enrolled:
        adjust_points(
            member,
            1_000_000,
            reason="bench stock",
            actor="bench",
            idempotency_key=f"bench-stock-{member.pk}",
        )
    user = User.objects.create_user("bench")
    token = create_token(user, "bench")[1]
    return {
        "orders": orders,
        "enrol_per_s": len(customer_ids) / enrol_seconds,
        "member_ids": [member.customer.external_id for member in enrolled],
        "token": token,
    }


def earn(first: int, last: int, batch: int) -> dict[str, Any]:
    """Award the points of orders ``first`` to ``last`` (by primary-key order): one by one
    (``batch`` 1, as the API does for one order) or ``batch`` orders per transaction
    (``award_points_for_orders``, as an import does)."""
    from patron.loyalty.ledger import award_points_for_order, award_points_for_orders
    from patron.orders.models import Order

    orders = list(Order.objects.select_related("customer").order_by("pk")[first:last])
    started = time.perf_counter()
    if batch == 1:
        for order in orders:
            award_points_for_order(order, idempotency_key=f"order:{order.pk}:paid")
    else:
        for start in range(0, len(orders), batch):
            chunk = orders[start : start + batch]
            award_points_for_orders(
                chunk, idempotency_keys=[f"order:{order.pk}:paid" for order in chunk]
            )
    return {"orders": len(orders), "seconds": time.perf_counter() - started}


# --- child: load generator -------------------------------------------------------------------


def load(base: str, token: str, ids: list[str], kind: str, rate: float, seconds: float) -> dict:
    """Open-loop load (``http_load.open_loop``): redemptions of 1 point with a new
    ``Idempotency-Key`` each, or reads of the member, over ``ids`` in turn."""
    from http_load import Request, open_loop

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def request_for(index: int) -> Request:
        member = ids[index % len(ids)]
        if kind == "redeem":
            return Request(
                "POST",
                f"/api/v1/loyalty/members/{member}/redemptions",
                body=json.dumps({"points": 1}).encode(),
                headers={"Idempotency-Key": f"bench-{os.getpid()}-{index}"},
                expected_status=201,
            )
        return Request("GET", f"/api/v1/loyalty/members/{member}")

    return open_loop(base, headers, request_for, rate, seconds)


# --- parent ----------------------------------------------------------------------------------


def _child(env: dict[str, str], *arguments: str) -> Any:
    result = subprocess.run(
        [sys.executable, __file__, "--child", *arguments],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def commit_per_order_floor(url: str, orders: int) -> float:
    """One INSERT and COMMIT per order over one connection: rows per second."""
    import psycopg

    with psycopg.connect(url) as connection:
        connection.execute("CREATE TABLE floor_rows (order_id TEXT, points INTEGER)")
        connection.commit()
        started = time.perf_counter()
        for index in range(orders):
            connection.execute("INSERT INTO floor_rows VALUES (%s, %s)", (f"O{index}", index))
            connection.commit()
        return orders / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=500, help="orders per batch transaction")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        _run_child(arguments.child)
        return

    import psycopg

    name = f"patron_bench_loyalty_{os.getpid()}"
    base_url = POSTGRES_SERVER.rsplit("/", 1)[0]
    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
        admin.execute(f"DROP DATABASE IF EXISTS {name}_floor")
        admin.execute(f"CREATE DATABASE {name}_floor")
    try:
        with tempfile.TemporaryDirectory(prefix="patron-bench-loyalty-") as home:
            env = {
                **os.environ,
                "PATRON_HOME": home,
                "PATRON_DATABASE_URL": f"{base_url}/{name}",
                "DJANGO_SETTINGS_MODULE": "patron.settings",
            }
            subprocess.run(
                [sys.executable, "-m", "patron", "migrate", "-v", "0"], env=env, check=True
            )
            shop = _child(env, "setup", str(arguments.orders), str(arguments.members))
            floor = commit_per_order_floor(f"{base_url}/{name}_floor", arguments.orders)
            earning: dict[str, float] = {}
            done = 0
            rounds = [(1, 1)] + [(workers, arguments.batch) for workers in arguments.workers]
            for workers, batch_size in rounds:
                # Each round earns on orders not yet awarded: every award is a first one.
                # The one-by-one round gets a tenth of the orders (it is the slow path).
                size = (
                    arguments.orders // 10
                    if batch_size == 1
                    else ((arguments.orders - arguments.orders // 10) // len(arguments.workers))
                )
                share = size // workers
                began = time.perf_counter()
                processes = [
                    subprocess.Popen(
                        [
                            sys.executable,
                            __file__,
                            "--child",
                            "earn",
                            str(done + index * share),
                            str(done + (index + 1) * share),
                            str(batch_size),
                        ],
                        env=env,
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                    for index in range(workers)
                ]
                results = [
                    json.loads(process.communicate()[0].splitlines()[-1]) for process in processes
                ]
                wall = time.perf_counter() - began
                earned = sum(result["orders"] for result in results)
                # Rate over the slowest worker's own loop (imports and start-up left out).
                loop = max(result["seconds"] for result in results)
                label = "one_by_one" if batch_size == 1 else f"batch_{workers}_workers"
                earning[f"{label}_orders_per_s"] = earned / loop
                earning[f"{label}_wall_s"] = wall
                done += share * workers

            from http_load import patron_server

            with patron_server(env) as base:
                ids = ",".join(shop["member_ids"])
                for kind in ("read", "redeem"):
                    # Warm-up, not measured: the workers import the API and open their database
                    # connections on their first requests.
                    _child(env, "load", base, shop["token"], ids, kind, "20", "2")
                latency = {
                    kind: _child(
                        env,
                        "load",
                        base,
                        shop["token"],
                        ids,
                        kind,
                        str(arguments.rate),
                        str(arguments.seconds),
                    )
                    for kind in ("read", "redeem")
                }
    finally:
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.execute(f"DROP DATABASE IF EXISTS {name}_floor WITH (FORCE)")

    best = max(value for key, value in earning.items() if key.endswith("orders_per_s"))
    redeem, read = latency["redeem"], latency["read"]
    print(f"PostgreSQL, {arguments.orders:,} paid orders, load average {os.getloadavg()[0]:.1f}")
    print(f"  enrolment: {shop['enrol_per_s']:,.0f} members/s")
    print(f"  floor (one INSERT + COMMIT per order): {floor:,.0f} orders/s")
    rate = earning["one_by_one_orders_per_s"]
    print(f"  earning one order per transaction: {rate:,.0f} orders/s ({rate / floor:.2f}x floor)")
    for workers in arguments.workers:
        rate = earning[f"batch_{workers}_workers_orders_per_s"]
        print(
            f"  earning in batches of {arguments.batch}, {workers} worker(s): {rate:,.0f} "
            f"orders/s ({rate / floor:.2f}x floor)"
        )
    verdict = "PASS" if best >= EARNING_GOAL else "FAIL"
    print(f"  goal >= {EARNING_GOAL:,.0f} orders/s: {verdict} ({best:,.0f})")
    print(
        f"HTTP at {arguments.rate:.0f} requests/s for {arguments.seconds:.0f} s "
        "(Granian, 2 workers x 4 threads):"
    )
    for kind, figures in (("read member", read), ("redeem 1 point", redeem)):
        print(
            f"  {kind}: p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms, "
            f"max {figures['max_ms']:.1f} ms, {figures['failures']} failures of "
            f"{figures['requests']}"
        )
    verdict = "PASS" if redeem["p99_ms"] < P99_GOAL_MS and not redeem["failures"] else "FAIL"
    print(
        f"  goal redemption p99 < {P99_GOAL_MS:.0f} ms: {verdict} "
        f"(p99 {redeem['p99_ms'] / max(read['p99_ms'], 1e-9):.2f}x the read's)"
    )
    print(
        json.dumps(
            {
                "orders": arguments.orders,
                "floor_orders_per_s": round(floor),
                **{key: round(value, 2) for key, value in earning.items()},
                "read": {key: value for key, value in read.items() if key != "first_failures"},
                "redeem": redeem,
                "load_average": [round(value, 1) for value in os.getloadavg()],
            }
        )
    )


def _run_child(arguments: list[str]) -> None:
    command, *rest = arguments
    if command in ("setup", "earn"):
        _django({})
    if command == "setup":
        result: Any = setup_shop(int(rest[0]), int(rest[1]))
    elif command == "earn":
        result = earn(int(rest[0]), int(rest[1]), int(rest[2]))
    elif command == "load":
        base, token, ids, kind, rate, seconds = rest
        result = load(base, token, ids.split(","), kind, float(rate), float(seconds))
    else:
        raise SystemExit(f"unknown child command {command!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
