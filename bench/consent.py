"""Benchmark: how fast consent is recorded and read, one customer and in bulk.

    .venv/bin/python bench/consent.py [--customers 200000] [--decisions 2000] [--postgres]

On a fresh store (a SQLite file in a temporary ``PATRON_HOME``, or with ``--postgres`` a fresh
database on ``PATRON_TEST_POSTGRES_URL``, dropped at the end): ``--customers`` customers, of
whom a tenth withdrew personalisation and three in ten granted marketing by e-mail (events and
states written in bulk), then:

1. ``record_consent`` one decision at a time (``--decisions``: event, state, audit event,
   one transaction each);
2. ``may(customer, purpose, channel)`` for 2,000 customers, and with ``at=`` (from the events);
3. the bulk forms a campaign or a training uses: ``consent_set`` (default and exceptions)
   and ``consenting(Customer.objects.all(), ...).count()`` (a filter in SQL).

Prints the timings and one JSON line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
from typing import Any

POSTGRES_SERVER = os.environ.get(
    "PATRON_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "patron_bench_consent"


def _setup(postgres: bool) -> None:
    home = tempfile.mkdtemp(prefix="patron-bench-consent-")
    os.environ["PATRON_HOME"] = home
    if postgres:
        import psycopg

        with psycopg.connect(POSTGRES_SERVER, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
            connection.execute(f"CREATE DATABASE {DATABASE}")
        os.environ["PATRON_DATABASE_URL"] = POSTGRES_SERVER.rsplit("/", 1)[0] + f"/{DATABASE}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "patron.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _drop(postgres: bool) -> None:
    if not postgres:
        return
    from django.db import connections

    connections.close_all()
    import psycopg

    with psycopg.connect(POSTGRES_SERVER, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE}")


def _fill(customers: int) -> list[int]:
    from django.utils import timezone

    from patron.customers.models import Customer
    from patron.privacy.models import ConsentEvent, ConsentState

    batch = 5_000
    for start in range(0, customers, batch):
        Customer.objects.bulk_create(
            Customer(external_id=f"B-{number:07d}")
            for number in range(start, min(start + batch, customers))
        )
    ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    now = timezone.now() - dt.timedelta(days=1)
    decisions = [
        (pk, "personalisation", "", False) for index, pk in enumerate(ids) if index % 10 == 0
    ] + [(pk, "marketing", "email", True) for index, pk in enumerate(ids) if index % 10 < 3]
    for start in range(0, len(decisions), batch):
        chunk = decisions[start : start + batch]
        events = ConsentEvent.objects.bulk_create(
            ConsentEvent(
                customer_id=pk,
                purpose=purpose,
                channel=channel,
                is_granted=granted,
                occurred_at=now,
                source="import",
                wording_version="v1" if granted else "",
            )
            for pk, purpose, channel, granted in chunk
        )
        ConsentState.objects.bulk_create(
            ConsentState(
                customer_id=event.customer_id,
                purpose=event.purpose,
                channel=event.channel,
                is_granted=event.is_granted,
                decided_at=now,
                event=event,
            )
            for event in events
        )
    return ids


def _timed(function: Any, repeat: int = 1) -> tuple[float, Any]:
    began = time.perf_counter()
    result = None
    for _ in range(repeat):
        result = function()
    return (time.perf_counter() - began) / repeat, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--decisions", type=int, default=2_000)
    parser.add_argument("--postgres", action="store_true")
    options = parser.parse_args(argv)
    _setup(options.postgres)
    try:
        figures = _run(options.customers, options.decisions)
    finally:
        _drop(options.postgres)
    figures["database"] = "postgresql" if options.postgres else "sqlite"
    print(json.dumps(figures))
    return 0


def _run(customers: int, decisions: int) -> dict[str, Any]:
    from django.utils import timezone

    from patron.customers.models import Customer
    from patron.privacy.consent import consent_set, consenting, may, record_consent

    began = time.perf_counter()
    ids = _fill(customers)
    filled = time.perf_counter() - began
    print(f"store: {customers:,} customers with their decisions in {filled:.1f} s")

    targets = list(Customer.objects.filter(pk__in=ids[-decisions:]))
    began = time.perf_counter()
    for number, customer in enumerate(targets):
        record_consent(
            customer,
            "marketing",
            "sms",
            is_granted=True,
            source="checkout",
            source_event_id=f"bench-{number}",
            wording_version="v1",
        )
    record_seconds = time.perf_counter() - began
    print(
        f"record_consent: {len(targets) / record_seconds:,.0f} decisions/s "
        f"({1000 * record_seconds / len(targets):.2f} ms each)"
    )

    sample = ids[:: max(1, len(ids) // 2_000)][:2_000]
    may_seconds, _ = _timed(lambda: [may(pk, "marketing", "email") for pk in sample])
    moment = timezone.now()
    may_at_seconds, _ = _timed(lambda: [may(pk, "personalisation", at=moment) for pk in sample])
    print(
        f"may: {1e6 * may_seconds / len(sample):.0f} µs per customer; "
        f"with at=: {1e6 * may_at_seconds / len(sample):.0f} µs"
    )

    set_seconds, profiling = _timed(lambda: consent_set("personalisation"), repeat=5)
    allowed_seconds, allowed = _timed(lambda: profiling.allowed(ids), repeat=3)
    count_seconds, count = _timed(
        lambda: consenting(Customer.objects.all(), "marketing", "email").count(), repeat=3
    )
    count_at_seconds, count_at = _timed(
        lambda: consenting(Customer.objects.all(), "personalisation", at=moment).count()
    )
    print(
        f"consent_set(personalisation): {1000 * set_seconds:.1f} ms "
        f"({len(profiling.exceptions):,} exceptions); allowed() over {len(ids):,} ids "
        f"{1000 * allowed_seconds:.1f} ms ({len(allowed):,} may)"
    )
    print(
        f"consenting(..., marketing, email).count(): {1000 * count_seconds:.1f} ms ({count:,}); "
        f"personalisation at=now: {1000 * count_at_seconds:.1f} ms ({count_at:,})"
    )
    return {
        "customers": customers,
        "record_per_second": round(len(targets) / record_seconds),
        "may_us": round(1e6 * may_seconds / len(sample)),
        "may_at_us": round(1e6 * may_at_seconds / len(sample)),
        "consent_set_ms": round(1000 * set_seconds, 1),
        "allowed_ms": round(1000 * allowed_seconds, 1),
        "consenting_count_ms": round(1000 * count_seconds, 1),
        "consenting_at_count_ms": round(1000 * count_at_seconds, 1),
        "may_count": count,
    }


if __name__ == "__main__":
    sys.exit(main())
