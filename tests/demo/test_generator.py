"""The demo world: reproducible, well-formed, and drawn from the process it claims."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal

import polars as pl

from patron.customers.identity import normalize_email, normalize_phone
from patron.demo.generator import (
    CHANNELS,
    CUSTOMER_COLUMNS,
    EVENT_COLUMNS,
    EVENT_TYPES,
    ORDER_COLUMNS,
    ORDER_STATUSES,
    PRODUCT_COLUMNS,
    DemoConfig,
    DemoWorld,
    generate_world,
)
from tests.demo.conftest import AS_OF

FRAMES = ("customers", "products", "orders", "events", "truth_customers")


def _within(value: float, expected: float, standard_error: float, sigmas: float = 4.0) -> bool:
    return abs(value - expected) <= sigmas * standard_error


def _orders(world: DemoWorld) -> pl.DataFrame:
    """One row per order: its account, person, time, status and total."""
    person_of_account = pl.concat(
        [
            world.truth_customers.select("customer_id", person=pl.col("customer_id")),
            world.truth_customers.filter(pl.col("duplicate_customer_id").is_not_null()).select(
                customer_id=pl.col("duplicate_customer_id"), person=pl.col("customer_id")
            ),
        ]
    )
    return (
        world.orders.group_by("order_id")
        .agg(
            pl.col("customer_id").first(),
            pl.col("ordered_at").first(),
            pl.col("status").first(),
            (pl.col("quantity") * pl.col("unit_price").cast(pl.Float64)).sum().alias("subtotal"),
            pl.col("discount").first().cast(pl.Float64),
            pl.col("refund_amount").first().cast(pl.Float64),
        )
        .with_columns(total=pl.col("subtotal") - pl.col("discount"))
        .join(person_of_account, on="customer_id")
    )


def test_the_same_seed_gives_the_same_world(small_world: DemoWorld) -> None:
    # Given the config of a world already generated
    # When it is generated again
    again = generate_world(small_world.config)

    # Then every frame is identical
    for name in FRAMES:
        assert getattr(again, name).equals(getattr(small_world, name)), name
    assert again.truth == small_world.truth


def test_another_seed_gives_another_world(small_world: DemoWorld) -> None:
    # When the same config is generated with another seed
    other = generate_world(DemoConfig(customers=300, seed=2, as_of=AS_OF))

    # Then the customers, orders and events differ
    assert not other.customers.equals(small_world.customers)
    assert not other.orders.equals(small_world.orders)
    assert not other.events.equals(small_world.events)


def test_the_frames_have_the_canonical_columns(small_world: DemoWorld) -> None:
    assert tuple(small_world.customers.columns) == CUSTOMER_COLUMNS
    assert tuple(small_world.products.columns) == PRODUCT_COLUMNS
    assert tuple(small_world.orders.columns) == ORDER_COLUMNS
    assert tuple(small_world.events.columns) == EVENT_COLUMNS


def test_the_catalogue_has_a_thousand_products_in_thirty_categories(
    small_world: DemoWorld,
) -> None:
    products = small_world.products

    assert products.height == 1000
    assert products["product_id"].n_unique() == 1000
    assert products["category"].n_unique() == 30
    assert products["category"].str.split(" > ").list.len().unique().to_list() == [2]
    assert products["price"].cast(pl.Float64).min() >= 9  # type: ignore[operator]
    assert products["currency"].unique().to_list() == ["CNY"]


def test_customers_have_valid_contacts_and_places(large_world: DemoWorld) -> None:
    customers = large_world.customers

    assert customers["customer_id"].n_unique() == customers.height
    assert set(customers["gender"].unique()) <= {"female", "male", "other", "unknown"}
    assert set(customers["signup_channel"].unique()) <= set(CHANNELS)
    # Every phone number and e-mail address, in whatever format, normalises.
    for phone in customers["phone"].drop_nulls():
        assert normalize_phone(phone).startswith("+861")
    for email in customers["email"].drop_nulls():
        normalize_email(email)
    formats = customers["phone"].drop_nulls()
    assert formats.str.contains(" ").any()
    assert formats.str.starts_with("+86").any()
    assert formats.str.contains(r"^1\d{10}$").any()
    # Mostly Chinese names, some English ones; real provinces and cities.
    chinese = customers["name"].str.contains(r"^[\u4e00-\u9fff]{2,3}$").mean()
    assert 0.85 < chinese < 0.97  # type: ignore[operator]
    assert {"广东", "浙江", "上海", "北京"} <= set(customers["province"].drop_nulls())
    assert {"深圳", "杭州", "成都"} <= set(customers["city"].drop_nulls())


def test_duplicate_accounts_share_exactly_one_identifier_with_their_person(
    large_world: DemoWorld,
) -> None:
    # Given the customers with their normalised identifiers
    customers = large_world.customers.with_columns(
        pl.col("phone").map_elements(normalize_phone, return_dtype=pl.String).alias("phone_key"),
        pl.col("email").map_elements(normalize_email, return_dtype=pl.String).alias("email_key"),
    )
    pairs = large_world.truth_customers.filter(pl.col("duplicate_customer_id").is_not_null())

    # Then there are some duplicates (1% of the people)
    assert pairs.height == 200
    assert large_world.duplicate_accounts == 200
    by_id = {row["customer_id"]: row for row in customers.iter_rows(named=True)}
    written_differently = 0
    for person_id, duplicate_id in pairs.select("customer_id", "duplicate_customer_id").rows():
        person, duplicate = by_id[person_id], by_id[duplicate_id]
        same_phone = duplicate["phone_key"] is not None and (
            duplicate["phone_key"] == person["phone_key"]
        )
        same_email = duplicate["email_key"] is not None and (
            duplicate["email_key"] == person["email_key"]
        )
        assert same_phone != same_email
        raw = "phone" if same_phone else "email"
        written_differently += duplicate[raw] != person[raw]
    assert written_differently == 200
    # And apart from them no two customers share a phone or an e-mail address.
    for key in ("phone_key", "email_key"):
        keys = customers[key].drop_nulls()
        assert (
            keys.len() - keys.n_unique()
            == pairs.filter(
                pl.col("duplicate_customer_id").is_in(
                    customers.filter(pl.col(key).is_not_null())["customer_id"].implode()
                )
            ).height
        )


def test_order_lines_are_valid(large_world: DemoWorld) -> None:
    orders = large_world.orders
    end = datetime(AS_OF.year, AS_OF.month, AS_OF.day)

    assert orders["quantity"].min() >= 1  # type: ignore[operator]
    assert orders["unit_price"].min() >= Decimal("0.01")  # type: ignore[operator]
    assert set(orders["status"].unique()) == set(ORDER_STATUSES)
    assert set(orders["channel"].unique()) == set(CHANNELS)
    assert orders["ordered_at"].min() >= end - timedelta(days=730)  # type: ignore[operator]
    assert orders["ordered_at"].max() < end  # type: ignore[operator]
    assert orders["product_id"].is_in(large_world.products["product_id"].implode()).all()
    # Order-level columns are the same on every line of an order.
    per_order = orders.group_by("order_id").agg(
        pl.col(name).n_unique().alias(name)
        for name in ("customer_id", "ordered_at", "status", "channel", "discount", "coupon_code")
    )
    assert per_order.drop("order_id").max().row(0) == (1, 1, 1, 1, 1, 1)
    assert per_order.height == orders["order_id"].n_unique()
    assert orders.group_by("order_id").len()["len"].max() <= 4  # type: ignore[operator]


def test_refunds_follow_their_order(large_world: DemoWorld) -> None:
    orders = _orders(large_world)
    end = datetime(AS_OF.year, AS_OF.month, AS_OF.day)
    refunded = orders.filter(pl.col("refund_amount").is_not_null()).join(
        large_world.orders.group_by("order_id").agg(pl.col("refunded_at").first()), on="order_id"
    )

    assert (orders["total"] > 0).all()
    assert (refunded["refunded_at"] > refunded["ordered_at"]).all()
    assert (refunded["refunded_at"] < end).all()
    returned = refunded.filter(pl.col("status") == "returned")
    partial = refunded.filter(pl.col("status") != "returned")
    assert returned.height == orders.filter(pl.col("status") == "returned").height > 0
    assert ((returned["refund_amount"] - returned["total"]).abs() < 0.005).all()
    assert partial.height > 0
    assert (partial["refund_amount"] < partial["total"]).all()
    assert set(partial["status"].unique()) == {"delivered"}
    # Discounts come with coupon codes on some orders, 11.11 ones among them.
    codes = large_world.orders["coupon_code"].drop_nulls()
    assert codes.str.starts_with("DOUBLE11-").any()
    assert codes.str.starts_with("618-").any()


def test_events_are_valid_funnels(large_world: DemoWorld) -> None:
    events = large_world.events
    end = datetime(AS_OF.year, AS_OF.month, AS_OF.day)

    assert events["event_id"].n_unique() == events.height
    assert set(events["event_type"].unique()) == set(EVENT_TYPES)
    assert events["device_id"].null_count() == 0
    assert events["occurred_at"].max() < end  # type: ignore[operator]
    assert (
        events["product_id"].drop_nulls().is_in(large_world.products["product_id"].implode()).all()
    )
    # Every order of the shop's own front ends within the kept year ends a funnel with its
    # purchase event, at the order's time.
    horizon = end - timedelta(days=large_world.config.event_days) + timedelta(hours=1)
    purchases = events.filter(pl.col("event_type") == "purchase").select(
        pl.col("properties").str.json_path_match("$.order_id").alias("order_id"),
        "customer_id",
        "occurred_at",
    )
    online = (
        _orders(large_world)
        .join(large_world.orders.group_by("order_id").agg(pl.col("channel").first()), on="order_id")
        .filter(pl.col("channel").is_in(["web", "app", "mini_program"]))
    )
    joined = purchases.join(online, on="order_id", how="inner", suffix="_order")
    assert joined.height == purchases.height
    assert (joined["occurred_at"] == joined["ordered_at"]).all()
    assert (joined["customer_id"] == joined["customer_id_order"]).all()
    recent = online.filter(pl.col("ordered_at") >= horizon)
    assert recent["order_id"].is_in(purchases["order_id"].implode()).all()
    assert events["occurred_at"].min() >= horizon - timedelta(hours=2)  # type: ignore[operator]
    # Anonymous device events exist, and most of their devices log in later.
    anonymous = events.filter(pl.col("customer_id").is_null())
    linked = events.filter((pl.col("event_type") == "login") & pl.col("customer_id").is_not_null())
    anonymous_devices = set(anonymous["device_id"])
    linked_devices = anonymous_devices & set(linked["device_id"])
    assert len(linked_devices) > 1000
    assert len(anonymous_devices - linked_devices) > 1000


def test_the_population_draws_match_their_parameters(large_world: DemoWorld) -> None:
    truth = large_world.truth_customers
    parameters = large_world.config.parameters
    count = truth.height

    # λ ~ Gamma(r, alpha): mean r/alpha, variance r/alpha².
    rate_error = math.sqrt(parameters.r / parameters.alpha**2 / count)
    assert _within(truth["purchase_rate"].mean(), parameters.r / parameters.alpha, rate_error)  # type: ignore[arg-type]
    # p ~ Beta(a, b): mean a/(a+b).
    a, b = parameters.a, parameters.b
    dropout_variance = a * b / ((a + b) ** 2 * (a + b + 1))
    assert _within(
        truth["dropout_probability"].mean(),  # type: ignore[arg-type]
        a / (a + b),
        math.sqrt(dropout_variance / count),
    )
    # E[p/ν] with ν ~ Gamma(q, gamma) is p·gamma/(q−1).
    expected_spend = parameters.p * parameters.gamma / (parameters.q - 1)
    spend_error = truth["expected_spend"].std() / math.sqrt(count)  # type: ignore[operator]
    assert _within(truth["expected_spend"].mean(), expected_spend, spend_error)  # type: ignore[arg-type]


def test_the_orders_are_the_process_draws(large_world: DemoWorld) -> None:
    # Given the orders per person, cancelled ones (noise outside the process) apart
    orders = _orders(large_world)
    kept = orders.filter(pl.col("status") != "cancelled")
    per_person = kept.group_by("person").agg(pl.len().alias("orders"), pl.col("total").mean())
    truth = large_world.truth_customers.join(
        per_person, left_on="customer_id", right_on="person", how="left"
    ).with_columns(pl.col("orders").fill_null(0))
    buyers = truth.filter("is_buyer")

    # Then each buyer has its first purchase and exactly its drawn repeat purchases
    assert (buyers["orders"] == buyers["repeat_purchases"] + 1).all()
    assert truth.filter(~pl.col("is_buyer"))["orders"].sum() == 0
    # And the repeat purchases average what the BG/NBD mean implies, E[X | λ, p, τ]
    difference = buyers["repeat_purchases"] - buyers["expected_repeat_purchases"]
    assert _within(difference.mean(), 0.0, difference.std() / math.sqrt(buyers.height))  # type: ignore[arg-type]
    # And the order totals average each customer's expected spend (gamma-gamma)
    spend = kept.join(
        large_world.truth_customers.select("customer_id", "expected_spend"),
        left_on="person",
        right_on="customer_id",
    )
    gap = spend["total"] - spend["expected_spend"]
    assert _within(gap.mean(), 0.0, gap.std() / math.sqrt(spend.height))  # type: ignore[arg-type]
    # And a dropout happened at its customer's last purchase
    dropped = truth.filter("dropped_out")
    assert dropped.height > 0
    last = kept.group_by("person").agg(pl.col("ordered_at").max().alias("last"))
    dropped = dropped.join(last, left_on="customer_id", right_on="person")
    assert (dropped["dropped_out_at"] == dropped["last"]).all()


def test_double_eleven_and_618_are_peaks(large_world: DemoWorld) -> None:
    orders = _orders(large_world).with_columns(day=pl.col("ordered_at").dt.date())
    per_day = orders.group_by("day").len()
    average_day = orders.height / 730

    def on(day: date) -> int:
        return int(per_day.filter(pl.col("day") == day)["len"].sum())

    assert on(date(2024, 11, 11)) > 4 * average_day
    assert on(date(2024, 6, 18)) > 2.5 * average_day
    week_of_double_eleven = orders.filter(
        pl.col("day").is_between(date(2024, 11, 5), date(2024, 11, 11))
    ).height
    assert week_of_double_eleven > 2 * 7 * average_day
    # Weekends sell more than the days before them.
    weekday = orders["day"].dt.weekday()
    assert (weekday == 6).sum() > (weekday == 2).sum()


def test_the_truth_names_the_parameters_and_the_window(small_world: DemoWorld) -> None:
    truth = small_world.truth.to_json()

    assert truth["seed"] == 1
    assert truth["customers"] == 300
    assert truth["observation_start"] == "2023-06-02T00:00:00"
    assert truth["observation_end"] == "2025-06-01T00:00:00"
    assert truth["time_unit"] == "week"
    assert set(truth["parameters"]) >= {"r", "alpha", "a", "b", "p", "q", "gamma"}


def test_twenty_thousand_customers_generate_in_seconds() -> None:
    # The default size must stay quick: it runs on every `make demo`.
    began = datetime.now()
    generate_world(DemoConfig(customers=20_000, seed=3, as_of=AS_OF))
    assert (datetime.now() - began).total_seconds() < 15
