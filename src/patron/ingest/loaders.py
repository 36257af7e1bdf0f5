"""Write validated batches into the store: one loader per kind of record.

A loader takes the typed good rows of a batch, resolves the customers and products they name
(creating those named only by id), compares them with what the store already holds and
writes only what is new or changed, set-based. It returns, per row, whether it was inserted,
updated or unchanged, and may reject rows that contradict each other or the store.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import polars as pl
from django.db import connection

from patron.catalog.models import Category, Product
from patron.core.bulk import (
    SET_BASED_CHECK_MIN_ROWS,
    chunks,
    fetch_frame,
    insert_frame,
    is_postgres,
    reserve_ids,
    restore_checks,
    suspend_checks,
    update_rows,
)
from patron.core.money import default_currency, quantize_amount
from patron.customers.choices import IdentityKindChoices
from patron.customers.identity import (
    InvalidIdentifier,
    identity_lookup_values,
    normalize_email,
    normalize_phone,
    stored_identity,
)
from patron.customers.models import Customer, CustomerIdentity, CustomerMerge
from patron.customers.resolution import (
    PROFILE_FIELDS,
    fill_blank_profile,
    json_safe,
    masked_identifier,
    merge_customers,
    profile_snapshot,
)
from patron.ingest.readers import ROW
from patron.orders.models import Event, Order, OrderLine, Refund
from patron.privacy.erasure import erased_customer_keys
from patron.privacy.pii.fields import refresh_blind_indexes

INSERTED, UPDATED, UNCHANGED = "inserted", "updated", "unchanged"
_EXTERNAL_ID = IdentityKindChoices.EXTERNAL_ID.value
_DEVICE = IdentityKindChoices.DEVICE.value


@dataclass
class BatchResult:
    """Outcome of one batch: a status per written row and the rows rejected on the way."""

    statuses: pl.DataFrame  # __row, status
    rejected: pl.DataFrame = field(
        default_factory=lambda: pl.DataFrame(
            schema={ROW: pl.Int64, "field": pl.Utf8, "reason": pl.Utf8}
        )
    )
    created: dict[str, int] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(tz=UTC)


def _statuses(rows: pl.Series, status: pl.Expr | str) -> pl.DataFrame:
    frame = pl.DataFrame({ROW: rows})
    value = pl.lit(status) if isinstance(status, str) else status
    return frame.with_columns(value.alias("status"))


def _money_equal(left: pl.Expr, right: pl.Expr) -> pl.Expr:
    return ((left.cast(pl.Float64) - right.cast(pl.Float64)).abs() < 5e-5) | (
        left.is_null() & right.is_null()
    )


# --- customers and products named by id -------------------------------------------------


def resolve_customer_ids(
    external_ids: pl.Series, known: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, int]:
    """Map external customer ids to customer keys, creating customers named only by id.

    Ids merged into another customer resolve to the survivor, ids erased at the customer's
    request to their pseudonymous record. ``known`` is a frame this function returned
    before in the same import: its ids are not looked up again. Returns a frame
    ``(customer_id, customer_pk)`` of those and ``external_ids``, and the number of
    customers created.
    """
    unique_ids = external_ids.drop_nulls().unique()
    if known is not None and known.height:
        # A file names most of its customers in every block: each is looked up once per
        # import, not once per block.
        unique_ids = unique_ids.filter(
            unique_ids.is_in(known.get_column("customer_id").implode()).not_()
        )
    wanted = unique_ids.to_list()
    found: dict[str, int] = dict(
        fetch_frame(
            CustomerIdentity._meta.db_table,
            {"value": "value", "customer_id": "customer_id"},
            "value",
            wanted,
            {"value": pl.Utf8, "customer_id": pl.Int64},
            filters={"kind": _EXTERNAL_ID},
        ).iter_rows()
    )
    missing = sorted(set(wanted) - found.keys())
    # An erased customer's old id names its pseudonymous record: its orders and events stay
    # there instead of bringing the id back as a new customer.
    erased = erased_customer_keys(missing)
    if erased:
        found.update(erased)
        missing = [external_id for external_id in missing if external_id not in erased]
    if missing:
        ids = reserve_ids(Customer._meta.db_table, len(missing))
        now = _now()
        new = pl.DataFrame({"id": ids, "external_id": pl.Series(missing, dtype=pl.Utf8)})
        insert_frame(
            Customer._meta.db_table,
            new,
            {
                # Blank personal fields are stored blank (nothing to encrypt or index).
                **dict.fromkeys(
                    (
                        "name",
                        "email",
                        "phone",
                        "address",
                        "name_index",
                        "email_index",
                        "phone_index",
                        "province",
                        "city",
                        "signup_channel",
                    ),
                    "",
                ),
                "birthday": None,
                "gender": "unknown",
                "signed_up_at": None,
                "tags": "[]",
                "created_at": now,
                "updated_at": now,
            },
        )
        insert_frame(
            CustomerIdentity._meta.db_table,
            new.select(pl.col("id").alias("customer_id"), pl.col("external_id").alias("value")),
            {"kind": _EXTERNAL_ID, "secret": "", "created_at": now},
        )
        found.update(zip(missing, ids.to_list(), strict=True))
    frame = pl.DataFrame(
        {"customer_id": list(found.keys()), "customer_pk": list(found.values())},
        schema={"customer_id": pl.Utf8, "customer_pk": pl.Int64},
    )
    if known is not None:
        frame = pl.concat([known, frame])
    return frame, len(missing)


def resolve_product_ids(products: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Map product ids (column ``product_id``, optional ``product_name``) to product keys,
    creating the products named only by id. Returns ``(product_id, product_pk)``."""
    named = products.filter(pl.col("product_id").is_not_null())
    names = named.group_by("product_id").agg(pl.col("product_name").drop_nulls().last())
    wanted = names.get_column("product_id").to_list()
    found: dict[str, int] = dict(
        fetch_frame(
            Product._meta.db_table,
            {"external_id": "external_id", "id": "id"},
            "external_id",
            wanted,
            {"external_id": pl.Utf8, "id": pl.Int64},
        ).iter_rows()
    )
    new = names.filter(pl.col("product_id").is_in(list(found.keys())).not_()).sort("product_id")
    if new.height:
        ids = reserve_ids(Product._meta.db_table, new.height)
        now = _now()
        insert_frame(
            Product._meta.db_table,
            new.select(
                ids,
                pl.col("product_id").alias("external_id"),
                pl.col("product_id").alias("sku"),
                pl.col("product_name").fill_null("").alias("name"),
            ),
            {
                "category_id": None,
                "brand": "",
                "price_amount": None,
                "currency": default_currency(),
                "attributes": "{}",
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            },
        )
        found.update(zip(new.get_column("product_id").to_list(), ids.to_list(), strict=True))
    frame = pl.DataFrame(
        {"product_id": list(found.keys()), "product_pk": list(found.values())},
        schema={"product_id": pl.Utf8, "product_pk": pl.Int64},
    )
    return frame, new.height


# --- orders ---------------------------------------------------------------------------------


def _position_in_order(order_ids: pl.Series) -> pl.Series:
    """Each row's position (from 1) among the rows of its order, in input order."""
    runs = order_ids.rle_id()
    if order_ids.len() and runs[-1] + 1 == order_ids.n_unique():
        # Each order's rows are together (as files list them): positions count from the
        # start of each run, without the window over every order id (a hash per row).
        index = pl.int_range(1, order_ids.len() + 1, dtype=pl.Int64, eager=True)
        starts = index.filter(runs.is_first_distinct())
        return index - starts.gather(runs) + 1
    return (
        order_ids.to_frame()
        .select(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(order_ids.name))
        .to_series()
    )


class OrderLoader:
    """Orders arrive as one row per line; an order's lines may span batches and files."""

    def __init__(self, currency: str) -> None:
        self.currency = currency
        # Lines counted per batch so far (append-only: summing them is needed only for the
        # few orders whose lines span batches).
        self.order_counts: list[pl.DataFrame] = []
        self.product_counts: list[pl.DataFrame] = []
        self.touched_orders: set[int] = set()
        # Orders inserted or changed by this input (their points are settled afterwards).
        self.written_orders: set[int] = set()
        # Foreign keys and plain indexes of the order tables dropped for a large load
        # (PostgreSQL), restored by finish(); None until the first batch decides.
        self.suspended: list[tuple[str, str]] | None = None
        # The new orders' timestamps come from column defaults (a large PostgreSQL load).
        self.timestamps_by_default = False
        # Customer ids resolved so far (customer_id, customer_pk). Within one import an id
        # keeps its key: on SQLite the import holds the write lock; on PostgreSQL a merge
        # committed meanwhile by another session could re-point it, as it could between a
        # block's look-up and its write.
        self.customer_keys: pl.DataFrame | None = None

    def _counts_before(self, orders: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Lines already seen in this input for ``orders``: per order, per order and product."""
        order_schema = {"order_id": pl.Utf8, "order_seen": pl.UInt32}
        product_schema = {"order_id": pl.Utf8, "product_key": pl.Utf8, "seen": pl.UInt32}
        if not self.order_counts:
            return pl.DataFrame(schema=order_schema), pl.DataFrame(schema=product_schema)
        wanted = orders.implode()
        per_order = (
            pl.concat(self.order_counts, rechunk=False)
            .filter(pl.col("order_id").is_in(wanted))
            .group_by("order_id")
            .agg(pl.col("order_seen").sum())
        )
        if per_order.height == 0:
            return per_order, pl.DataFrame(schema=product_schema)
        per_product = (
            pl.concat(self.product_counts, rechunk=False)
            .filter(pl.col("order_id").is_in(per_order.get_column("order_id").implode()))
            .group_by("order_id", "product_key")
            .agg(pl.col("seen").sum())
        )
        return per_order, per_product

    def _number_lines(self, rows: pl.DataFrame) -> pl.DataFrame:
        """Give each row its line key and line number, counted over the whole input."""
        rows = rows.with_columns(pl.col("product_id").fill_null("-").alias("product_key"))
        per_order, per_product = self._counts_before(rows.get_column("order_id").unique())
        if per_order.height:
            rows = rows.join(per_product, on=["order_id", "product_key"], how="left").join(
                per_order, on="order_id", how="left"
            )
        else:
            # No order of this batch was seen before (the usual case): no joins needed.
            rows = rows.with_columns(
                pl.lit(None, dtype=pl.UInt32).alias("seen"),
                pl.lit(None, dtype=pl.UInt32).alias("order_seen"),
            )
        # The occurrence of a product within its order: 1 unless the product repeats there.
        # The window over two keys is the costly part, so it runs only on repeated pairs.
        repeated = rows.select(
            pl.struct("order_id", "product_key").is_duplicated().arg_true()
        ).to_series()
        occurrence = pl.repeat(1, rows.height, dtype=pl.Int64, eager=True)
        if repeated.len():
            counted = rows[repeated].select(
                pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over("order_id", "product_key")
            )
            occurrence = occurrence.scatter(repeated, counted.to_series())
        rows = rows.with_columns(
            (pl.col("seen").fill_null(0) + occurrence).alias("occurrence"),
            (pl.col("order_seen").fill_null(0) + _position_in_order(rows.get_column("order_id")))
            .cast(pl.Int64)
            .alias("line_number"),
        )
        self.order_counts.append(
            rows.group_by("order_id").agg(pl.len().cast(pl.UInt32).alias("order_seen"))
        )
        self.product_counts.append(
            rows.group_by("order_id", "product_key").agg(pl.len().cast(pl.UInt32).alias("seen"))
        )
        return rows.with_columns(
            pl.coalesce(
                pl.col("line_id"),
                pl.format("{}#{}", pl.col("product_key"), pl.col("occurrence")),
            ).alias("line_key")
        )

    def _suspend_checks(self, good: pl.DataFrame) -> None:
        """On the first batch, before anything is written (PostgreSQL refuses to alter a
        table with pending trigger events): suspend the order tables' checks when the batch
        brings many new orders."""
        if self.suspended is not None:
            return
        self.suspended = []
        # Only in a transaction of its own: within a caller's, earlier writes may have left
        # pending trigger events, and the lock would outlive the import.
        if len(connection.atomic_blocks) != 1:
            return
        order_ids = good.get_column("order_id").unique()
        if order_ids.len() < SET_BASED_CHECK_MIN_ROWS:
            return
        quote = connection.ops.quote_name
        orders = quote(Order._meta.db_table)
        with connection.cursor() as cursor:
            if is_postgres():
                # Taken before reading the orders: a lock that excludes itself, so two large
                # imports queue instead of both reading and then deadlocking on the upgrade.
                # (SQLite's import holds the database's write lock from its start.)
                cursor.execute(
                    f"LOCK TABLE {orders}, {quote(OrderLine._meta.db_table)} "
                    "IN SHARE ROW EXCLUSIVE MODE"
                )
                cursor.execute(
                    f"SELECT count(*) FROM {orders} WHERE external_id = ANY(%s)",
                    [order_ids.to_list()],
                )
            else:
                cursor.execute(
                    f"SELECT count(*) FROM {orders} "
                    "WHERE external_id IN (SELECT value FROM json_each(%s))",
                    [json.dumps(order_ids.to_list())],
                )
            row = cursor.fetchone()
        known = int(row[0]) if row else 0
        tables = [Order._meta.db_table, OrderLine._meta.db_table]
        self.suspended = list(suspend_checks(tables, order_ids.len() - known))
        if self.suspended and is_postgres():
            self._default_timestamps(orders)

    def _default_timestamps(self, orders: str) -> None:
        """While the order tables are locked for a large load (PostgreSQL), the new orders'
        ``created_at`` and ``updated_at`` come from column defaults set for this transaction
        (restored by :meth:`finish`, undone by any rollback): ``COPY`` would otherwise
        parse the same two timestamps on every row, a fifth of the orders' load."""
        # A literal of our own making: a utility statement takes no parameters.
        stamp = _now().isoformat()
        columns = ("created_at", "updated_at")
        with connection.cursor() as cursor:
            cursor.execute(
                f"ALTER TABLE {orders} "
                + ", ".join(
                    f"ALTER COLUMN {column} SET DEFAULT '{stamp}'::timestamptz"
                    for column in columns
                )
            )
        assert self.suspended is not None
        self.suspended.insert(
            0,
            (
                Order._meta.db_table,
                f"ALTER TABLE {orders} "
                + ", ".join(f"ALTER COLUMN {column} DROP DEFAULT" for column in columns),
            ),
        )
        self.timestamps_by_default = True

    def load(self, good: pl.DataFrame) -> BatchResult:
        self._suspend_checks(good)
        rows = self._number_lines(good).with_columns(
            pl.col("quantity").fill_null(1),
            pl.col("currency").fill_null(self.currency),
            pl.col("status").fill_null("paid"),
            pl.col("channel").fill_null("web"),
        )
        # Each derived amount only where some row lacks it (decimal arithmetic on every row
        # is a good part of a batch's time).
        if rows.get_column("line_total").null_count():
            rows = rows.with_columns(
                pl.coalesce(
                    pl.col("line_total"),
                    (pl.col("unit_price") * pl.col("quantity")).cast(pl.Decimal(18, 4)),
                ).alias("line_total"),
            )
        if rows.get_column("unit_price").null_count():
            rows = rows.with_columns(
                pl.coalesce(
                    pl.col("unit_price"),
                    (pl.col("line_total").cast(pl.Float64) / pl.col("quantity"))
                    .round(4)
                    .cast(pl.Utf8)
                    .cast(pl.Decimal(18, 4)),
                ).alias("unit_price"),
            )
        # One order belongs to one customer: rows that say otherwise are contradictions.
        first_customer = rows.group_by("order_id", maintain_order=True).agg(
            pl.col("customer_id").first().alias("order_customer"),
            pl.col(ROW).first().alias("first_row"),
            pl.col("customer_id").n_unique().alias("customers"),
        )
        rejected = pl.DataFrame(schema={ROW: pl.Int64, "field": pl.Utf8, "reason": pl.Utf8})
        if first_customer.get_column("customers").max() != 1:
            rows = rows.join(first_customer.drop("customers"), on="order_id", how="left")
            conflicting = rows.filter(pl.col("customer_id") != pl.col("order_customer"))
            rejected = conflicting.select(
                ROW,
                pl.lit("customer_id").alias("field"),
                pl.format(
                    "order {} belongs to customer {} (row {}), not {}",
                    "order_id",
                    "order_customer",
                    "first_row",
                    "customer_id",
                ).alias("reason"),
            )
            rows = rows.filter(pl.col("customer_id") == pl.col("order_customer"))
        if rows.height == 0:
            return BatchResult(_statuses(pl.Series(ROW, [], dtype=pl.Int64), INSERTED), rejected)

        customers, customers_created = resolve_customer_ids(
            rows.get_column("customer_id"), self.customer_keys
        )
        self.customer_keys = customers
        products, products_created = resolve_product_ids(rows.select("product_id", "product_name"))
        rows = rows.join(products, on="product_id", how="left")
        # A key repeated within one batch (an explicit line_id given twice): the last row
        # wins. Without line ids every key is unique by construction.
        explicit_keys = rows.get_column("line_id").null_count() < rows.height
        distinct_lines = (
            rows.unique(subset=["order_id", "line_key"], keep="last", maintain_order=True)
            if explicit_keys
            else rows
        )

        def last_given(name: str) -> pl.Expr:
            # Columns absent from the input are all null: no per-order work for them.
            if rows.get_column(name).null_count() == rows.height:
                return pl.lit(None, dtype=rows.schema[name]).alias(name)
            return pl.col(name).drop_nulls().last()

        headers = (
            rows.group_by("order_id", maintain_order=True)
            .agg(
                pl.col("customer_id", "ordered_at", "status", "channel", "currency").last(),
                last_given("discount"),
                last_given("coupon_code"),
                last_given("refund_amount"),
                last_given("refunded_at"),
                last_given("refund_reason"),
            )
            .with_columns(
                pl.col("discount").fill_null(Decimal(0)).cast(pl.Decimal(18, 4)),
                pl.col("coupon_code").fill_null(""),
                pl.col("refund_reason").fill_null(""),
            )
            .join(customers, on="customer_id", how="left")
        )
        # Totals of orders new in this batch come from its lines; orders already in the store
        # (an order spanning batches or files) are recomputed in SQL by finish().
        subtotals = distinct_lines.group_by("order_id").agg(
            pl.col("line_total").sum().cast(pl.Decimal(18, 4)).alias("subtotal")
        )
        headers = headers.join(subtotals, on="order_id", how="left")
        order_ids, orders_created, changed_orders = self._write_orders(headers)
        line_status = self._write_lines(distinct_lines.join(order_ids, on="order_id", how="left"))
        # A new or changed refund changes its order, though no line or header field did.
        changed_orders |= self._write_refunds(headers.join(order_ids, on="order_id"))
        statuses = line_status.with_columns(
            pl.when(
                (pl.col("status") == UNCHANGED) & pl.col("order_pk").is_in(list(changed_orders))
            )
            .then(pl.lit(UPDATED))
            .otherwise(pl.col("status"))
            .alias("status")
        )
        self.written_orders.update(
            statuses.filter(pl.col("status") != UNCHANGED).get_column("order_pk").to_list()
        )
        statuses = statuses.select(ROW, "status")
        return BatchResult(
            statuses,
            rejected,
            {
                "customers": customers_created,
                "products": products_created,
                "orders": orders_created,
            },
        )

    def _write_orders(self, headers: pl.DataFrame) -> tuple[pl.DataFrame, int, set[int]]:
        existing = fetch_frame(
            Order._meta.db_table,
            {
                "order_id": "external_id",
                "order_pk": "id",
                "old_customer": "customer_id",
                "old_ordered_at": "ordered_at",
                "old_status": "status",
                "old_channel": "channel",
                "old_currency": "currency",
                "old_discount": "discount_amount",
                "old_coupon": "coupon_code",
            },
            "external_id",
            headers.get_column("order_id").to_list(),
            {
                "order_id": pl.Utf8,
                "order_pk": pl.Int64,
                "old_customer": pl.Int64,
                "old_ordered_at": pl.Datetime("us", "UTC"),
                "old_status": pl.Utf8,
                "old_channel": pl.Utf8,
                "old_currency": pl.Utf8,
                "old_discount": pl.Float64,
                "old_coupon": pl.Utf8,
            },
        )
        merged = headers.join(existing, on="order_id", how="left")
        new = merged.filter(pl.col("order_pk").is_null())
        old = merged.filter(pl.col("order_pk").is_not_null())
        changed = old.filter(
            (pl.col("customer_pk") != pl.col("old_customer"))
            | (pl.col("ordered_at") != pl.col("old_ordered_at"))
            | (pl.col("status") != pl.col("old_status"))
            | (pl.col("channel") != pl.col("old_channel"))
            | (pl.col("currency") != pl.col("old_currency"))
            | _money_equal(pl.col("discount"), pl.col("old_discount")).not_()
            | (pl.col("coupon_code") != pl.col("old_coupon"))
        )
        now = _now()
        ids = reserve_ids(Order._meta.db_table, new.height, locked=bool(self.suspended))
        new = new.with_columns(ids.alias("order_pk"))
        insert_frame(
            Order._meta.db_table,
            new.select(
                pl.col("order_pk").alias("id"),
                pl.col("order_id").alias("external_id"),
                pl.col("customer_pk").alias("customer_id"),
                "ordered_at",
                "status",
                "channel",
                "currency",
                pl.col("subtotal").alias("subtotal_amount"),
                pl.col("discount").alias("discount_amount"),
                pl.when(pl.col("subtotal") > pl.col("discount"))
                .then(pl.col("subtotal") - pl.col("discount"))
                .otherwise(pl.lit(Decimal(0)))
                .cast(pl.Decimal(18, 4))
                .alias("total_amount"),
                "coupon_code",
            ),
            {} if self.timestamps_by_default else {"created_at": now, "updated_at": now},
        )
        update_rows(
            Order._meta.db_table,
            changed.select(
                pl.col("order_pk").alias("id"),
                pl.col("customer_pk").alias("customer_id"),
                "ordered_at",
                "status",
                "channel",
                "currency",
                pl.col("discount").alias("discount_amount"),
                "coupon_code",
                pl.lit(now).alias("updated_at"),
            ),
        )
        changed_ids = set(changed.get_column("order_pk").to_list())
        self.touched_orders.update(changed_ids)
        order_ids = pl.concat(
            [
                new.select("order_id", "order_pk", pl.lit(True).alias("order_is_new")),
                old.select("order_id", "order_pk", pl.lit(False).alias("order_is_new")),
            ]
        )
        return order_ids, new.height, changed_ids

    def _write_lines(self, rows: pl.DataFrame) -> pl.DataFrame:
        # New orders have no lines yet; only the others need comparing.
        known_orders = (
            rows.filter(pl.col("order_is_new").not_()).get_column("order_pk").unique().to_list()
        )
        existing = fetch_frame(
            OrderLine._meta.db_table,
            {
                "order_pk": "order_id",
                "line_key": "line_key",
                "line_pk": "id",
                "old_product": "product_id",
                "old_quantity": "quantity",
                "old_unit_price": "unit_price_amount",
                "old_line_total": "line_total_amount",
            },
            "order_id",
            known_orders,
            {
                "order_pk": pl.Int64,
                "line_key": pl.Utf8,
                "line_pk": pl.Int64,
                "old_product": pl.Int64,
                "old_quantity": pl.Int64,
                "old_unit_price": pl.Float64,
                "old_line_total": pl.Float64,
            },
        )
        # ``rows`` holds each (order, line key) once (see load).
        merged = rows.join(existing, on=["order_pk", "line_key"], how="left")
        new = merged.filter(pl.col("line_pk").is_null())
        old = merged.filter(pl.col("line_pk").is_not_null())
        differs = (
            (pl.col("product_pk").eq_missing(pl.col("old_product")).not_())
            | (pl.col("quantity") != pl.col("old_quantity"))
            | _money_equal(pl.col("unit_price"), pl.col("old_unit_price")).not_()
            | _money_equal(pl.col("line_total"), pl.col("old_line_total")).not_()
        )
        changed = old.filter(differs)
        # With the tables locked for a large load, the keys come as one block (PostgreSQL
        # would otherwise draw each line's key from the sequence one call at a time).
        line_ids = (
            [reserve_ids(OrderLine._meta.db_table, new.height, locked=True)]
            if self.suspended
            else []
        )
        insert_frame(
            OrderLine._meta.db_table,
            new.select(
                *line_ids,
                pl.col("order_pk").alias("order_id"),
                "line_key",
                "line_number",
                pl.col("product_pk").alias("product_id"),
                "quantity",
                pl.col("unit_price").alias("unit_price_amount"),
                pl.col("line_total").alias("line_total_amount"),
            ),
        )
        update_rows(
            OrderLine._meta.db_table,
            changed.select(
                pl.col("line_pk").alias("id"),
                pl.col("product_pk").alias("product_id"),
                "quantity",
                pl.col("unit_price").alias("unit_price_amount"),
                pl.col("line_total").alias("line_total_amount"),
            ),
        )
        self.touched_orders.update(
            new.filter(pl.col("order_is_new").not_()).get_column("order_pk").to_list()
        )
        self.touched_orders.update(changed.get_column("order_pk").to_list())
        return pl.concat(
            [
                new.select(ROW, "order_pk", pl.lit(INSERTED).alias("status")),
                old.select(
                    ROW,
                    "order_pk",
                    pl.when(differs)
                    .then(pl.lit(UPDATED))
                    .otherwise(pl.lit(UNCHANGED))
                    .alias("status"),
                ),
            ]
        )

    def _write_refunds(self, headers: pl.DataFrame) -> set[int]:
        """Create or update the order-level refunds; the keys of the orders whose refund
        was created or changed."""
        refunds = headers.filter(
            pl.col("refund_amount").is_not_null() & (pl.col("refund_amount") > 0)
        )
        if refunds.height == 0:
            return set()
        changed: set[int] = set()
        by_key = {f"{row['order_id']}#refund": row for row in refunds.iter_rows(named=True)}
        existing = {
            refund.external_id: refund
            for chunk in chunks(list(by_key))
            for refund in Refund.objects.filter(external_id__in=chunk)
        }
        for key, row in by_key.items():
            kind = "return" if row["status"] == "returned" else "refund"
            values = {
                "order_id": row["order_pk"],
                "amount": quantize_amount(Decimal(row["refund_amount"])),
                "currency": row["currency"],
                "refunded_at": row["refunded_at"],
                "reason": row["refund_reason"],
                "kind": kind,
            }
            refund = existing.get(key)
            if refund is None:
                Refund.objects.create(external_id=key, **values)
                changed.add(row["order_pk"])
            elif any(getattr(refund, name) != value for name, value in values.items()):
                Refund.objects.filter(pk=refund.pk).update(**values)
                changed.add(row["order_pk"])
        return changed

    def finish(self) -> None:
        """Recompute the totals of every order whose lines or discount changed; rebuild the
        indexes and re-check the foreign keys suspended for a large load."""
        order_table = connection.ops.quote_name(Order._meta.db_table)
        line_table = connection.ops.quote_name(OrderLine._meta.db_table)
        with connection.cursor() as cursor:
            for chunk in chunks(sorted(self.touched_orders)):
                placeholders = ", ".join(["%s"] * len(chunk))
                # One aggregate per chunk joined back (UPDATE ... FROM, SQLite 3.33+), not a
                # correlated subquery per order.
                cursor.execute(
                    f"UPDATE {order_table} SET subtotal_amount = totals.subtotal, "
                    f"total_amount = CASE WHEN totals.subtotal > {order_table}.discount_amount "
                    f"THEN totals.subtotal - {order_table}.discount_amount ELSE 0 END "
                    f"FROM (SELECT order_id, ROUND(SUM(line_total_amount), 4) AS subtotal "
                    f"FROM {line_table} WHERE order_id IN ({placeholders}) GROUP BY order_id) "
                    f"AS totals WHERE {order_table}.id = totals.order_id",
                    list(chunk),
                )
        self.touched_orders.clear()
        if self.suspended:
            restore_checks(self.suspended)
            self.suspended = []


# --- events ---------------------------------------------------------------------------------


def _derived_event_id(row: dict[str, Any]) -> str:
    key = "|".join(
        str(row[name] or "")
        for name in ("customer_id", "device_id", "event_type", "occurred_at", "product_id")
    )
    return "derived:" + hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:32]


class EventLoader:
    """Behaviour events; logins link a device's anonymous events to the customer."""

    def load(self, good: pl.DataFrame) -> BatchResult:
        rows = good.with_columns(
            pl.col("channel").fill_null("web"),
            pl.col("properties").fill_null("{}"),
            pl.col("device_id").fill_null(""),
        )
        rows = rows.with_columns(
            pl.coalesce(
                pl.col("event_id"),
                pl.struct(
                    "customer_id", "device_id", "event_type", "occurred_at", "product_id"
                ).map_elements(_derived_event_id, return_dtype=pl.Utf8),
            ).alias("event_id")
        ).unique(subset=["event_id"], keep="last", maintain_order=True)
        customers, customers_created = resolve_customer_ids(rows.get_column("customer_id"))
        products, products_created = resolve_product_ids(
            rows.select("product_id", pl.lit(None, dtype=pl.Utf8).alias("product_name"))
        )
        rows = rows.join(customers, on="customer_id", how="left").join(
            products, on="product_id", how="left"
        )
        self._link_devices(rows)
        devices = _device_owners(
            rows.filter(pl.col("customer_pk").is_null()).get_column("device_id")
        )
        rows = rows.join(devices, on="device_id", how="left").with_columns(
            pl.coalesce("customer_pk", "device_owner").alias("customer_pk")
        )
        existing = fetch_frame(
            Event._meta.db_table,
            {
                "event_id": "external_id",
                "event_pk": "id",
                "old_customer": "customer_id",
                "old_type": "event_type",
                "old_time": "occurred_at",
                "old_product": "product_id",
                "old_channel": "channel",
            },
            "external_id",
            rows.get_column("event_id").to_list(),
            {
                "event_id": pl.Utf8,
                "event_pk": pl.Int64,
                "old_customer": pl.Int64,
                "old_type": pl.Utf8,
                "old_time": pl.Datetime("us", "UTC"),
                "old_product": pl.Int64,
                "old_channel": pl.Utf8,
            },
        )
        merged = rows.join(existing, on="event_id", how="left")
        new = merged.filter(pl.col("event_pk").is_null())
        old = merged.filter(pl.col("event_pk").is_not_null())
        differs = (
            pl.col("customer_pk").eq_missing(pl.col("old_customer")).not_()
            | (pl.col("event_type") != pl.col("old_type"))
            | (pl.col("occurred_at") != pl.col("old_time"))
            | pl.col("product_pk").eq_missing(pl.col("old_product")).not_()
            | (pl.col("channel") != pl.col("old_channel"))
        )
        columns = (
            pl.col("customer_pk").alias("customer_id"),
            "device_id",
            "event_type",
            pl.col("product_pk").alias("product_id"),
            "occurred_at",
            "channel",
            "properties",
        )
        insert_frame(
            Event._meta.db_table, new.select(pl.col("event_id").alias("external_id"), *columns)
        )
        update_rows(
            Event._meta.db_table,
            old.filter(differs).select(pl.col("event_pk").alias("id"), *columns),
        )
        statuses = pl.concat(
            [
                new.select(ROW, pl.lit(INSERTED).alias("status")),
                old.select(
                    ROW,
                    pl.when(differs)
                    .then(pl.lit(UPDATED))
                    .otherwise(pl.lit(UNCHANGED))
                    .alias("status"),
                ),
            ]
        )
        return BatchResult(
            statuses, created={"customers": customers_created, "products": products_created}
        )

    def _link_devices(self, rows: pl.DataFrame) -> None:
        """A login with a customer and a device: the device is that customer's from now on,
        and its anonymous events so far become theirs."""
        logins = (
            rows.filter(
                (pl.col("event_type") == "login")
                & pl.col("customer_pk").is_not_null()
                & (pl.col("device_id") != "")
            )
            .sort("occurred_at")
            .group_by("device_id")
            .agg(pl.col("customer_pk").last())
        )
        if logins.height == 0:
            return
        # A device is a weak identifier (a shared family tablet): it moves to the latest
        # customer who logged in on it instead of merging customers.
        known = fetch_frame(
            CustomerIdentity._meta.db_table,
            {"device_id": "value", "identity_pk": "id", "owner": "customer_id"},
            "value",
            logins.get_column("device_id").to_list(),
            {"device_id": pl.Utf8, "identity_pk": pl.Int64, "owner": pl.Int64},
            filters={"kind": _DEVICE},
        )
        logins = logins.join(known, on="device_id", how="left")
        insert_frame(
            CustomerIdentity._meta.db_table,
            logins.filter(pl.col("identity_pk").is_null()).select(
                pl.col("customer_pk").alias("customer_id"),
                pl.lit(_DEVICE).alias("kind"),
                pl.col("device_id").alias("value"),
                pl.lit("").alias("secret"),
                pl.lit(_now()).alias("created_at"),
            ),
        )
        update_rows(
            CustomerIdentity._meta.db_table,
            logins.filter(pl.col("owner") != pl.col("customer_pk")).select(
                pl.col("identity_pk").alias("id"), pl.col("customer_pk").alias("customer_id")
            ),
        )
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.executemany(
                f"UPDATE {quote(Event._meta.db_table)} SET customer_id = %s "
                "WHERE device_id = %s AND customer_id IS NULL",
                logins.select("customer_pk", "device_id").rows(),
            )


def _device_owners(device_ids: pl.Series) -> pl.DataFrame:
    wanted = [value for value in device_ids.unique().to_list() if value]
    return fetch_frame(
        CustomerIdentity._meta.db_table,
        {"device_id": "value", "device_owner": "customer_id"},
        "value",
        wanted,
        {"device_id": pl.Utf8, "device_owner": pl.Int64},
        filters={"kind": _DEVICE},
    )


# --- products -------------------------------------------------------------------------------


def ensure_category(path: str, cache: dict[str, Category]) -> Category:
    """The category named by a path such as ``Clothing > Women > Dresses``, created as needed."""
    parts = [part.strip() for part in path.replace("/", ">").split(">") if part.strip()]
    parent: Category | None = None
    for depth in range(1, len(parts) + 1):
        full = " > ".join(parts[:depth])
        category = cache.get(full)
        if category is None:
            category, _ = Category.objects.get_or_create(
                path=full, defaults={"name": parts[depth - 1], "parent": parent}
            )
            cache[full] = category
        parent = category
    assert parent is not None
    return parent


class ProductLoader:
    """Products upserted by product id; only the fields given in the input are changed."""

    def __init__(self, currency: str, given: set[str]) -> None:
        self.currency = currency
        self.given = given
        self.categories: dict[str, Category] = {}

    def load(self, good: pl.DataFrame) -> BatchResult:
        rows = good.unique(subset=["product_id"], keep="last", maintain_order=True)
        existing = {
            product.external_id: product
            for chunk in chunks(rows.get_column("product_id").to_list())
            for product in Product.objects.filter(external_id__in=chunk)
        }
        statuses: list[tuple[int, str]] = []
        to_create: list[Product] = []
        to_update: list[Product] = []
        for row in rows.iter_rows(named=True):
            values: dict[str, Any] = {}
            if "name" in self.given and row["name"] is not None:
                values["name"] = row["name"]
            if "sku" in self.given and row["sku"] is not None:
                values["sku"] = row["sku"]
            if "brand" in self.given and row["brand"] is not None:
                values["brand"] = row["brand"]
            if "price" in self.given and row["price"] is not None:
                values["price_amount"] = quantize_amount(Decimal(row["price"]))
            if "currency" in self.given and row["currency"] is not None:
                values["currency"] = row["currency"]
            if "attributes" in self.given and row["attributes"] is not None:
                values["attributes"] = json.loads(row["attributes"])
            if "is_active" in self.given and row["is_active"] is not None:
                values["is_active"] = row["is_active"]
            if "category" in self.given and row["category"] is not None:
                values["category"] = ensure_category(row["category"], self.categories)
            product = existing.get(row["product_id"])
            if product is None:
                values.setdefault("sku", row["product_id"])
                values.setdefault("currency", self.currency)
                to_create.append(Product(external_id=row["product_id"], **values))
                statuses.append((row[ROW], INSERTED))
                continue
            if _apply(product, values):
                to_update.append(product)
                statuses.append((row[ROW], UPDATED))
            else:
                statuses.append((row[ROW], UNCHANGED))
        Product.objects.bulk_create(to_create, batch_size=2000)
        _bulk_update(Product, to_update)
        return BatchResult(
            pl.DataFrame(statuses, schema={ROW: pl.Int64, "status": pl.Utf8}, orient="row")
        )


def _apply(instance: Any, values: dict[str, Any]) -> bool:
    """Set ``values`` on ``instance``; whether anything changed."""
    changed = False
    for name, value in values.items():
        current = getattr(instance, name)
        if isinstance(current, Decimal) and value is not None:
            same = quantize_amount(current) == quantize_amount(Decimal(value))
        else:
            same = current == value
        if not same:
            setattr(instance, name, value)
            changed = True
    return changed


def _bulk_update(model: Any, instances: list[Any]) -> None:
    if not instances:
        return
    fields = sorted(
        {
            f.name
            for f in model._meta.concrete_fields
            if not f.primary_key and f.name != "created_at"
        }
    )
    now = _now()
    for instance in instances:
        instance.updated_at = now
        # bulk_update does not call pre_save: blind indexes follow their changed values here.
        refresh_blind_indexes(instance)
    model.objects.bulk_update(instances, fields, batch_size=500)


def _parse_tags(raw: str) -> list[str]:
    """Tags from ``vip|new`` or from a JSON list (``["vip", "new"]``, as the API sends them)."""
    if raw.startswith("["):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return sorted({str(tag).strip() for tag in parsed if str(tag).strip()})
    return sorted({tag.strip() for tag in raw.split("|") if tag.strip()})


def _profile(customer: Customer) -> tuple[Any, ...]:
    return (*(getattr(customer, name) for name in PROFILE_FIELDS), customer.tags)


# --- customers ------------------------------------------------------------------------------

#: Why a customer row of an erased customer is rejected (names no value).
ERASED_REASON = (
    "this customer's personal data was erased at their request; it is not imported again"
)


class CustomerLoader:
    """Customers upserted with identity resolution by external id, then e-mail, then phone.

    A row whose e-mail or phone already names another customer is that customer (its id is
    added as one more external id); a row that names two existing customers merges them.
    """

    def __init__(self, given: set[str]) -> None:
        self.given = given
        self.next_temporary_key = 0

    def load(self, good: pl.DataFrame) -> BatchResult:
        rows, rejected = self._refuse_erased(*self._normalise(good))
        keys: dict[tuple[str, str], int] = {}
        for kind, column in (
            (_EXTERNAL_ID, "customer_id"),
            ("email", "email_key"),
            ("phone", "phone_key"),
        ):
            values = [value for value in rows.get_column(column).unique().to_list() if value]
            # E-mails and phones are stored as blind indexes: look up every key's index and
            # map each back to the normalised value it stands for.
            lookups = {
                stored: value for value in values for stored in identity_lookup_values(kind, value)
            }
            for chunk in chunks(list(lookups)):
                for stored, pk in CustomerIdentity.objects.filter(
                    kind=kind, value__in=chunk
                ).values_list("value", "customer_id"):
                    keys[(kind, lookups[stored])] = pk
        customers = {
            customer.pk: customer
            for chunk in chunks(sorted(set(keys.values())))
            for customer in Customer.objects.filter(pk__in=chunk)
        }
        initial = {pk: _profile(customer) for pk, customer in customers.items()}
        new_customers: dict[int, Customer] = {}  # temporary negative keys
        new_identities: dict[tuple[str, str], int] = {}
        # (target key, external id, why, row values): ids found to name a known person.
        attached: list[tuple[int, str, str, dict[str, Any]]] = []
        statuses: list[tuple[int, str, int]] = []
        for row in rows.iter_rows(named=True):
            wanted = [
                (_EXTERNAL_ID, row["customer_id"]),
                *((("email", row["email_key"]),) if row["email_key"] else ()),
                *((("phone", row["phone_key"]),) if row["phone_key"] else ()),
            ]
            # Existing customers first (oldest survives), then ones new in this import.
            holders = sorted(
                {keys[key] for key in wanted if key in keys}, key=lambda pk: (pk < 0, abs(pk))
            )
            if len(holders) > 1:
                target = holders[0]
                for other in holders[1:]:
                    if other > 0:
                        merge_customers(
                            customers[target],
                            customers.pop(other),
                            reason=f"same person as import row {row[ROW]}",
                        )
                        customers[target].refresh_from_db()
                        initial[target] = ()  # merged: the survivor has changed
                    else:
                        folded = new_customers.pop(other)
                        fill_blank_profile(customers.get(target) or new_customers[target], folded)
                        attached.append(
                            (
                                target,
                                folded.external_id,
                                "same person as another record",
                                profile_snapshot(folded),
                            )
                        )
                    for key, pk in keys.items():
                        if pk == other:
                            keys[key] = target
                            if key in new_identities:
                                new_identities[key] = target
                holders = [target]
            if holders:
                target_pk = holders[0]
                customer = customers.get(target_pk) or new_customers[target_pk]
                _apply(customer, self._values(row))
                status = UNCHANGED
                if (_EXTERNAL_ID, row["customer_id"]) not in keys:
                    found_by = next(key for key in wanted if key in keys)
                    attached.append(
                        (
                            target_pk,
                            row["customer_id"],
                            f"same {found_by[0]}: {masked_identifier(*found_by)}",
                            self._values(row),
                        )
                    )
                    status = UPDATED
            else:
                self.next_temporary_key -= 1
                target_pk = self.next_temporary_key
                customer = Customer(external_id=row["customer_id"], **self._values(row))
                new_customers[target_pk] = customer
                status = INSERTED
            for key in wanted:
                if key not in keys:
                    keys[key] = target_pk
                    new_identities[key] = target_pk
            statuses.append((row[ROW], status, target_pk))
        # A customer counts as updated only if the batch left it different: two records of one
        # person applied in turn must not report changes on every import.
        changed = {
            pk for pk, customer in customers.items() if _profile(customer) != initial.get(pk)
        }
        statuses = [
            (row_number, UPDATED if status == UNCHANGED and pk in changed else status, pk)
            for row_number, status, pk in statuses
        ]
        Customer.objects.bulk_create(list(new_customers.values()), batch_size=2000)
        real_pk = {temp: customer.pk for temp, customer in new_customers.items()}
        CustomerIdentity.objects.bulk_create(
            [
                CustomerIdentity(
                    customer_id=real_pk.get(pk, pk), kind=kind, value=stored, secret=secret
                )
                for (kind, value), pk in new_identities.items()
                for stored, secret in (stored_identity(kind, value),)
            ],
            batch_size=2000,
        )
        CustomerMerge.objects.bulk_create(
            [
                CustomerMerge(
                    survivor_id=real_pk.get(pk, pk),
                    merged_customer_pk=None,
                    merged_external_id=external_id,
                    reason=reason,
                    snapshot=json_safe(values),
                )
                for pk, external_id, reason, values in attached
            ]
        )
        _bulk_update(Customer, [customers[pk] for pk in changed])
        return BatchResult(
            pl.DataFrame(
                [(row_number, status) for row_number, status, _ in statuses],
                schema={ROW: pl.Int64, "status": pl.Utf8},
                orient="row",
            ),
            rejected,
            {"customers": len(new_customers)},
        )

    def _values(self, row: dict[str, Any]) -> dict[str, Any]:
        """The profile fields this row gives (a column left empty changes nothing)."""
        values = {
            name: row[name]
            for name in PROFILE_FIELDS
            if name in self.given and row[name] is not None
        }
        if "tags" in self.given and row["tags"] is not None:
            values["tags"] = _parse_tags(row["tags"])
        return values

    @staticmethod
    def _refuse_erased(
        rows: pl.DataFrame, rejected: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Reject the rows of customers erased at their request: their personal data must not
        come back with the shop's next full export."""
        erased = erased_customer_keys(rows.get_column("customer_id").unique().to_list())
        if not erased:
            return rows, rejected
        refused = rows.filter(pl.col("customer_id").is_in(list(erased)))
        reasons = refused.select(
            pl.col(ROW),
            pl.lit("customer_id").alias("field"),
            pl.lit(ERASED_REASON).alias("reason"),
        )
        return rows.filter(pl.col("customer_id").is_in(list(erased)).not_()), pl.concat(
            [rejected, reasons]
        )

    def _normalise(self, good: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        problems: list[tuple[int, str, str]] = []
        email_keys: list[str | None] = []
        phone_keys: list[str | None] = []
        for row_number, email, phone in good.select(ROW, "email", "phone").iter_rows():
            email_key = phone_key = None
            # The reasons name no value: they are kept in the rejects file and the summary,
            # and an e-mail or phone is personal data.
            try:
                email_key = normalize_email(email) if email else None
            except InvalidIdentifier:
                problems.append((row_number, "email", "not an e-mail address"))
            try:
                phone_key = normalize_phone(phone) if phone else None
            except InvalidIdentifier:
                problems.append((row_number, "phone", "not a phone number"))
            email_keys.append(email_key)
            phone_keys.append(phone_key)
        rows = good.with_columns(
            pl.Series("email_key", email_keys, dtype=pl.Utf8),
            pl.Series("phone_key", phone_keys, dtype=pl.Utf8),
        )
        rejected = pl.DataFrame(
            problems, schema={ROW: pl.Int64, "field": pl.Utf8, "reason": pl.Utf8}, orient="row"
        )
        bad = rejected.get_column(ROW).unique()
        return rows.filter(pl.col(ROW).is_in(bad.implode()).not_()), rejected
