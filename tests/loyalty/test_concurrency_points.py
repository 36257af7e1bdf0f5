"""Concurrent redemptions from one balance: many threads, each with its own database
connection, released together by a barrier, round after round. Never more successes than the
balance allows; every loser gets the insufficient-points error; the ledger stays consistent.

PostgreSQL: 64 threads x 100 rounds (row lock on the balance, ``SELECT ... FOR UPDATE``).
As many threads also deliver one paid order all at once (under two keys), 5 rounds (new
threads and connections each round, so kept short): it earns once and every delivery gets
that transaction.

SQLite: 16 threads x 100 rounds on a file copy of the test database, as shops run it; every
``atomic()`` opens with ``BEGIN IMMEDIATE`` (settings), so writers queue for the database lock
(waiting up to the connection ``timeout``) and the balance check cannot race.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.db import DEFAULT_DB_ALIAS, OperationalError, connection, connections
from django.utils import timezone

from patron.loyalty.errors import InsufficientPointsError
from patron.loyalty.ledger import adjust_points, award_points_for_order, redeem_points
from patron.loyalty.members import enrol_member
from patron.loyalty.models import LedgerTransaction, Member, Programme
from patron.loyalty.programme import get_programme
from tests.loyalty.points_helpers import assert_ledger_consistent, make_customer, make_order

ON_POSTGRES = connection.vendor == "postgresql"
THREADS = 64 if ON_POSTGRES else 16
ROUNDS = 100
COST = 10


@dataclass
class Round:
    member: Member | None = None
    successes: list[int] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    surprises: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def allowed_successes(round_number: int) -> int:
    """How many redemptions the round's balance pays for: 1 to THREADS - 1, varying."""
    return 1 + (round_number * 37) % (THREADS - 1)


def connect_patiently(seconds: float = 120) -> None:
    """Open this thread's connection before the rounds start, waiting while a shared test
    server has no free connection slot (other suites' threads), so that a round measures
    the ledger, not the server's connection limit."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            connection.ensure_connection()
            return
        except OperationalError as error:
            if "too many clients" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def run_rounds() -> None:
    """The rounds, run from a coordinator thread: every connection here is a thread's own."""
    programme = get_programme()
    current = Round()
    start = threading.Barrier(THREADS + 1)
    done = threading.Barrier(THREADS + 1)
    round_number = [0]

    def worker(index: int) -> None:
        try:
            connect_patiently()
            for _ in range(ROUNDS):
                start.wait()
                state, number = current, round_number[0]
                assert state.member is not None
                try:
                    entry = redeem_points(
                        state.member, COST, idempotency_key=f"round{number}:thread{index}"
                    )
                except InsufficientPointsError as error:
                    with state.lock:
                        state.refusals.append(str(error))
                except BaseException as error:  # noqa: BLE001 - reported by the coordinator
                    with state.lock:
                        state.surprises.append(error)
                else:
                    with state.lock:
                        state.successes.append(entry.pk)
                done.wait()
        except threading.BrokenBarrierError:
            pass  # the coordinator failed and aborted the round; its error is reported
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        for number in range(ROUNDS):
            allowed = allowed_successes(number)
            member = enrol_member(make_customer(), programme=programme)
            # A balance for `allowed` redemptions and a remainder too small for one more.
            adjust_points(member, allowed * COST + COST - 1, reason="test", actor="user:qa")
            current.member, current.successes, current.refusals, current.surprises = (
                member,
                [],
                [],
                [],
            )
            round_number[0] = number
            start.wait(timeout=120)
            done.wait(timeout=120)

            assert current.surprises == [], current.surprises
            assert len(current.successes) == allowed, number
            assert len(current.refusals) == THREADS - allowed
            assert all(
                message.startswith(f"insufficient points: {COST} requested but only")
                for message in current.refusals
            )
            balances = assert_ledger_consistent(member)
            assert balances.available == COST - 1
            assert balances.redeemed == allowed * COST
            assert LedgerTransaction.objects.filter(member=member, kind="redeem").count() == allowed
    finally:
        start.abort()
        done.abort()
        for thread in threads:
            thread.join(timeout=60)
        connection.close()


def run_in_thread(function: Callable[[], None]) -> None:
    """Run ``function`` in a new thread (its own connection) and re-raise what it raised."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            function()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@contextmanager
def sqlite_file_copy_of_the_test_database(folder: Path) -> Iterator[None]:
    """Point new connections at a file copy of the (in-memory) SQLite test database.

    Django's in-memory test database is a shared-cache database, whose table locks fail at
    once ("database table is locked") instead of waiting. Shops run SQLite from a file, where
    ``BEGIN IMMEDIATE`` waits up to the configured timeout: test that, with the production
    connection options (WAL, IMMEDIATE, timeout) from settings.
    """
    path = folder / "concurrency.sqlite3"
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)
    # The copy starts in rollback-journal mode; switching to WAL needs the file to itself,
    # so done here once: otherwise the workers' own `PRAGMA journal_mode=WAL` (settings'
    # init_command) race to switch it and one fails at once with "database is locked".
    target.execute("PRAGMA journal_mode=WAL")
    target.close()
    database = connections.settings[DEFAULT_DB_ALIAS]
    test_name = database["NAME"]
    database["NAME"] = str(path)
    try:
        yield
    finally:
        database["NAME"] = test_name


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_concurrent_redemptions_never_spend_more_than_the_balance(tmp_path: Path) -> None:
    if ON_POSTGRES:
        run_in_thread(run_rounds)
        return
    assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert connection.settings_dict["OPTIONS"]["timeout"] >= 5
    with sqlite_file_copy_of_the_test_database(tmp_path):
        run_in_thread(run_rounds)


def deliver_one_order_many_times_at_once(programme: Programme) -> None:
    """Every thread delivers the same paid order at the same moment, half under one key and
    half under another: one earn, and every delivery gets that transaction."""
    order = make_order(make_customer(), 100, timezone.now())
    start = threading.Barrier(THREADS)
    results: list[int] = []
    surprises: list[BaseException] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        try:
            connect_patiently()
            start.wait(timeout=120)
            entry = award_points_for_order(
                order, idempotency_key=f"paid:{order.pk}:{index % 2}", programme=programme
            )
            with lock:
                results.append(entry.pk)
        except BaseException as error:  # noqa: BLE001 - reported below
            with lock:
                surprises.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert surprises == [], surprises
    assert len(results) == THREADS
    assert len(set(results)) == 1
    earns = LedgerTransaction.objects.filter(order=order, kind="earn")
    assert earns.count() == 1
    assert assert_ledger_consistent(earns.get().member).pending == 100


def deliver_orders_many_times_at_once(rounds: int = 5) -> None:
    programme = get_programme()
    for _ in range(rounds):
        deliver_one_order_many_times_at_once(programme)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_simultaneous_deliveries_of_one_order_earn_once(tmp_path: Path) -> None:
    if ON_POSTGRES:
        run_in_thread(deliver_orders_many_times_at_once)
        return
    with sqlite_file_copy_of_the_test_database(tmp_path):
        run_in_thread(deliver_orders_many_times_at_once)
