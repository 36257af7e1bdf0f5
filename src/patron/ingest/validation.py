"""Vectorised parsing and validation of raw records into typed columns.

Each field rule turns one raw column into a typed column and, for every row where the value
is unusable, a reason. Rows with any reason are rejected with the field and the reason; the
rest go on to the loaders typed and normalised.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import polars as pl

from patron.core.choices import ChannelChoices
from patron.ingest.readers import ROW
from patron.ingest.schemas import RecordKind

ERROR_PREFIX = "__error:"
SeriesParser = Callable[[pl.Series, str], pl.Series]
MONEY = pl.Decimal(18, 4)
MAX_MONEY = 10**13

CHANNEL_ALIASES = {
    "web": "web",
    "website": "web",
    "pc": "web",
    "h5": "web",
    "online": "web",
    "app": "app",
    "mobile_app": "app",
    "ios": "app",
    "android": "app",
    "mini_program": "mini_program",
    "mini-program": "mini_program",
    "miniprogram": "mini_program",
    "wechat": "mini_program",
    "小程序": "mini_program",
    "marketplace": "marketplace",
    "tmall": "marketplace",
    "taobao": "marketplace",
    "jd": "marketplace",
    "pinduoduo": "marketplace",
    "douyin": "marketplace",
    "store": "store",
    "offline": "store",
    "pos": "store",
    "门店": "store",
}
STATUS_ALIASES = {
    "placed": "placed",
    "pending": "placed",
    "created": "placed",
    "new": "placed",
    "paid": "paid",
    "completed": "delivered",
    "complete": "delivered",
    "shipped": "shipped",
    "delivered": "delivered",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "returned": "returned",
    "refunded": "returned",
}
GENDER_ALIASES = {
    "f": "female",
    "female": "female",
    "woman": "female",
    "女": "female",
    "m": "male",
    "male": "male",
    "man": "male",
    "男": "male",
    "other": "other",
    "unknown": "unknown",
    "u": "unknown",
    "": "unknown",
}
EVENT_TYPES = {
    "view": "view",
    "page_view": "view",
    "product_view": "view",
    "search": "search",
    "add_to_cart": "add_to_cart",
    "cart": "add_to_cart",
    "remove_from_cart": "remove_from_cart",
    "checkout": "checkout",
    "purchase": "purchase",
    "login": "login",
}
assert set(CHANNEL_ALIASES.values()) == set(ChannelChoices.values)


@dataclass(frozen=True)
class Rule:
    """How to parse one canonical field: its name, a parser and whether it must be set."""

    field: str
    parse: Callable[[pl.Expr, str], tuple[pl.Expr, pl.Expr]]
    required: bool = False


def _clean(raw: pl.Expr) -> pl.Expr:
    text = raw.cast(pl.Utf8).str.strip_chars()
    return pl.when(text.str.len_chars() == 0).then(None).otherwise(text)


def _no_error() -> pl.Expr:
    return pl.lit(None, dtype=pl.Utf8)


def text(max_length: int) -> Callable[[pl.Expr, str], tuple[pl.Expr, pl.Expr]]:
    """A string field of at most ``max_length`` characters."""

    def parse(raw: pl.Expr, _: str) -> tuple[pl.Expr, pl.Expr]:
        value = _clean(raw)
        error = pl.when(value.str.len_chars() > max_length).then(
            pl.lit(f"longer than {max_length} characters")
        )
        return value, error

    return parse


def identifier(raw: pl.Expr, time_zone: str) -> tuple[pl.Expr, pl.Expr]:
    """An external id: kept as text exactly (``00042`` stays ``00042``), trimmed."""
    return text(128)(raw, time_zone)


_PARSED_DATETIME = pl.Struct({"parsed": pl.Datetime("us", "UTC"), "error": pl.Utf8})


#: The spelling almost every file uses; parsed without the rewriting below.
_PLAIN_DATETIME = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}$"


def _parse_spellings(value: pl.Series) -> tuple[pl.Series, pl.Series, pl.Series]:
    """Any accepted spelling: the local time, the offset in minutes and its sign text."""
    text = (
        value.str.replace(r"[zZ]$", "+00:00")
        .str.replace(r"^(\d{4})(\d{2})(\d{2})", "$1-$2-$3")
        .str.replace(r"^(\d{4})/(\d{2})/(\d{2})", "$1-$2-$3")
        .str.replace(r"^(\d{4}-\d{2}-\d{2})[T ]", "$1 ")
    )
    time_and_offset = r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)([+-]\d{2}:?\d{2})$"
    offset = text.str.extract(time_and_offset, 2)
    local = (
        text.str.replace(time_and_offset, "$1")
        .str.replace(r"^(\d{4}-\d{2}-\d{2})$", "$1 00:00:00")
        .str.replace(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2})$", "$1:00")
    )
    naive = local.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us")
    digits = offset.str.replace(":", "", literal=True)
    minutes = digits.str.slice(1, 2).cast(pl.Int64) * 60 + digits.str.slice(3, 2).cast(pl.Int64)
    return naive, minutes, digits


def _parse_datetimes(value: pl.Series, time_zone: str) -> pl.Series:
    """Parse cleaned date-time text; a struct of the UTC value and the reason it failed.

    Every accepted spelling is first rewritten to ``YYYY-MM-DD HH:MM:SS[.f]`` plus an
    optional offset, so one strict parse serves them all. The plain spelling
    ``YYYY-MM-DD HH:MM:SS`` (or with ``T``), which is what nearly every file holds, skips
    the rewriting: the regular expressions cost ten times the parse. Works on a Series in
    steps, so each intermediate is computed once (an expression tree would repeat the
    shared parts).
    """
    plain = value.str.contains(_PLAIN_DATETIME).fill_null(False)
    naive = value.str.replace("T", " ", literal=True).str.to_datetime(
        "%Y-%m-%d %H:%M:%S", strict=False, time_unit="us"
    )
    minutes = pl.repeat(None, len(value), dtype=pl.Int64, eager=True)
    digits = pl.repeat(None, len(value), dtype=pl.Utf8, eager=True)
    if not plain.all():
        others = plain.not_().arg_true()
        other_naive, other_minutes, other_digits = _parse_spellings(value.gather(others))
        naive = naive.scatter(others, other_naive)
        minutes = minutes.scatter(others, other_minutes)
        digits = digits.scatter(others, other_digits)
    steps = pl.DataFrame({"value": value, "naive": naive, "minutes": minutes, "sign": digits})
    steps = steps.with_columns(
        pl.when(pl.col("minutes").is_null())
        .then(
            pl.col("naive")
            .dt.replace_time_zone(time_zone, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone("UTC")
        )
        .when(pl.col("sign").str.starts_with("-"))
        .then(
            (pl.col("naive") + pl.duration(minutes=pl.col("minutes"))).dt.replace_time_zone("UTC")
        )
        .otherwise(
            (pl.col("naive") - pl.duration(minutes=pl.col("minutes"))).dt.replace_time_zone("UTC")
        )
        .alias("parsed")
    )
    return steps.select(
        pl.struct(
            "parsed",
            pl.when(pl.col("value").is_not_null() & pl.col("parsed").is_null())
            .then(pl.format("not a date or time: {}", pl.col("value")))
            .when(pl.col("parsed").dt.year().is_between(1900, 2200).not_())
            .then(pl.format("date out of range: {}", pl.col("value")))
            .alias("error"),
        ).alias("result")
    ).get_column("result")


def datetime_utc(raw: pl.Expr, time_zone: str) -> tuple[pl.Expr, pl.Expr]:
    """ISO 8601 (with or without offset) or ``YYYYMMDD``; naive times are in ``time_zone``."""
    result = _clean(raw).map_batches(
        lambda value: _parse_datetimes(value, time_zone), return_dtype=_PARSED_DATETIME
    )
    return result.struct.field("parsed"), result.struct.field("error")


def date_only(raw: pl.Expr, time_zone: str) -> tuple[pl.Expr, pl.Expr]:
    """A calendar date (birthday): ISO ``YYYY-MM-DD`` or ``YYYYMMDD``."""
    value = _clean(raw)
    parsed = pl.coalesce(
        [value.str.to_date(fmt, strict=False) for fmt in ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d")]
    )
    error = (
        pl.when(value.is_not_null() & parsed.is_null())
        .then(pl.format("not a date: {}", value))
        .when(parsed.dt.year().is_between(1900, 2200).not_())
        .then(pl.format("date out of range: {}", value))
    )
    return parsed, error


def _only_where(failed: pl.Series, inputs: pl.DataFrame, reason: pl.Expr) -> pl.Series:
    """``reason`` (over the columns of ``inputs``) on the rows where ``failed`` holds, null
    elsewhere. A reason quoting the value is formatted for those rows only: formatting
    every row of a batch, to keep a handful, was most of the cost of parsing a column."""
    errors = pl.repeat(None, len(failed), dtype=pl.Utf8, eager=True)
    failed = failed.fill_null(False)
    if not failed.any():
        return errors
    rows = failed.arg_true()
    return errors.scatter(rows, inputs[rows].select(reason).to_series())


_PARSED_MONEY = pl.Struct({"parsed": MONEY, "error": pl.Utf8})


def _parse_money(value: pl.Series, _: str) -> pl.Series:
    """Cleaned amount text: a struct of the decimal and the reason it failed."""
    text = value.str.replace_all(r"[,¥￥$€£\s]", "")
    parsed = text.cast(MONEY, strict=False)
    failed = (text.is_not_null() & parsed.is_null()) | (parsed < 0) | (parsed >= MAX_MONEY)
    error = _only_where(
        failed,
        pl.DataFrame({"value": text, "parsed": parsed}),
        pl.when(pl.col("parsed").is_null())
        .then(pl.format("not a number: {}", "value"))
        .when(pl.col("parsed") < 0)
        .then(pl.format("negative amount: {}", "value"))
        .otherwise(pl.format("amount too large: {}", "value")),
    )
    return pl.DataFrame({"parsed": parsed, "error": error}).to_struct("result")


def money(raw: pl.Expr, time_zone: str) -> tuple[pl.Expr, pl.Expr]:
    """A non-negative decimal amount (kept exact to four places)."""
    result = _clean(raw).map_batches(
        lambda value: _parse_money(value, time_zone), return_dtype=_PARSED_MONEY
    )
    return result.struct.field("parsed"), result.struct.field("error")


_PARSED_QUANTITY = pl.Struct({"parsed": pl.Int64, "error": pl.Utf8})


def _parse_quantity(value: pl.Series, _: str) -> pl.Series:
    """Cleaned quantity text: a struct of the whole number and the reason it failed."""
    number = value.cast(pl.Float64, strict=False)
    failed = (
        (value.is_not_null() & number.is_null())
        | (number != number.floor())
        | (number <= 0)
        | (number > 1_000_000_000)
    )
    error = _only_where(
        failed,
        pl.DataFrame({"value": value, "number": number}),
        pl.when(pl.col("number").is_null())
        .then(pl.format("not a number: {}", "value"))
        .when(pl.col("number") != pl.col("number").floor())
        .then(pl.format("not a whole number: {}", "value"))
        .when(pl.col("number") < 0)
        .then(pl.format("negative quantity: {} (a return belongs in refund_amount)", "value"))
        .when(pl.col("number") == 0)
        .then(pl.lit("quantity is 0"))
        .otherwise(pl.format("quantity too large: {}", "value")),
    )
    parsed = number.cast(pl.Int64, strict=False)
    return pl.DataFrame({"parsed": parsed, "error": error}).to_struct("result")


def quantity(raw: pl.Expr, time_zone: str) -> tuple[pl.Expr, pl.Expr]:
    """A whole number of units, at least 1."""
    result = _clean(raw).map_batches(
        lambda value: _parse_quantity(value, time_zone), return_dtype=_PARSED_QUANTITY
    )
    return result.struct.field("parsed"), result.struct.field("error")


def choice(aliases: dict[str, str], what: str) -> Callable[[pl.Expr, str], tuple[pl.Expr, pl.Expr]]:
    """One of a fixed set of values, matched case-insensitively through ``aliases``."""
    allowed = ", ".join(sorted(set(aliases.values())))

    def parse(raw: pl.Expr, _: str) -> tuple[pl.Expr, pl.Expr]:
        value = _clean(raw).str.to_lowercase()
        parsed = value.replace_strict(aliases, default=None, return_dtype=pl.Utf8)
        error = pl.when(value.is_not_null() & parsed.is_null()).then(
            pl.format(f"unknown {what} {{}} (use one of: {allowed})", value)
        )
        return parsed, error

    return parse


def currency(raw: pl.Expr, _: str) -> tuple[pl.Expr, pl.Expr]:
    """An ISO 4217 code such as CNY."""
    value = _clean(raw).str.to_uppercase()
    error = pl.when(value.is_not_null() & value.str.contains(r"^[A-Z]{3}$").not_()).then(
        pl.format("not a currency code: {}", value)
    )
    return value, error


def boolean(raw: pl.Expr, _: str) -> tuple[pl.Expr, pl.Expr]:
    """true/false, yes/no, 1/0."""
    value = _clean(raw).str.to_lowercase()
    mapping = {
        "true": True,
        "1": True,
        "yes": True,
        "y": True,
        "false": False,
        "0": False,
        "no": False,
        "n": False,
    }
    parsed = value.replace_strict(mapping, default=None, return_dtype=pl.Boolean)
    error = pl.when(value.is_not_null() & parsed.is_null()).then(
        pl.format("not true or false: {}", value)
    )
    return parsed, error


def _json_object_error(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as error:
        return f"not valid JSON ({error.msg})"
    return None if isinstance(parsed, dict) else "not a JSON object"


def json_object(raw: pl.Expr, _: str) -> tuple[pl.Expr, pl.Expr]:
    """A JSON object (kept as its JSON text)."""
    value = _clean(raw)
    error = value.map_elements(_json_object_error, return_dtype=pl.Utf8, skip_nulls=True)
    return value, error


RULES: dict[RecordKind, tuple[Rule, ...]] = {
    RecordKind.CUSTOMERS: (
        Rule("customer_id", identifier, required=True),
        Rule("name", text(200)),
        Rule("email", text(254)),
        Rule("phone", text(32)),
        Rule("birthday", date_only),
        Rule("address", text(500)),
        Rule("gender", choice(GENDER_ALIASES, "gender")),
        Rule("province", text(64)),
        Rule("city", text(64)),
        Rule("signup_channel", choice(CHANNEL_ALIASES, "channel")),
        Rule("signed_up_at", datetime_utc),
        Rule("tags", text(2000)),
    ),
    RecordKind.PRODUCTS: (
        Rule("product_id", identifier, required=True),
        Rule("sku", text(128)),
        Rule("name", text(500)),
        Rule("category", text(1000)),
        Rule("brand", text(200)),
        Rule("price", money),
        Rule("currency", currency),
        Rule("attributes", json_object),
        Rule("is_active", boolean),
    ),
    RecordKind.ORDERS: (
        Rule("order_id", identifier, required=True),
        Rule("customer_id", identifier, required=True),
        Rule("ordered_at", datetime_utc, required=True),
        Rule("line_id", text(128)),
        Rule("product_id", identifier),
        Rule("product_name", text(500)),
        Rule("quantity", quantity),
        Rule("unit_price", money),
        Rule("line_total", money),
        Rule("currency", currency),
        Rule("status", choice(STATUS_ALIASES, "status")),
        Rule("channel", choice(CHANNEL_ALIASES, "channel")),
        Rule("discount", money),
        Rule("coupon_code", text(64)),
        Rule("refund_amount", money),
        Rule("refunded_at", datetime_utc),
        Rule("refund_reason", text(500)),
    ),
    RecordKind.EVENTS: (
        Rule("event_id", identifier),
        Rule("customer_id", identifier),
        Rule("device_id", text(128)),
        Rule("event_type", choice(EVENT_TYPES, "event type"), required=True),
        Rule("occurred_at", datetime_utc, required=True),
        Rule("product_id", identifier),
        Rule("channel", choice(CHANNEL_ALIASES, "channel")),
        Rule("properties", json_object),
    ),
}


def _prepare_typed(frame: pl.DataFrame, field: str) -> pl.Expr:
    """Typed input from a DataFrame skips string parsing where the type already fits."""
    dtype = frame.schema[field]
    column = pl.col(field)
    if isinstance(dtype, pl.Datetime):
        return column.dt.strftime(
            "%Y-%m-%dT%H:%M:%S%.f%z" if dtype.time_zone else "%Y-%m-%dT%H:%M:%S%.f"
        )
    if isinstance(dtype, pl.Date):
        return column.dt.strftime("%Y-%m-%d")
    if isinstance(dtype, pl.List):
        return column.cast(pl.List(pl.Utf8)).list.join("|")
    if isinstance(dtype, pl.Struct):
        return column.struct.json_encode()
    return column.cast(pl.Utf8)


#: Rules whose parser works on a whole column at once (each step computed once), with the
#: function that returns the struct of the parsed value and the reason it failed.
_SERIES_PARSERS: dict[Callable[[pl.Expr, str], tuple[pl.Expr, pl.Expr]], SeriesParser] = {
    datetime_utc: _parse_datetimes,
    money: _parse_money,
    quantity: _parse_quantity,
}


@dataclass(frozen=True)
class Validated:
    """A batch split into typed good rows and the errors of the bad ones."""

    good: pl.DataFrame
    errors: pl.DataFrame  # columns: __row, field, reason (one row per problem)


def validate(kind: RecordKind, frame: pl.DataFrame, time_zone: str) -> Validated:
    """Parse every canonical column present in ``frame`` (already renamed by the mapping)."""
    ZoneInfo(time_zone)  # fails early and clearly on an unknown zone
    parsed_columns: list[pl.Expr] = []
    error_columns: list[pl.Expr] = []
    for rule in RULES[kind]:
        if rule.field not in frame.columns:
            if rule.parse is datetime_utc:
                absent = pl.lit(None, dtype=pl.Datetime("us", "UTC"))
            else:
                absent, _ = rule.parse(pl.repeat(None, pl.len(), dtype=pl.Utf8), time_zone)
            parsed_columns.append(absent.alias(rule.field))
            if rule.required:
                error_columns.append(pl.lit("missing").alias(ERROR_PREFIX + rule.field))
            continue
        raw = _prepare_typed(frame, rule.field)
        series_parser = _SERIES_PARSERS.get(rule.parse)
        if series_parser is not None:
            # Parsed once here: inside the expression the value and the error would each
            # run the parser.
            parsed = series_parser(frame.select(_clean(raw)).to_series(), time_zone)
            name = f"__parsed_{rule.field}"
            frame = frame.with_columns(parsed.alias(name))
            value, error = pl.col(name).struct.field("parsed"), pl.col(name).struct.field("error")
        else:
            value, error = rule.parse(raw, time_zone)
        # Invalid bytes were replaced by U+FFFD while reading.
        error = (
            pl.when(raw.cast(pl.Utf8).str.contains("\ufffd", literal=True))
            .then(
                pl.lit(
                    "not valid text in the file's encoding (save it as UTF-8 or pass --encoding)"
                )
            )
            .otherwise(error)
        )
        if rule.required:
            error = pl.when(_clean(raw).is_null()).then(pl.lit("missing")).otherwise(error)
        parsed_columns.append(value.alias(rule.field))
        error_columns.append(error.alias(ERROR_PREFIX + rule.field))
    if "__error" in frame.columns:
        error_columns.append(pl.col("__error").alias(ERROR_PREFIX + "record"))
    typed = frame.select(pl.col(ROW), *parsed_columns, *error_columns)
    typed = _cross_field_checks(kind, typed)
    error_names = [name for name in typed.columns if name.startswith(ERROR_PREFIX)]
    is_bad = (
        typed.select(pl.any_horizontal(pl.col(error_names).is_not_null())).to_series()
        if error_names
        else pl.repeat(False, typed.height, dtype=pl.Boolean, eager=True)
    )
    # Only the bad rows are unpivoted (one row per field of every row was most of the
    # cost when, as usual, there are few or none).
    errors = (
        typed.filter(is_bad)
        .select(ROW, *error_names)
        .unpivot(index=ROW, on=error_names, variable_name="field", value_name="reason")
        .drop_nulls("reason")
        .with_columns(pl.col("field").str.strip_prefix(ERROR_PREFIX))
        .sort(ROW, maintain_order=True)
    )
    good = typed.filter(is_bad.not_()).drop(error_names)
    return Validated(good=good, errors=errors)


def _add_error(typed: pl.DataFrame, field: str, condition: pl.Expr, reason: str) -> pl.DataFrame:
    """Set ``reason`` on ``field`` where ``condition`` holds and the field has no error yet."""
    name = ERROR_PREFIX + field
    existing = pl.col(name) if name in typed.columns else pl.lit(None, dtype=pl.Utf8)
    return typed.with_columns(
        pl.coalesce(existing, pl.when(condition).then(pl.lit(reason))).alias(name)
    )


def _cross_field_checks(kind: RecordKind, typed: pl.DataFrame) -> pl.DataFrame:
    def valid(field: str) -> pl.Expr:
        name = ERROR_PREFIX + field
        return pl.col(name).is_null() if name in typed.columns else pl.lit(True)

    if kind is RecordKind.ORDERS:
        typed = _add_error(
            typed,
            "line_total",
            (pl.col("quantity").is_null() | pl.col("unit_price").is_null())
            & pl.col("line_total").is_null()
            & valid("quantity")
            & valid("unit_price")
            & valid("line_total"),
            "give quantity and unit_price, or line_total",
        )
        typed = _add_error(
            typed,
            "refunded_at",
            (pl.col("refund_amount") > 0) & pl.col("refunded_at").is_null() & valid("refunded_at"),
            "refunded_at is needed with refund_amount",
        )
    if kind is RecordKind.EVENTS:
        typed = _add_error(
            typed,
            "customer_id",
            pl.col("customer_id").is_null() & pl.col("device_id").is_null() & valid("device_id"),
            "give customer_id or device_id",
        )
    return typed
