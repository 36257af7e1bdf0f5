"""Benchmark: import N generated order lines, next to the raw bulk-load rate of the same rows.

    .venv/bin/python bench/ingest.py [--lines 1000000] [--database sqlite|postgres|both]

For each database it generates a CSV of order lines (order_id, customer_id, ordered_at,
product_id, quantity, unit_price), then measures in the same run:

- raw: the same rows loaded into a bare table with no index or constraint (SQLite:
  ``executemany`` of the already-parsed rows in one transaction; PostgreSQL: ``COPY`` of the
  CSV file), the fastest a database takes these rows;
- import: ``patron import orders FILE`` on an empty store (parse, validate, resolve and create
  customers and products, orders, lines, totals), then the same file again (all unchanged).

It prints rows per second and the ratio import / raw (the goal is at least 0.25), the CPU
seconds of the importing process (PostgreSQL's own work is not in it), and the load
average, since on a shared machine both rates move with it. Raw is kept as the plain
bulk load it is: it writes one table with no index, key or check, where the import writes
five (customers, identities, products, orders, lines) with their keys, eight indexes and
the foreign keys checked, and parses and validates every field on the way.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

POSTGRES_SERVER = os.environ.get(
    "PATRON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
COLUMNS = ["order_id", "customer_id", "ordered_at", "product_id", "quantity", "unit_price"]


def generate(path: Path, lines: int, seed: int = 7) -> None:
    """Order lines of ~lines/2.5 orders by lines/20 customers over 3,000 products."""
    rng = np.random.default_rng(seed)
    orders = max(1, int(lines / 2.5))
    order_of_line = np.sort(rng.integers(0, orders, size=lines))
    customer_of_order = rng.integers(0, max(1, lines // 20), size=orders)
    start = np.datetime64("2024-01-01T00:00:00")
    seconds = rng.integers(0, 2 * 365 * 86400, size=orders).astype("timedelta64[s]")
    time_of_order = (start + seconds).astype(str)
    products = rng.integers(0, 3000, size=lines)
    quantities = rng.integers(1, 5, size=lines)
    prices = np.round(rng.gamma(2.0, 40.0, size=lines) + 1, 2)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for index in range(lines):
            order = order_of_line[index]
            writer.writerow(
                [
                    f"O{order:08d}",
                    f"C{customer_of_order[order]:07d}",
                    time_of_order[order].replace("T", " "),
                    f"P{products[index]:05d}",
                    quantities[index],
                    f"{prices[index]:.2f}",
                ]
            )


def raw_sqlite(path: Path, database: Path) -> float:
    import sqlite3

    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = list(reader)
    connection = sqlite3.connect(database)
    connection.execute(
        "CREATE TABLE raw_lines (order_id TEXT, customer_id TEXT, ordered_at TEXT, "
        "product_id TEXT, quantity INTEGER, unit_price NUMERIC)"
    )
    started = time.perf_counter()
    with connection:
        connection.executemany("INSERT INTO raw_lines VALUES (?, ?, ?, ?, ?, ?)", rows)
    elapsed = time.perf_counter() - started
    connection.close()
    return len(rows) / elapsed


def raw_postgres(path: Path, url: str) -> float:
    import psycopg

    with psycopg.connect(url) as connection:
        connection.execute(
            "CREATE TABLE raw_lines (order_id TEXT, customer_id TEXT, ordered_at TIMESTAMPTZ, "
            "product_id TEXT, quantity INTEGER, unit_price NUMERIC(18, 4))"
        )
        data = path.read_bytes()
        started = time.perf_counter()
        copy_sql = "COPY raw_lines FROM STDIN (FORMAT csv, HEADER true)"
        with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            copy.write(data)
        connection.commit()
        elapsed = time.perf_counter() - started
        count = connection.execute("SELECT count(*) FROM raw_lines").fetchone()
        assert count is not None
        return int(count[0]) / elapsed


def run_import(path: Path, env: dict[str, str]) -> dict[str, float]:
    """Time ``patron import`` in a fresh process (migrations applied beforehand)."""
    patron = [sys.executable, "-m", "patron"]
    subprocess.run([*patron, "migrate", "-v", "0"], env=env, check=True)
    timings: dict[str, float] = {}
    for label in ("first", "again"):
        code = (
            "import time, pathlib, django; django.setup();"
            "from patron.ingest.services import import_file, ImportOptions, RecordKind;"
            "t=time.perf_counter();"
            f"s=import_file(RecordKind.ORDERS, pathlib.Path({str(path)!r}),"
            " options=ImportOptions());"
            "print(time.perf_counter()-t, s.inserted, s.unchanged, s.rejected)"
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, "DJANGO_SETTINGS_MODULE": "patron.settings"},
            check=True,
            capture_output=True,
            text=True,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds, inserted, unchanged, rejected = result.stdout.split()
        timings[label] = float(seconds)
        # CPU of the importing process (all its threads, start-up included): on a shared
        # machine it moves much less with the load than the elapsed time does.
        timings[f"{label}_cpu"] = (after.ru_utime + after.ru_stime) - (
            before.ru_utime + before.ru_stime
        )
        timings[f"{label}_inserted"] = int(inserted)
        timings[f"{label}_unchanged"] = int(unchanged)
        timings[f"{label}_rejected"] = int(rejected)
    return timings


def bench(database: str, lines: int, workdir: Path) -> dict[str, object]:
    path = workdir / "lines.csv"
    if not path.exists():
        generate(path, lines)
    home = workdir / f"home-{database}"
    home.mkdir(exist_ok=True)
    env = {**os.environ, "PATRON_HOME": str(home)}
    if database == "sqlite":
        raw_rate = raw_sqlite(path, workdir / "raw.sqlite3")
        env["PATRON_DATABASE_URL"] = ""
    else:
        import psycopg

        name = f"patron_bench_{os.getpid()}"
        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.execute(f"CREATE DATABASE {name}")
            admin.execute(f"DROP DATABASE IF EXISTS {name}_raw")
            admin.execute(f"CREATE DATABASE {name}_raw")
        base = POSTGRES_SERVER.rsplit("/", 1)[0]
        try:
            raw_rate = raw_postgres(path, f"{base}/{name}_raw")
            env["PATRON_DATABASE_URL"] = f"{base}/{name}"
            timings = run_import(path, env)
        finally:
            with psycopg.connect(POSTGRES_SERVER, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                admin.execute(f"DROP DATABASE IF EXISTS {name}_raw WITH (FORCE)")
        return _report(database, lines, raw_rate, timings)
    timings = run_import(path, env)
    return _report(database, lines, raw_rate, timings)


def _report(
    database: str, lines: int, raw_rate: float, timings: dict[str, float]
) -> dict[str, object]:
    import_rate = lines / timings["first"]
    return {
        "database": database,
        "lines": lines,
        "raw_rows_per_s": round(raw_rate),
        "import_rows_per_s": round(import_rate),
        "import_seconds": round(timings["first"], 2),
        "reimport_seconds": round(timings["again"], 2),
        "reimport_rows_per_s": round(lines / timings["again"]),
        "import_process_cpu_seconds": round(timings["first_cpu"], 2),
        "ratio_import_to_raw": round(import_rate / raw_rate, 3),
        "inserted": timings["first_inserted"],
        "reimport_unchanged": timings["again_unchanged"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    arguments = parser.parse_args()
    databases = ["sqlite", "postgres"] if arguments.database == "both" else [arguments.database]
    with tempfile.TemporaryDirectory(prefix="patron-bench-") as folder:
        for database in databases:
            result = bench(database, arguments.lines, Path(folder))
            result["load_average"] = [round(value, 1) for value in os.getloadavg()]
            print(json.dumps(result))
            print(
                f"{database}: import {result['import_rows_per_s']:,} rows/s vs raw "
                f"{result['raw_rows_per_s']:,} rows/s -> ratio {result['ratio_import_to_raw']} "
                f"(goal >= 0.25); re-import {result['reimport_seconds']} s, all unchanged: "
                f"{result['reimport_unchanged'] == arguments.lines}",
                flush=True,
            )


if __name__ == "__main__":
    main()
