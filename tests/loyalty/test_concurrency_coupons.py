"""Concurrency: many threads redeeming one coupon (or the last reward in stock) at the same
moment never pass its limits, and every loser gets the refusal's code and message.

Each worker is a real thread with its own database connection (closed when the thread ends),
kept for all rounds. A barrier releases the workers together in each round; the main thread
then counts what was written. 64 workers on PostgreSQL, 16 on SQLite (on a file copy of the
test database, where the settings' ``BEGIN IMMEDIATE`` and busy timeout make writers queue for
the one database lock).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from patron.customers.models import Customer
from patron.loyalty.coupons import (
    create_coupon_template,
    create_shared_coupon,
    generate_coupon_codes,
    redeem_coupon,
)
from patron.loyalty.errors import LoyaltyError
from patron.loyalty.ledger import adjust_points
from patron.loyalty.members import enrol_member
from patron.loyalty.models import Coupon, CouponRedemption, CouponTemplate, Reward, RewardRedemption
from patron.loyalty.rewards import create_reward, redeem_reward
from patron.loyalty.selectors import member_balances
from tests.loyalty.test_concurrency_points import (
    run_in_thread,
    sqlite_file_copy_of_the_test_database,
)

ROUNDS = 100
#: Rounds of the per-customer and the reward-stock races (fewer, to keep the suite short).
SHORT_ROUNDS = 20
#: Seconds a barrier waits before the test fails instead of hanging on a stuck worker.
BARRIER_TIMEOUT = 120


def workers() -> int:
    return 64 if connection.vendor == "postgresql" else 16


Race = Callable[[Callable[[], None]], None]


@pytest.fixture
def race(tmp_path: Path) -> Race:
    """Run a test body where its threads can wait for each other's locks: on PostgreSQL as it
    is; on SQLite in a thread of its own on a file copy of the in-memory test database (whose
    shared cache answers "table is locked" at once), with the production connection options
    (BEGIN IMMEDIATE, busy timeout). The same approach as the points concurrency test."""

    def run(body: Callable[[], None]) -> None:
        if connection.vendor == "postgresql":
            body()
            return
        assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        with sqlite_file_copy_of_the_test_database(tmp_path):
            run_in_thread(body)

    return run


def run_rounds(
    threads: int,
    prepare: Callable[[int], str],
    attempt: Callable[[int, int, str], None],
    rounds: int = ROUNDS,
) -> list[list[str]]:
    """Run ``rounds`` rounds: the main thread makes the round's code with ``prepare(round)``,
    then every worker calls ``attempt(round, worker, code)`` at once. Returns per round each
    worker's outcome: ``redeemed`` or the refusal ``code: message`` (coupon or reward refusals,
    a short balance ...; anything else is ``error: ...``)."""
    start = threading.Barrier(threads + 1, timeout=BARRIER_TIMEOUT)
    done = threading.Barrier(threads + 1, timeout=BARRIER_TIMEOUT)
    outcomes = [[""] * threads for _ in range(rounds)]
    codes = [""] * rounds

    def work(index: int) -> None:
        try:
            for round_number in range(rounds):
                start.wait()
                try:
                    attempt(round_number, index, codes[round_number])
                    outcome = "redeemed"
                except LoyaltyError as refusal:
                    outcome = f"{refusal.code}: {refusal}"
                except Exception as error:  # noqa: BLE001 - any other failure is reported by the test
                    outcome = f"error: {error!r}"
                outcomes[round_number][index] = outcome
                done.wait()
        finally:
            connection.close()

    pool = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for thread in pool:
        thread.start()
    try:
        for round_number in range(rounds):
            codes[round_number] = prepare(round_number)
            start.wait()
            done.wait()
    except BaseException:
        # Let the workers out of the barriers so that they close their connections and end.
        start.abort()
        done.abort()
        raise
    finally:
        for thread in pool:
            thread.join(timeout=BARRIER_TIMEOUT)
    return outcomes


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_single_use_coupon_is_redeemed_once_per_round(race: Race) -> None:
    def body() -> None:
        threads = workers()
        customer = Customer.objects.create(external_id="racer")
        template = create_coupon_template(name="Once", kind="fixed_amount", value=Decimal(5))

        def prepare(round_number: int) -> str:
            return generate_coupon_codes(template, customers=[customer])[0]

        def attempt(round_number: int, index: int, code: str) -> None:
            redeem_coupon(code, customer, f"order-{round_number}-{index}", Decimal(50))

        outcomes = run_rounds(threads, prepare, attempt)

        for round_number, round_outcomes in enumerate(outcomes):
            winners = [outcome for outcome in round_outcomes if outcome == "redeemed"]
            losers = [outcome for outcome in round_outcomes if outcome != "redeemed"]
            assert len(winners) == 1, (round_number, round_outcomes)
            assert all(outcome.startswith("total_limit_reached: coupon ") for outcome in losers), (
                round_number,
                losers,
            )
        # Nothing left behind by the refused attempts: one use per code, counters at one.
        assert CouponRedemption.objects.count() == ROUNDS
        assert list(Coupon.objects.values_list("times_used", flat=True).distinct()) == [1]
        assert CouponTemplate.objects.get().times_used == ROUNDS

    race(body)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_customer_racing_a_shared_code_stays_within_the_per_customer_limit(race: Race) -> None:
    def body() -> None:
        threads = workers()
        customer = Customer.objects.create(external_id="racer")
        templates: list[CouponTemplate] = []

        def prepare(round_number: int) -> str:
            template = create_coupon_template(
                name=f"Twice {round_number}",
                kind="percentage",
                value=Decimal(10),
                per_customer_use_limit=2,
                total_use_limit=3,
            )
            templates.append(template)
            return create_shared_coupon(template, f"TWICE-{round_number}").code

        def attempt(round_number: int, index: int, code: str) -> None:
            redeem_coupon(code, customer, f"order-{round_number}-{index}", Decimal(50))

        outcomes = run_rounds(threads, prepare, attempt, SHORT_ROUNDS)

        for round_number, round_outcomes in enumerate(outcomes):
            losers = [outcome for outcome in round_outcomes if outcome != "redeemed"]
            assert len(round_outcomes) - len(losers) == 2, (round_number, round_outcomes)
            assert all(outcome.startswith("customer_limit_reached: ") for outcome in losers), losers
        counts = dict(
            CouponTemplate.objects.filter(pk__in=[t.pk for t in templates]).values_list(
                "pk", "times_used"
            )
        )
        assert set(counts.values()) == {2}
        assert CouponRedemption.objects.count() == 2 * SHORT_ROUNDS

    race(body)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_members_racing_for_the_last_reward_in_stock_get_one_and_pay_once(race: Race) -> None:
    def body() -> None:
        threads = workers()
        members = []
        for index in range(threads):
            member = enrol_member(Customer.objects.create(external_id=f"member-{index}"))
            adjust_points(member, 1_000, reason="race budget", actor="user:test")
            members.append(member)
        rewards: list[Reward] = []

        def prepare(round_number: int) -> str:
            rewards.append(
                create_reward(name=f"Last mug {round_number}", kind="gift", points_cost=7, stock=1)
            )
            return str(rewards[-1].pk)

        def attempt(round_number: int, index: int, reward_id: str) -> None:
            redeem_reward(
                members[index],
                Reward.objects.get(pk=int(reward_id)),
                idempotency_key=f"race-{round_number}-{index}",
            )

        outcomes = run_rounds(threads, prepare, attempt, SHORT_ROUNDS)

        for round_number, round_outcomes in enumerate(outcomes):
            losers = [outcome for outcome in round_outcomes if outcome != "redeemed"]
            assert len(round_outcomes) - len(losers) == 1, (round_number, round_outcomes)
            assert all(outcome.startswith("out_of_stock: reward ") for outcome in losers), losers
        assert set(Reward.objects.values_list("stock", flat=True)) == {0}
        assert RewardRedemption.objects.count() == SHORT_ROUNDS
        # Only the winners paid: 7 points per round in all.
        spent = sum(1_000 - member_balances(member).available for member in members)
        assert spent == 7 * SHORT_ROUNDS

    race(body)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_non_stackable_codes_racing_on_one_order_give_one_discount(race: Race) -> None:
    def body() -> None:
        threads = workers()
        customer = Customer.objects.create(external_id="stacker")
        solo_a = create_coupon_template(name="Solo A", kind="fixed_amount", value=Decimal(5))
        solo_b = create_coupon_template(name="Solo B", kind="percentage", value=Decimal(5))

        def prepare(round_number: int) -> str:
            create_shared_coupon(solo_a, f"SOLO-A-{round_number}")
            create_shared_coupon(solo_b, f"SOLO-B-{round_number}")
            return str(round_number)

        def attempt(round_number: int, index: int, _round: str) -> None:
            # Half the threads send code A, half code B, all for the same order; the same code
            # sent again for the order returns its redemption (idempotent), the other is refused.
            code = f"SOLO-{'AB'[index % 2]}-{round_number}"
            redeem_coupon(code, customer, f"order-{round_number}", Decimal(50))

        outcomes = run_rounds(threads, prepare, attempt, SHORT_ROUNDS)

        for round_number, round_outcomes in enumerate(outcomes):
            codes_on_order = list(
                CouponRedemption.objects.filter(order_id=f"order-{round_number}").values_list(
                    "coupon__code", flat=True
                )
            )
            assert len(codes_on_order) == 1, (round_number, codes_on_order)
            winner = codes_on_order[0][len("SOLO-")]
            for index, outcome in enumerate(round_outcomes):
                if "AB"[index % 2] == winner:
                    assert outcome == "redeemed", (round_number, outcome)
                else:
                    assert outcome.startswith("not_stackable: "), (round_number, outcome)
        assert sum(CouponTemplate.objects.values_list("times_used", flat=True)) == SHORT_ROUNDS

    race(body)
