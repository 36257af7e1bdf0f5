"""The synthetic retail world of the demo shop, drawn from a known hidden process.

:func:`generate_world` turns a :class:`DemoConfig` into a :class:`DemoWorld`: polars frames in
the canonical ingest columns (customers, products, orders, events) and the truth tables
(the population parameters and, per person, the hidden purchase rate, dropout probability and
expected spend) that models are checked against. See ``patron.demo.process`` for the process.

The world is made by *stages*, each drawing from its own random stream
(``numpy.random.default_rng([seed, stream])``), so a stage added later (reviews, tickets,
surveys) never changes what the existing stages draw. A new stage is a function taking the
config, its stream and the frames it builds on, returning its frame; add its field to
:class:`DemoWorld` and its stream number to ``_STREAMS``.

No Django here (numpy and polars only), so the generator can be used alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import polars as pl

from patron.demo import vocabulary
from patron.demo.process import (
    HOURS_PER_WEEK,
    FloatArray,
    IntArray,
    PurchaseDraws,
    Seasonality,
    build_seasonality,
    draw_purchases,
    expected_repeat_purchases,
)

BoolArray = npt.NDArray[np.bool_]

#: Random stream of each stage. Never renumber one: it would change every world drawn before.
_STREAMS = {"people": 1, "catalog": 2, "purchases": 3, "orders": 4, "events": 5, "addresses": 6}

ORDER_STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled", "returned")
EVENT_TYPES = (
    "view", "search", "add_to_cart", "remove_from_cart", "checkout", "purchase", "login",
)  # fmt: skip
CHANNELS = ("web", "app", "mini_program", "marketplace", "store")
GENDERS = ("female", "male", "other", "unknown")

CUSTOMER_COLUMNS = (
    "customer_id", "name", "email", "phone", "birthday", "address", "gender", "province",
    "city", "signup_channel", "signed_up_at", "tags",
)  # fmt: skip
#: Parts of the demo's postal addresses (districts and streets common to most Chinese cities).
ADDRESS_DISTRICTS = ("高新区", "经济开发区", "新区", "东城区", "西城区", "南湖区")
ADDRESS_STREETS = ("人民路", "解放路", "中山路", "建设路", "和平路", "新华路", "文化路", "长江路")
PRODUCT_COLUMNS = ("product_id", "name", "category", "brand", "price", "currency", "attributes")
ORDER_COLUMNS = (
    "order_id", "customer_id", "ordered_at", "product_id", "product_name", "quantity",
    "unit_price", "currency", "status", "channel", "discount", "coupon_code", "refund_amount",
    "refunded_at", "refund_reason",
)  # fmt: skip
EVENT_COLUMNS = (
    "event_id", "customer_id", "device_id", "event_type", "occurred_at", "product_id", "channel",
    "properties",
)  # fmt: skip

_MONEY = pl.Decimal(18, 2)
_SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class DemoParameters:
    """Population parameters of the hidden process (time unit: the week; money: the currency).

    ``r, alpha``: purchase rate ``λ ~ Gamma(r, rate=alpha)`` (mean ``r/alpha`` per week);
    ``a, b``: dropout probability ``p ~ Beta(a, b)``; ``p, q, gamma``: spend per order
    ``z ~ Gamma(p, rate=ν)``, ``ν ~ Gamma(q, rate=gamma)`` (mean ``p·gamma/(q−1)``).
    """

    r: float = 0.6
    alpha: float = 5.0
    a: float = 0.8
    b: float = 3.2
    p: float = 5.0
    q: float = 4.0
    gamma: float = 100.0
    #: Share of customers who buy at all (the others only signed up).
    buyer_share: float = 0.88
    #: Share of people with a second customer account (same phone or e-mail, other format).
    duplicate_share: float = 0.01
    #: Share of repeat purchases preceded by an order the customer cancelled (noise outside
    #: the process: drop cancelled orders and the rest is exactly the BG/NBD draw).
    cancelled_share: float = 0.03
    #: Share of delivered orders returned in full, and partly refunded.
    returned_share: float = 0.04
    partial_refund_share: float = 0.03


@dataclass(frozen=True)
class DemoConfig:
    """What to generate: ``customers`` people, reproducible by ``seed``, observed for
    ``window_days`` days ending at midnight (shop time) starting ``as_of``."""

    customers: int = 20_000
    seed: int = 42
    as_of: date | None = None
    time_zone: str = "Asia/Shanghai"
    currency: str = "CNY"
    window_days: int = 730
    #: Behaviour events are kept for the last ``event_days`` of the window (shops keep
    #: click-streams for a limited time, and they are most of the rows to import).
    event_days: int = 365
    products: int = 1_000
    parameters: DemoParameters = field(default_factory=DemoParameters)

    def end_date(self) -> date:
        """The day the observation window ends (exclusive): ``as_of``, or today in the shop."""
        return self.as_of or datetime.now(ZoneInfo(self.time_zone)).date()


@dataclass(frozen=True)
class DemoTruth:
    """What a model fitted to the demo shop should find: the parameters it was drawn from."""

    seed: int
    customers: int
    observation_start: datetime
    observation_end: datetime
    time_zone: str
    currency: str
    parameters: DemoParameters
    time_unit: str = "week"

    def to_json(self) -> dict[str, Any]:
        """The truth as a JSON-ready dict (what ``truth.json`` holds)."""
        return {
            "seed": self.seed,
            "customers": self.customers,
            "observation_start": self.observation_start.isoformat(),
            "observation_end": self.observation_end.isoformat(),
            "observation_weeks": (self.observation_end - self.observation_start).days / 7,
            "time_zone": self.time_zone,
            "time_unit": self.time_unit,
            "currency": self.currency,
            "parameters": asdict(self.parameters),
            "process": (
                "BG/NBD purchases (rate ~ Gamma(r, alpha) per operational week, dropout "
                "probability ~ Beta(a, b) after each repeat purchase) with gamma-gamma spend "
                "(order total ~ Gamma(p, nu), nu ~ Gamma(q, gamma)); seasonality s(t) with mean "
                "1 over the window: operational weeks = integral of s."
            ),
        }

    def to_json_text(self) -> str:
        """``to_json`` serialised, keys sorted, for a stable file."""
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class DemoWorld:
    """A generated shop: frames in the canonical ingest columns, and the truth behind them.

    ``customers`` holds one row per customer *account* (people plus their duplicate accounts),
    ``orders`` one row per order line, ``events`` one row per behaviour event.
    ``truth_customers`` holds one row per person (see :func:`generate_world` for its columns).
    """

    config: DemoConfig
    truth: DemoTruth
    customers: pl.DataFrame
    products: pl.DataFrame
    orders: pl.DataFrame
    events: pl.DataFrame
    truth_customers: pl.DataFrame

    @property
    def duplicate_accounts(self) -> int:
        """Number of customer accounts that are a second account of another person."""
        return int(self.truth_customers["duplicate_customer_id"].is_not_null().sum())


def _rng(config: DemoConfig, stage: str) -> np.random.Generator:
    return np.random.default_rng([config.seed, _STREAMS[stage]])


def _choice(rng: np.random.Generator, weights: npt.ArrayLike, size: int) -> IntArray:
    """Indexes drawn with probability proportional to ``weights``."""
    array = np.asarray(weights, dtype=np.float64)
    return rng.choice(array.shape[0], size=size, p=array / array.sum()).astype(np.int64)


def _pick(values: tuple[str, ...], index: IntArray) -> npt.NDArray[np.object_]:
    return np.array(values, dtype=object)[index]


def _strings(values: npt.NDArray[np.object_] | list[str]) -> pl.Series:
    """A String column from an object array holding ``str`` and ``None``."""
    # From a list: polars reads a numpy object array as Object when it starts with None.
    return pl.Series([None if value is None else str(value) for value in values], dtype=pl.String)


def _gather(
    values: npt.NDArray[np.object_] | list[str],
    index: IntArray,
    keep: BoolArray | None = None,
) -> pl.Series:
    """``values[index]`` as a String column, null where ``keep`` is false."""
    series = _strings(values).gather(index)
    if keep is not None:
        series = series.scatter(np.flatnonzero(~keep), None)
    return series


def _money(cents: IntArray) -> pl.Series:
    """Integer cents as a Decimal(18, 2) column (formatted in integers: no float rounding)."""
    series = pl.Series(np.asarray(cents, dtype=np.int64))
    text = pl.DataFrame({"c": series}).select(
        pl.when(pl.col("c") < 0).then(pl.lit("-")).otherwise(pl.lit(""))
        + (pl.col("c").abs() // 100).cast(pl.String)
        + "."
        + (pl.col("c").abs() % 100).cast(pl.String).str.zfill(2)
    )
    return text.to_series().cast(_MONEY)


def _datetimes(start: datetime, hours: FloatArray) -> pl.Series:
    """Naive shop-time datetimes at ``hours`` after ``start``, to the second (NaN → null)."""
    base = int((start - datetime(1970, 1, 1)).total_seconds())
    seconds = np.floor(np.nan_to_num(hours, nan=0.0) * _SECONDS_PER_HOUR).astype(np.int64) + base
    series = pl.Series(seconds * 1_000_000).cast(pl.Datetime("us"))
    if np.isnan(hours).any():
        series = series.set(pl.Series(np.isnan(hours)), None)
    return series


# --------------------------------------------------------------------------------------------
# Stage 1: people (names, contact details, places, sign-up) and their duplicate accounts.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _People:
    count: int
    name: npt.NDArray[np.object_]
    email: npt.NDArray[np.object_]  # None where the person gave none
    phone_digits: npt.NDArray[np.object_]
    phone_format: IntArray
    gender: IntArray
    birthday_days: npt.NDArray[np.float64]  # days since 1970-01-01, NaN where unknown
    place: IntArray  # index into vocabulary.PLACES, -1 where unknown
    channel: IntArray  # index into CHANNELS (sign-up channel)
    signup_hours: FloatArray
    tags: list[list[str]]
    favourite: IntArray  # (count, 2) leaf category indexes


_PHONE_FORMATS = 5


def _format_phones(digits: npt.NDArray[np.object_], style: IntArray) -> npt.NDArray[np.object_]:
    """Chinese mobile numbers as people type them: ``13812345678``, ``138 1234 5678``,
    ``+86 13812345678``, ``+86-138-1234-5678``, ``138-1234-5678``."""
    frame = pl.DataFrame({"d": _strings(digits), "s": style})
    head, mid, tail = (
        pl.col("d").str.slice(0, 3),
        pl.col("d").str.slice(3, 4),
        pl.col("d").str.slice(7, 4),
    )
    formatted = frame.select(
        pl.when(pl.col("d").is_null())
        .then(None)
        .when(pl.col("s") == 1)
        .then(pl.concat_str([head, mid, tail], separator=" "))
        .when(pl.col("s") == 2)
        .then("+86 " + pl.col("d"))
        .when(pl.col("s") == 3)
        .then("+86-" + pl.concat_str([head, mid, tail], separator="-"))
        .when(pl.col("s") == 4)
        .then(pl.concat_str([head, mid, tail], separator="-"))
        .otherwise(pl.col("d"))
    ).to_series()
    return np.array(formatted.to_list(), dtype=object)


def _draw_people(config: DemoConfig, rng: np.random.Generator, season: Seasonality) -> _People:
    count = config.customers
    gender = _choice(rng, [0.55, 0.39, 0.01, 0.05], count)
    is_male = gender == 1
    is_english = rng.random(count) < 0.07

    surname_weights = 1.0 / np.arange(1, len(vocabulary.SURNAMES) + 1) ** 0.8
    surname = _choice(rng, surname_weights, count)
    given_pool = np.where(is_male, 1, 0)
    given_lists = (vocabulary.GIVEN_FEMALE, vocabulary.GIVEN_MALE)
    first_char = rng.integers(0, len(vocabulary.GIVEN_FEMALE), count)
    second_char = rng.integers(0, len(vocabulary.GIVEN_FEMALE), count)
    has_second = rng.random(count) < 0.7
    names, handles = [], []
    english_first = rng.integers(0, len(vocabulary.ENGLISH_FIRST_FEMALE), count)
    english_last = rng.integers(0, len(vocabulary.ENGLISH_LAST), count)
    for index in range(count):
        if is_english[index]:
            firsts = (
                vocabulary.ENGLISH_FIRST_MALE if is_male[index] else vocabulary.ENGLISH_FIRST_FEMALE
            )
            first, last = firsts[english_first[index]], vocabulary.ENGLISH_LAST[english_last[index]]
            names.append(f"{first} {last}")
            handles.append((first.lower(), last.lower()))
            continue
        family, family_pinyin = vocabulary.SURNAMES[surname[index]]
        pool = given_lists[given_pool[index]]
        given, given_pinyin = pool[first_char[index]]
        if has_second[index]:
            extra, extra_pinyin = pool[second_char[index]]
            given, given_pinyin = given + extra, given_pinyin + extra_pinyin
        names.append(family + given)
        handles.append((given_pinyin, family_pinyin))

    email = _draw_emails(rng, handles)
    phone_digits = _draw_phone_digits(rng, count)
    has_phone = rng.random(count) < 0.93
    phone_digits[~has_phone] = None
    phone_format = _choice(rng, [0.68, 0.13, 0.08, 0.05, 0.06], count)

    age_years = np.clip(rng.normal(32, 9, count), 16, 70)
    end_days = (config.end_date() - date(1970, 1, 1)).days
    birthday_days = np.floor(end_days - age_years * 365.25)
    birthday_days[rng.random(count) < 0.35] = np.nan

    place = _choice(rng, [weight for _, _, weight in vocabulary.PLACES], count)
    place[rng.random(count) < 0.05] = -1
    channel_weights = [dict(vocabulary.SIGNUP_CHANNELS)[name] for name in CHANNELS]
    channel = _choice(rng, channel_weights, count)

    # Sign-ups follow the shop's seasonality and its growth (busier in the second year).
    growth = 0.6 + 0.8 * np.arange(season.hours) / season.hours
    weights = season.intensity * growth
    cumulative = np.cumsum(weights) / weights.sum()
    hour = np.searchsorted(cumulative, rng.random(count))
    signup_hours = np.minimum(hour + rng.random(count), season.hours - 1e-3)

    tag_count = np.where(rng.random(count) < 0.25, rng.integers(1, 3, count), 0)
    tag_index = rng.integers(0, len(vocabulary.CUSTOMER_TAGS), (count, 2))
    tags = [
        sorted({vocabulary.CUSTOMER_TAGS[tag_index[i, k]] for k in range(tag_count[i])})
        for i in range(count)
    ]

    female = np.array([c.popularity * c.female_affinity for c in vocabulary.CATEGORIES])
    male = np.array([c.popularity * c.male_affinity for c in vocabulary.CATEGORIES])
    neutral = np.array([c.popularity for c in vocabulary.CATEGORIES])
    favourite = np.empty((count, 2), dtype=np.int64)
    for group, weights_of_group in ((0, female), (1, male)):
        members = np.flatnonzero(gender == group)
        favourite[members] = _choice(rng, weights_of_group, 2 * members.shape[0]).reshape(-1, 2)
    others = np.flatnonzero(gender >= 2)
    favourite[others] = _choice(rng, neutral, 2 * others.shape[0]).reshape(-1, 2)

    return _People(
        count=count,
        name=np.array(names, dtype=object),
        email=email,
        phone_digits=phone_digits,
        phone_format=phone_format,
        gender=gender,
        birthday_days=birthday_days,
        place=place,
        channel=channel,
        signup_hours=signup_hours,
        tags=tags,
        favourite=favourite,
    )


def _draw_emails(
    rng: np.random.Generator, handles: list[tuple[str, str]]
) -> npt.NDArray[np.object_]:
    """E-mail addresses for about two thirds of the people, unique (a number is appended
    to an address already taken, as mail providers make people do)."""
    count = len(handles)
    domains = [domain for domain, _ in vocabulary.EMAIL_DOMAINS]
    domain = _choice(rng, [share for _, share in vocabulary.EMAIL_DOMAINS], count)
    style = rng.integers(0, 4, count)
    number = rng.integers(1, 2000, count)
    qq_number = rng.integers(100_000, 3_999_999_999, count)
    has_email = rng.random(count) < 0.66
    emails: list[str | None] = []
    taken: set[str] = set()
    for index, (given, family) in enumerate(handles):
        if not has_email[index]:
            emails.append(None)
            continue
        if domains[domain[index]] in ("qq.com", "foxmail.com") and style[index] < 3:
            local = str(qq_number[index])
        elif style[index] == 0:
            local = f"{family}{given}"
        elif style[index] == 1:
            local = f"{given}.{family}"
        else:
            local = f"{family}{given}{number[index]}"
        address = f"{local}@{domains[domain[index]]}"
        while address in taken:
            address = f"{local}{index}@{domains[domain[index]]}"
            local = f"{local}{index}"
        taken.add(address)
        emails.append(address)
    return np.array(emails, dtype=object)


def _draw_phone_digits(rng: np.random.Generator, count: int) -> npt.NDArray[np.object_]:
    """Distinct 11-digit mainland mobile numbers."""
    prefixes = np.array([int(prefix) for prefix in vocabulary.MOBILE_PREFIXES], dtype=np.int64)
    numbers = np.empty(0, dtype=np.int64)
    while numbers.shape[0] < count:
        more = prefixes[rng.integers(0, prefixes.shape[0], count)] * 100_000_000 + rng.integers(
            0, 100_000_000, count
        )
        numbers = np.concatenate([numbers, more])
        _, first = np.unique(numbers, return_index=True)
        numbers = numbers[np.sort(first)]
    return np.array([str(number) for number in numbers[:count]], dtype=object)


# --------------------------------------------------------------------------------------------
# Stage 2: the catalogue.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Catalog:
    frame: pl.DataFrame
    category: IntArray  # leaf index per product, products sorted by (category, price)
    price_cents: IntArray
    name: npt.NDArray[np.object_]
    product_id: npt.NDArray[np.object_]
    category_start: IntArray  # first product of each leaf
    category_end: IntArray  # one past its last product


def _draw_catalog(config: DemoConfig, rng: np.random.Generator) -> _Catalog:
    leaves = vocabulary.CATEGORIES
    popularity = np.array([leaf.popularity for leaf in leaves])
    # Every leaf gets at least 8 products; the rest are shared by popularity.
    minimum = 8
    extra = rng.multinomial(config.products - minimum * len(leaves), popularity / popularity.sum())
    per_leaf = extra + minimum
    category = np.repeat(np.arange(len(leaves)), per_leaf)
    low = np.log([leaves[c].min_price for c in category])
    high = np.log([leaves[c].max_price for c in category])
    # Log-uniform prices ending in 9 (the way Chinese shops price: 59, 129, 1999).
    raw = np.exp(low + (high - low) * rng.random(category.shape[0]))
    price_cents = (np.maximum(np.round(raw / 10) * 10 - 1, 9) * 100).astype(np.int64)
    order = np.lexsort((price_cents, category))
    category, price_cents = category[order], price_cents[order]
    count: int = category.shape[0]

    adjective = rng.integers(0, len(vocabulary.PRODUCT_ADJECTIVES), count)
    item = rng.integers(0, 100, count)
    brand = rng.integers(0, 100, count)
    attribute_value = rng.integers(0, 100, count)
    names, brands, attributes = [], [], []
    for index in range(count):
        leaf = leaves[category[index]]
        leaf_brands = vocabulary.BRANDS[leaf.top]
        attribute_name, values = leaf.attribute
        brand_name = leaf_brands[brand[index] % len(leaf_brands)]
        value = values[attribute_value[index] % len(values)]
        noun = leaf.items[item[index] % len(leaf.items)]
        names.append(
            f"{brand_name} {vocabulary.PRODUCT_ADJECTIVES[adjective[index]]}{noun} {value}"
        )
        brands.append(brand_name)
        attributes.append(json.dumps({attribute_name: value}, ensure_ascii=False))
    product_id = np.array([f"P{index + 1:05d}" for index in range(count)], dtype=object)
    frame = pl.DataFrame(
        {
            "product_id": _strings(product_id),
            "name": names,
            "category": [leaves[c].path for c in category],
            "brand": brands,
            "price": _money(price_cents),
            "currency": [config.currency] * count,
            "attributes": attributes,
        }
    )
    category_end = np.cumsum(per_leaf)
    return _Catalog(
        frame=frame,
        category=category,
        price_cents=price_cents,
        name=np.array(names, dtype=object),
        product_id=product_id,
        category_start=category_end - per_leaf,
        category_end=category_end,
    )


# --------------------------------------------------------------------------------------------
# Stage 3: the hidden process (who buys when, and how much).
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Process:
    purchase_rate: FloatArray
    dropout_probability: FloatArray
    spend_rate: FloatArray  # ν per person
    first_purchase_hours: FloatArray  # NaN: never bought
    draws: PurchaseDraws
    spend_cents: IntArray  # per purchase (draws order): the order's total after discount


def _draw_process(
    config: DemoConfig, rng: np.random.Generator, season: Seasonality, people: _People
) -> _Process:
    parameters = config.parameters
    count = people.count
    purchase_rate = rng.gamma(parameters.r, 1.0 / parameters.alpha, count)
    dropout_probability = rng.beta(parameters.a, parameters.b, count)
    # A dropout probability of exactly 0 breaks the geometric draw; beta draws can underflow.
    dropout_probability = np.clip(dropout_probability, 1e-9, 1.0)
    spend_rate = rng.gamma(parameters.q, 1.0 / parameters.gamma, count)
    is_buyer = rng.random(count) < parameters.buyer_share
    # Half buy within the hour of signing up; the others come back days later.
    delay = np.where(
        rng.random(count) < 0.5, rng.uniform(0.05, 1.0, count), rng.exponential(72.0, count)
    )
    first = people.signup_hours + delay
    first_purchase_hours = np.where(is_buyer & (first < season.hours), first, np.nan)
    draws = draw_purchases(rng, season, first_purchase_hours, purchase_rate, dropout_probability)
    spend = rng.gamma(parameters.p, 1.0 / spend_rate[draws.customer])
    # An order costs at least ¥1 (the gamma's far left tail; about one order in 10^5).
    spend_cents = np.maximum(np.round(spend * 100), 100).astype(np.int64)
    return _Process(
        purchase_rate=purchase_rate,
        dropout_probability=dropout_probability,
        spend_rate=spend_rate,
        first_purchase_hours=first_purchase_hours,
        draws=draws,
        spend_cents=spend_cents,
    )


# --------------------------------------------------------------------------------------------
# Stage 4: accounts (people and duplicates) and orders.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Accounts:
    """Customer accounts: ``person[k]`` is the person of account ``k``; accounts ``< count``
    are the people's own, the rest their duplicate accounts."""

    person: IntArray
    signup_hours: FloatArray
    customer_id: npt.NDArray[np.object_]
    duplicate_of_person: IntArray  # per duplicate account (index into people)
    duplicate_by_email: BoolArray


def _draw_accounts(rng: np.random.Generator, people: _People, share: float) -> _Accounts:
    count = people.count
    wanted = round(count * share)
    candidates = np.flatnonzero((people.phone_digits != None) | (people.email != None))  # noqa: E711
    duplicated = np.sort(
        rng.choice(candidates, size=min(wanted, candidates.shape[0]), replace=False)
    )
    has_email = people.email[duplicated] != None  # noqa: E711
    has_phone = people.phone_digits[duplicated] != None  # noqa: E711
    by_email = has_email & (~has_phone | (rng.random(duplicated.shape[0]) < 0.4))
    # The second account is opened some time after the first, before the window ends.
    start = people.signup_hours[duplicated]
    horizon = people.signup_hours.max()
    duplicate_signup = start + rng.random(duplicated.shape[0]) * (horizon - start)
    person = np.concatenate([np.arange(count), duplicated])
    signup = np.concatenate([people.signup_hours, duplicate_signup])
    # Customer ids follow the sign-up order, as a shop's own ids do.
    order = np.lexsort((np.arange(person.shape[0]), signup))
    customer_id = np.empty(person.shape[0], dtype=object)
    customer_id[order] = [f"C{rank + 1:06d}" for rank in range(person.shape[0])]
    return _Accounts(
        person=person,
        signup_hours=signup,
        customer_id=customer_id,
        duplicate_of_person=duplicated,
        duplicate_by_email=by_email,
    )


def _customers_frame(
    config: DemoConfig, rng: np.random.Generator, people: _People, accounts: _Accounts
) -> pl.DataFrame:
    person = accounts.person
    is_duplicate = np.arange(person.shape[0]) >= people.count
    email = people.email[person].copy()
    phone_format = people.phone_format[person].copy()
    phone_digits = people.phone_digits[person].copy()
    duplicate_rows = np.flatnonzero(is_duplicate)
    by_email = accounts.duplicate_by_email
    # A duplicate account shares exactly one identifier with its person, written differently.
    phone_format[duplicate_rows] = (
        phone_format[duplicate_rows] + rng.integers(1, _PHONE_FORMATS, duplicate_rows.shape[0])
    ) % _PHONE_FORMATS
    phone_digits[duplicate_rows[by_email]] = None
    email_variant = rng.integers(0, 3, duplicate_rows.shape[0])
    for row, use_email, variant in zip(duplicate_rows, by_email, email_variant, strict=True):
        if not use_email:
            email[row] = None
        elif variant == 0:
            email[row] = str(email[row]).upper()
        elif variant == 1:
            local, domain = str(email[row]).split("@")
            email[row] = f"{local}@{domain.upper()}"
        else:
            email[row] = f" {email[row]} "
    place = people.place[person]
    provinces = np.array([p for p, _, _ in vocabulary.PLACES] + [None], dtype=object)
    cities = np.array([c for _, c, _ in vocabulary.PLACES] + [None], dtype=object)
    place_index = np.where(place < 0, len(vocabulary.PLACES), place)
    channel = people.channel[person].copy()
    channel[duplicate_rows] = rng.integers(0, len(CHANNELS), duplicate_rows.shape[0])
    birthday = people.birthday_days[person].copy()
    birthday[duplicate_rows] = np.nan
    tags = [people.tags[p] if not dup else [] for p, dup in zip(person, is_duplicate, strict=True)]
    season_start = datetime.combine(config.end_date(), datetime.min.time()) - timedelta(
        days=config.window_days
    )
    frame = pl.DataFrame(
        {
            "customer_id": _strings(accounts.customer_id),
            "name": _strings(people.name[person]),
            "email": _strings(email),
            "phone": _strings(_format_phones(phone_digits, phone_format)),
            "birthday": pl.Series(birthday, nan_to_null=True).cast(pl.Int32).cast(pl.Date),
            "address": _strings(
                _draw_addresses(_rng(config, "addresses"), place_index, is_duplicate)
            ),
            "gender": _strings(_pick(GENDERS, people.gender[person])),
            "province": _strings(provinces[place_index]),
            "city": _strings(cities[place_index]),
            "signup_channel": _strings(_pick(CHANNELS, channel)),
            "signed_up_at": _datetimes(season_start, accounts.signup_hours),
            "tags": pl.Series(tags, dtype=pl.List(pl.String)),
        }
    )
    return frame.sort("customer_id")


def _draw_addresses(
    rng: np.random.Generator, place_index: IntArray, is_duplicate: BoolArray
) -> npt.NDArray[np.object_]:
    """A postal address in the account's city for about half of the first accounts
    (``浙江省杭州市高新区文化路88号``; a municipality is not repeated: ``上海市新区人民路5号``);
    none for second accounts and unknown places. Drawn from its own stream."""
    count = place_index.shape[0]
    district: list[int] = _choice(rng, [1.0] * len(ADDRESS_DISTRICTS), count).tolist()
    street: list[int] = _choice(rng, [1.0] * len(ADDRESS_STREETS), count).tolist()
    number: list[int] = (_choice(rng, [1.0] * 999, count) + 1).tolist()
    given = rng.random(count) < 0.5
    addresses = np.full(count, None, dtype=object)
    for row in np.flatnonzero(given & ~is_duplicate & (place_index < len(vocabulary.PLACES))):
        province, city, _ = vocabulary.PLACES[int(place_index[row])]
        area = f"{city}市" if province == city else f"{province}省{city}市"
        addresses[row] = (
            f"{area}{ADDRESS_DISTRICTS[district[row]]}{ADDRESS_STREETS[street[row]]}{number[row]}号"
        )
    return addresses


@dataclass(frozen=True)
class _Orders:
    """One row per order (process purchases and cancelled ones), sorted by time."""

    frame: pl.DataFrame  # order lines, canonical columns
    order_id: npt.NDArray[np.object_]
    account: IntArray
    hours: FloatArray
    channel: IntArray
    total_cents: IntArray
    line_order: IntArray  # per line: order index
    line_product: IntArray  # per line: product index
    line_quantity: IntArray
    is_cancelled: BoolArray


def _draw_orders(
    config: DemoConfig,
    rng: np.random.Generator,
    season: Seasonality,
    people: _People,
    accounts: _Accounts,
    catalog: _Catalog,
    process: _Process,
) -> _Orders:
    parameters = config.parameters
    draws = process.draws
    person = draws.customer
    hours = draws.hours
    spend = process.spend_cents
    is_cancelled = np.zeros(person.shape[0], bool)
    # Cancelled orders: a few minutes to hours before some repeat purchases, at about its value.
    cancelled = np.flatnonzero(
        ~draws.is_first & (rng.random(person.shape[0]) < parameters.cancelled_share)
    )
    cancelled_hours = np.maximum(
        hours[cancelled] - rng.uniform(0.05, 3.0, cancelled.shape[0]),
        people.signup_hours[person[cancelled]],
    )
    cancelled_spend = np.maximum(
        np.round(spend[cancelled] * rng.uniform(0.6, 1.4, cancelled.shape[0])), 100
    ).astype(np.int64)
    person = np.concatenate([person, person[cancelled]])
    hours = np.concatenate([hours, cancelled_hours])
    spend = np.concatenate([spend, cancelled_spend])
    is_cancelled = np.concatenate([is_cancelled, np.ones(cancelled.shape[0], bool)])
    order_count: int = person.shape[0]

    # Which account placed the order: a person with a second account uses it half the time
    # once it exists.
    duplicate_account = np.full(people.count, -1)
    duplicate_account[accounts.duplicate_of_person] = people.count + np.arange(
        accounts.duplicate_of_person.shape[0]
    )
    second = duplicate_account[person]
    uses_second = (second >= 0) & (rng.random(order_count) < 0.5)
    uses_second &= hours >= accounts.signup_hours[np.maximum(second, 0)]
    account = np.where(uses_second, second, person)

    preferred = people.channel[person]
    channel_weights = [0.16, 0.3, 0.3, 0.19, 0.05]
    channel = np.where(
        rng.random(order_count) < 0.65, preferred, _choice(rng, channel_weights, order_count)
    )

    order_sort = np.lexsort((np.arange(order_count), hours))
    person, hours, spend, is_cancelled, account, channel = (
        person[order_sort],
        hours[order_sort],
        spend[order_sort],
        is_cancelled[order_sort],
        account[order_sort],
        channel[order_sort],
    )
    order_id = np.array([f"O{index + 1:08d}" for index in range(order_count)], dtype=object)

    month_day = _month_day(season, hours)
    discount_cents, coupon = _draw_discounts(rng, spend, month_day)
    subtotal = spend + discount_cents

    lines = _draw_lines(rng, people, catalog, person, subtotal)
    line_order, line_product, line_quantity, line_unit = lines
    # The order's total is the gamma-gamma draw up to the cents lost in splitting the subtotal
    # into whole-cent unit prices (less than ¥0.10 per unit).
    line_total = line_quantity * line_unit
    total_cents = (
        np.bincount(line_order, weights=line_total, minlength=order_count).astype(np.int64)
        - discount_cents
    )

    status, refund_cents, refund_hours, refund_reason = _draw_fulfilment(
        rng, parameters, season, hours, total_cents, is_cancelled, channel
    )
    season_start = season.start
    ids = order_id[line_order]
    frame = pl.DataFrame(
        {
            "order_id": _strings(ids),
            "customer_id": _strings(accounts.customer_id[account[line_order]]),
            "ordered_at": _datetimes(season_start, hours[line_order]),
            "product_id": _strings(catalog.product_id[line_product]),
            "product_name": _strings(catalog.name[line_product]),
            "quantity": pl.Series(line_quantity, dtype=pl.Int64),
            "unit_price": _money(line_unit),
            "currency": _strings([config.currency] * line_order.shape[0]),
            "status": _strings(_pick(ORDER_STATUSES, status[line_order])),
            "channel": _strings(_pick(CHANNELS, channel[line_order])),
            "discount": _money(discount_cents[line_order]),
            "coupon_code": _strings(coupon[line_order]),
            "refund_amount": _money(refund_cents[line_order]),
            "refunded_at": _datetimes(season_start, refund_hours[line_order]),
            "refund_reason": _strings(refund_reason[line_order]),
        }
    )
    no_refund = pl.Series(refund_cents[line_order] == 0)
    frame = frame.with_columns(
        pl.when(no_refund).then(None).otherwise(pl.col("refund_amount")).alias("refund_amount")
    )
    return _Orders(
        frame=frame,
        order_id=order_id,
        account=account,
        hours=hours,
        channel=channel,
        total_cents=total_cents,
        line_order=line_order,
        line_product=line_product,
        line_quantity=line_quantity,
        is_cancelled=is_cancelled,
    )


def _month_day(season: Seasonality, hours: FloatArray) -> IntArray:
    """``month * 100 + day`` of each time, for the promotion calendar."""
    start = season.start.date()
    days = np.floor(hours / 24).astype(np.int64)
    calendar = np.array(
        [
            (start + timedelta(days=day)).month * 100 + (start + timedelta(days=day)).day
            for day in range(season.hours // 24 + 1)
        ],
        dtype=np.int64,
    )
    return calendar[days]


def _draw_discounts(
    rng: np.random.Generator, spend: IntArray, month_day: IntArray
) -> tuple[IntArray, npt.NDArray[np.object_]]:
    """Order-level discounts (满减: spend over a threshold, get money off) and coupon codes."""
    count: int = spend.shape[0]
    is_double_11 = (month_day >= 1101) & (month_day <= 1111)
    is_618 = (month_day >= 601) & (month_day <= 618)
    has_discount = rng.random(count) < np.where(is_double_11 | is_618, 0.6, 0.2)
    # (threshold, money off) in yuan: the best tier the order reaches.
    tiers = np.array([[0, 5], [99, 10], [199, 20], [299, 30], [499, 50], [999, 100]]) * 100
    tier = np.searchsorted(tiers[:, 0], spend, side="right") - 1
    discount = np.where(has_discount, tiers[tier, 1], 0).astype(np.int64)
    has_code = has_discount & (rng.random(count) < 0.7)
    prefix = np.where(is_double_11, "DOUBLE11", np.where(is_618, "618", "SAVE")).astype(object)
    coupon = np.full(count, None, dtype=object)
    coupon[has_code] = [
        f"{prefix[index]}-{discount[index] // 100}" for index in np.flatnonzero(has_code)
    ]
    return discount, coupon


def _draw_lines(
    rng: np.random.Generator,
    people: _People,
    catalog: _Catalog,
    person: IntArray,
    subtotal: IntArray,
) -> tuple[IntArray, IntArray, IntArray, IntArray]:
    """Split each order's subtotal over 1–4 lines of products the customer likes, priced near
    the line's share. Returns per line: order index, product index, quantity, unit price."""
    count: int = subtotal.shape[0]
    wanted = 1 + _choice(rng, [0.55, 0.27, 0.12, 0.06], count)
    # At most one line per ¥30 of subtotal: a ¥40 order is not four products.
    lines_per_order = np.minimum(wanted, np.maximum(subtotal // 3000, 1)).astype(np.int64)
    line_order = np.repeat(np.arange(count), lines_per_order)
    first_line = np.cumsum(lines_per_order) - lines_per_order
    weight = rng.gamma(1.0, 1.0, line_order.shape[0])
    weight_sum = np.bincount(line_order, weights=weight, minlength=count)
    share = np.floor(subtotal[line_order] * weight / weight_sum[line_order]).astype(np.int64)
    # The first line takes the cents lost in flooring, so the lines add up to the subtotal.
    share[first_line] += subtotal - np.bincount(line_order, weights=share, minlength=count).astype(
        np.int64
    )
    share = np.maximum(share, 1)

    popularity = np.array([leaf.popularity for leaf in vocabulary.CATEGORIES])
    roll = rng.random(line_order.shape[0])
    owner = person[line_order]
    category = np.where(
        roll < 0.4,
        people.favourite[owner, 0],
        np.where(
            roll < 0.65,
            people.favourite[owner, 1],
            _choice(rng, popularity, line_order.shape[0]),
        ),
    )
    # Nearest price within the category (with a little jitter), via one search on the
    # (category, price) composite key of the sorted catalogue.
    key = catalog.category * 10**10 + catalog.price_cents
    position = np.searchsorted(key, category * 10**10 + share) + rng.integers(-2, 3, share.shape[0])
    product = np.clip(
        position, catalog.category_start[category], catalog.category_end[category] - 1
    )
    # Where the category has nothing near that price, take the nearest product of any category.
    price = catalog.price_cents[product]
    far = (price > share * 3) | (price * 6 < share)
    if far.any():
        by_price = np.argsort(catalog.price_cents, kind="stable")
        nearest = np.searchsorted(catalog.price_cents[by_price], share[far])
        nearest = np.clip(nearest + rng.integers(-3, 4, nearest.shape[0]), 0, by_price.shape[0] - 1)
        product[far] = by_price[nearest]
    price = catalog.price_cents[product]
    quantity = np.clip(np.round(share / price), 1, 6).astype(np.int64)
    unit = np.maximum(share // quantity, 1).astype(np.int64)
    return line_order, product.astype(np.int64), quantity, unit


def _draw_fulfilment(
    rng: np.random.Generator,
    parameters: DemoParameters,
    season: Seasonality,
    hours: FloatArray,
    total_cents: IntArray,
    is_cancelled: BoolArray,
    channel: IntArray,
) -> tuple[IntArray, IntArray, FloatArray, npt.NDArray[np.object_]]:
    """Status by the order's age, full returns and partial refunds of delivered orders."""
    count: int = hours.shape[0]
    age_hours = season.hours - hours
    status = np.where(
        age_hours < 24,
        np.where(rng.random(count) < 0.2, 0, 1),  # placed or paid
        np.where(age_hours < 96, 2, 3),  # shipped, delivered
    ).astype(np.int64)
    status[is_cancelled] = 4
    refund = np.zeros(count, dtype=np.int64)
    refund_hours = np.full(count, np.nan)
    reason = np.full(count, None, dtype=object)
    is_store = channel == CHANNELS.index("store")
    roll = rng.random(count)
    eligible = (status == 3) & ~is_store
    returned = eligible & (roll < parameters.returned_share)
    partial = (
        eligible & ~returned & (roll < parameters.returned_share + parameters.partial_refund_share)
    )
    returned_after = hours + rng.uniform(72, 14 * 24, count)
    returned &= returned_after < season.hours
    status[returned] = 5
    refund[returned] = total_cents[returned]
    refund_hours[returned] = returned_after[returned]
    partial_after = hours + rng.uniform(24, 8 * 24, count)
    partial &= partial_after < season.hours
    share = rng.uniform(0.1, 0.5, count)
    refund[partial] = np.maximum(np.round(total_cents[partial] * share[partial]), 100).astype(
        np.int64
    )
    refund_hours[partial] = partial_after[partial]
    refund = np.minimum(refund, total_cents)
    no_money = refund <= 0
    refund_hours[no_money] = np.nan
    return_reason = _choice(rng, np.ones(len(vocabulary.RETURN_REASONS)), count)
    partial_reason = _choice(rng, np.ones(len(vocabulary.PARTIAL_REFUND_REASONS)), count)
    reason[returned] = _pick(vocabulary.RETURN_REASONS, return_reason[returned])
    reason[partial] = _pick(vocabulary.PARTIAL_REFUND_REASONS, partial_reason[partial])
    reason[no_money] = None
    status[returned & no_money] = 3
    return status, refund, refund_hours, reason


# --------------------------------------------------------------------------------------------
# Stage 5: behaviour events (browse → cart → checkout funnels, anonymous devices, logins).
# --------------------------------------------------------------------------------------------

_STAGE_LOGIN, _STAGE_SEARCH, _STAGE_VIEW, _STAGE_CART, _STAGE_UNCART = 0, 1, 2, 3, 4
_STAGE_CHECKOUT, _STAGE_PURCHASE = 5, 6
_STAGE_EVENT_TYPE = (
    "login", "search", "view", "add_to_cart", "remove_from_cart", "checkout", "purchase",
)  # fmt: skip


@dataclass
class _EventParts:
    """Events collected stage by stage before they are timed and framed (local to one build)."""

    session: list[IntArray] = field(default_factory=list)
    stage: list[IntArray] = field(default_factory=list)
    product: list[IntArray] = field(default_factory=list)  # -1: none
    quantity: list[IntArray] = field(default_factory=list)  # 0: none
    order: list[IntArray] = field(default_factory=list)  # -1: none

    def add(
        self,
        session: IntArray,
        stage: int,
        product: IntArray | None = None,
        quantity: IntArray | None = None,
        order: IntArray | None = None,
    ) -> None:
        size: int = session.shape[0]
        self.session.append(session.astype(np.int64))
        self.stage.append(np.full(size, stage, dtype=np.int64))
        self.product.append(np.full(size, -1, np.int64) if product is None else product)
        self.quantity.append(np.zeros(size, np.int64) if quantity is None else quantity)
        self.order.append(np.full(size, -1, np.int64) if order is None else order)


def _same_category_products(
    rng: np.random.Generator, catalog: _Catalog, product: IntArray
) -> IntArray:
    """A random product of the same leaf category as each of ``product``."""
    category = catalog.category[product]
    start, end = catalog.category_start[category], catalog.category_end[category]
    return (start + np.floor(rng.random(product.shape[0]) * (end - start))).astype(np.int64)


def _draw_events(
    config: DemoConfig,
    rng: np.random.Generator,
    season: Seasonality,
    people: _People,
    accounts: _Accounts,
    catalog: _Catalog,
    orders: _Orders,
) -> pl.DataFrame:
    account_count = accounts.person.shape[0]
    device_number = rng.integers(0, 2**47, account_count + round(config.customers * 0.3))
    online = np.array([CHANNELS.index(name) for name in vocabulary.ONLINE_CHANNELS])
    parts = _EventParts()
    # Per session: start (hours), duration (hours), account (-1: anonymous), device, channel.
    starts: list[FloatArray] = []
    durations: list[FloatArray] = []
    session_account: list[IntArray] = []
    session_device: list[IntArray] = []
    session_channel: list[IntArray] = []
    next_session = 0

    def open_sessions(
        start: FloatArray,
        duration: FloatArray,
        account: IntArray,
        device: IntArray,
        channel: IntArray,
    ) -> IntArray:
        nonlocal next_session
        starts.append(start)
        durations.append(duration)
        session_account.append(account)
        session_device.append(device)
        session_channel.append(channel)
        ids = np.arange(next_session, next_session + start.shape[0], dtype=np.int64)
        next_session += start.shape[0]
        return ids

    # Funnels of the orders placed on the shop's own front ends, ending at the order's time.
    funnel_orders = np.flatnonzero(np.isin(orders.channel, online))
    size: int = funnel_orders.shape[0]
    duration = rng.uniform(3, 40, size) / 60
    account = orders.account[funnel_orders]
    session = open_sessions(
        orders.hours[funnel_orders] - duration,
        duration,
        account,
        account,
        orders.channel[funnel_orders],
    )
    session_of_order = np.full(orders.hours.shape[0], -1)
    session_of_order[funnel_orders] = session
    line_session = session_of_order[orders.line_order]
    has_session = line_session >= 0
    line_session, line_product = line_session[has_session], orders.line_product[has_session]
    line_quantity = orders.line_quantity[has_session]
    parts.add(session[rng.random(size) < 0.25], _STAGE_LOGIN)
    searched = rng.random(size) < 0.5
    first_product = np.full(orders.hours.shape[0], -1)
    first_product[orders.line_order[::-1]] = orders.line_product[::-1]
    parts.add(session[searched], _STAGE_SEARCH, product=first_product[funnel_orders][searched])
    parts.add(line_session, _STAGE_VIEW, product=line_product)
    extra_views = rng.poisson(1.0, size)
    browsed = np.repeat(session, extra_views)
    browsed_product = _same_category_products(
        rng, catalog, np.repeat(first_product[funnel_orders], extra_views)
    )
    parts.add(browsed, _STAGE_VIEW, product=browsed_product)
    parts.add(line_session, _STAGE_CART, product=line_product, quantity=line_quantity)
    second_thoughts = rng.random(browsed.shape[0]) < 0.12
    parts.add(
        browsed[second_thoughts],
        _STAGE_CART,
        product=browsed_product[second_thoughts],
        quantity=np.ones(int(second_thoughts.sum()), np.int64),
    )
    parts.add(browsed[second_thoughts], _STAGE_UNCART, product=browsed_product[second_thoughts])
    parts.add(session, _STAGE_CHECKOUT)
    parts.add(session, _STAGE_PURCHASE, order=funnel_orders)

    # Browsing without buying, while the customer is around (until some weeks after their last
    # order), on the front end they use most.
    online_orders = np.bincount(orders.account[funnel_orders], minlength=account_count)
    last_order = np.full(account_count, -np.inf)
    np.maximum.at(last_order, orders.account, orders.hours)
    active_until = np.minimum(
        np.maximum(last_order, accounts.signup_hours) + 45 * 24, season.hours - 1e-3
    )
    browse_count = rng.poisson(0.6 * online_orders + 0.6)
    owner = np.repeat(np.arange(account_count), browse_count)
    start = accounts.signup_hours[owner] + rng.random(owner.shape[0]) * (
        active_until[owner] - accounts.signup_hours[owner]
    )
    preferred = people.channel[accounts.person[owner]]
    channel = np.where(np.isin(preferred, online), preferred, CHANNELS.index("app"))
    session = open_sessions(start, rng.uniform(1, 20, owner.shape[0]) / 60, owner, owner, channel)
    _add_browsing(rng, parts, catalog, session, people.favourite[accounts.person[owner]])

    # Anonymous visits before signing up, linked to the new customer by the login at sign-up.
    visitor = np.flatnonzero(
        np.isin(people.channel[accounts.person], online) & (rng.random(account_count) < 0.35)
    )
    start = accounts.signup_hours[visitor] - rng.uniform(10 / 60, 48, visitor.shape[0])
    # Visits before the window opened are not in the data.
    visitor, start = visitor[start >= 0], start[start >= 0]
    channel = people.channel[accounts.person[visitor]]
    anonymous = np.full(visitor.shape[0], -1)
    session = open_sessions(
        start, rng.uniform(1, 10, visitor.shape[0]) / 60, anonymous, visitor, channel
    )
    _add_browsing(rng, parts, catalog, session, people.favourite[accounts.person[visitor]])
    session = open_sessions(
        accounts.signup_hours[visitor], np.zeros(visitor.shape[0]), visitor, visitor, channel
    )
    parts.add(session, _STAGE_LOGIN)

    # Visitors who never sign up.
    visitors = device_number.shape[0] - account_count
    cumulative = np.cumsum(season.intensity) / season.intensity.sum()
    start = np.searchsorted(cumulative, rng.random(visitors)) + rng.random(visitors)
    start = np.minimum(start, season.hours - 1.0)
    channel = online[rng.integers(0, online.shape[0], visitors)]
    session = open_sessions(
        start,
        rng.uniform(1, 10, visitors) / 60,
        np.full(visitors, -1),
        account_count + np.arange(visitors),
        channel,
    )
    random_taste = _choice(rng, [c.popularity for c in vocabulary.CATEGORIES], 2 * visitors)
    _add_browsing(rng, parts, catalog, session, random_taste.reshape(-1, 2))

    return _events_frame(
        config, rng, season, accounts, catalog, orders, parts, device_number,
        np.concatenate(starts), np.concatenate(durations), np.concatenate(session_account),
        np.concatenate(session_device), np.concatenate(session_channel),
    )  # fmt: skip


def _add_browsing(
    rng: np.random.Generator,
    parts: _EventParts,
    catalog: _Catalog,
    session: IntArray,
    favourite: IntArray,
) -> None:
    """A browsing session: maybe a search, some views of liked categories, maybe a cart that
    is emptied again or abandoned at checkout."""
    size: int = session.shape[0]
    view_count = 1 + rng.poisson(1.5, size)
    viewer = np.repeat(np.arange(size), view_count)
    liked = favourite[viewer, rng.integers(0, 2, viewer.shape[0])]
    start, end = catalog.category_start[liked], catalog.category_end[liked]
    viewed = (start + np.floor(rng.random(viewer.shape[0]) * (end - start))).astype(np.int64)
    last_viewed = np.empty(size, dtype=np.int64)
    last_viewed[viewer] = viewed
    searched = rng.random(size) < 0.4
    parts.add(session[searched], _STAGE_SEARCH, product=last_viewed[searched])
    parts.add(session[viewer], _STAGE_VIEW, product=viewed)
    carted = rng.random(size) < 0.25
    parts.add(session[carted], _STAGE_CART, product=last_viewed[carted],
              quantity=np.ones(int(carted.sum()), np.int64))  # fmt: skip
    roll = rng.random(size)
    removed = carted & (roll < 0.4)
    parts.add(session[removed], _STAGE_UNCART, product=last_viewed[removed])
    abandoned = carted & ~removed & (roll > 0.75)
    parts.add(session[abandoned], _STAGE_CHECKOUT)


def _events_frame(
    config: DemoConfig,
    rng: np.random.Generator,
    season: Seasonality,
    accounts: _Accounts,
    catalog: _Catalog,
    orders: _Orders,
    parts: _EventParts,
    device_number: IntArray,
    start: FloatArray,
    duration: FloatArray,
    account: IntArray,
    device: IntArray,
    channel: IntArray,
) -> pl.DataFrame:
    """Time the events of every session in stage order and frame them; ids follow time."""
    session = np.concatenate(parts.session)
    stage = np.concatenate(parts.stage)
    product = np.concatenate(parts.product)
    quantity = np.concatenate(parts.quantity)
    order = np.concatenate(parts.order)
    sort = np.lexsort((rng.random(len(session)), stage, session))
    session, stage, product, quantity, order = (
        session[sort], stage[sort], product[sort], quantity[sort], order[sort],
    )  # fmt: skip
    per_session = np.bincount(session, minlength=start.shape[0])
    slot = np.arange(session.shape[0]) - np.repeat(
        np.cumsum(per_session) - per_session, per_session
    )
    # Evenly spread over the session: its first event at the start, its last at the end (for a
    # funnel, the purchase at the order's own time).
    span = np.maximum(per_session[session] - 1, 1)
    hours = start[session] + duration[session] * slot / span
    hours = np.clip(hours, 0.0, season.hours - 1e-6)

    has_account = account[session] >= 0
    device_ids = [f"d{number:012x}" for number in device_number]
    search_words = [leaf.items[0] for leaf in vocabulary.CATEGORIES]
    item_words = [str(name).split(" ")[1] for name in catalog.name]
    is_search = stage == _STAGE_SEARCH
    by_category = rng.random(session.shape[0]) < 0.5
    known_product = np.maximum(product, 0)
    query = np.where(
        by_category, catalog.category[known_product], len(search_words) + known_product
    )
    is_cart = (stage == _STAGE_CART) | (stage == _STAGE_UNCART)
    # Whole sessions before the retention horizon are gone.
    kept = start[session] >= season.hours - config.event_days * 24
    frame = pl.DataFrame(
        {
            "customer_id": _gather(
                accounts.customer_id, np.maximum(account[session], 0), has_account
            ),
            "device_id": _gather(device_ids, device[session]),
            "event_type": _gather(list(_STAGE_EVENT_TYPE), stage),
            "occurred_at": _datetimes(season.start, hours),
            "product_id": _gather(catalog.product_id, known_product, (product >= 0) & ~is_search),
            "channel": _gather(list(CHANNELS), channel[session]),
            "_query": _gather(search_words + item_words, query, is_search),
            "_quantity": pl.Series(np.where(is_cart & (quantity > 0), quantity, -1)),
            "_order": _gather(orders.order_id, np.maximum(order, 0), order >= 0),
            "_hours": hours,
            "_session": session,
            "_slot": slot,
        }
    )
    frame = (
        frame.filter(pl.Series(kept))
        .sort(["_hours", "_session", "_slot"])
        .with_columns(
            pl.format("E{}", pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(9)).alias(
                "event_id"
            ),
            pl.when(pl.col("_query").is_not_null())
            .then(pl.format('{{"query": "{}"}}', pl.col("_query")))
            .when(pl.col("_quantity") > 0)
            .then(pl.format('{{"quantity": {}}}', pl.col("_quantity")))
            .when(pl.col("_order").is_not_null())
            .then(pl.format('{{"order_id": "{}"}}', pl.col("_order")))
            .otherwise(None)
            .alias("properties"),
        )
    )
    return frame.select(EVENT_COLUMNS)


# --------------------------------------------------------------------------------------------
# The world.
# --------------------------------------------------------------------------------------------


def generate_world(config: DemoConfig | None = None) -> DemoWorld:
    """Generate the demo shop for ``config`` (the defaults: 20,000 customers, seed 42).

    The same config gives the same world, frame for frame. ``truth_customers`` has one row per
    person: ``customer_id`` (their first account), ``duplicate_customer_id`` (their second
    account, or null), ``signed_up_at``, ``is_buyer``, ``first_purchase_at``, ``purchase_rate``
    (λ per week), ``dropout_probability`` (p), ``spend_rate`` (ν), ``expected_spend``
    (p_spend/ν per order), ``observed_weeks`` (calendar weeks from the first purchase to the
    end), ``operational_weeks`` (the same span in operational time, τ),
    ``expected_repeat_purchases`` (``E[X | λ, p, τ]``), ``repeat_purchases`` (drawn),
    ``cancelled_orders`` (noise outside the process), ``dropped_out``, ``dropped_out_at``,
    ``favourite_categories`` (the two category paths the person's lines mostly come from).
    """
    config = config or DemoConfig()
    if config.customers < 1:
        raise ValueError(f"customers must be at least 1, got {config.customers}")
    if config.products < 8 * len(vocabulary.CATEGORIES):
        raise ValueError(
            f"products must be at least {8 * len(vocabulary.CATEGORIES)}, got {config.products}"
        )
    end = datetime.combine(config.end_date(), datetime.min.time())
    start = end - timedelta(days=config.window_days)
    season = build_seasonality(start.date(), config.window_days)
    people = _draw_people(config, _rng(config, "people"), season)
    catalog = _draw_catalog(config, _rng(config, "catalog"))
    process = _draw_process(config, _rng(config, "purchases"), season, people)
    orders_rng = _rng(config, "orders")
    accounts = _draw_accounts(orders_rng, people, config.parameters.duplicate_share)
    customers = _customers_frame(config, orders_rng, people, accounts)
    orders = _draw_orders(config, orders_rng, season, people, accounts, catalog, process)
    events = _draw_events(config, _rng(config, "events"), season, people, accounts, catalog, orders)
    truth = DemoTruth(
        seed=config.seed,
        customers=config.customers,
        observation_start=start,
        observation_end=end,
        time_zone=config.time_zone,
        currency=config.currency,
        parameters=config.parameters,
    )
    return DemoWorld(
        config=config,
        truth=truth,
        customers=customers,
        products=catalog.frame,
        orders=orders.frame,
        events=events,
        truth_customers=_truth_frame(config, season, people, accounts, process, orders),
    )


def _truth_frame(
    config: DemoConfig,
    season: Seasonality,
    people: _People,
    accounts: _Accounts,
    process: _Process,
    orders: _Orders,
) -> pl.DataFrame:
    count = people.count
    draws = process.draws
    duplicate_id = np.full(count, None, dtype=object)
    duplicate_id[accounts.duplicate_of_person] = accounts.customer_id[count:]
    first = process.first_purchase_hours
    observed_weeks = np.where(
        np.isnan(first), 0.0, (season.hours - np.nan_to_num(first)) / HOURS_PER_WEEK
    )
    cancelled = np.bincount(accounts.person[orders.account[orders.is_cancelled]], minlength=count)
    paths = np.array([leaf.path for leaf in vocabulary.CATEGORIES], dtype=object)
    return pl.DataFrame(
        {
            "customer_id": _strings(accounts.customer_id[:count]),
            "duplicate_customer_id": _strings(duplicate_id),
            "signed_up_at": _datetimes(season.start, people.signup_hours),
            "is_buyer": ~np.isnan(first),
            "first_purchase_at": _datetimes(season.start, first),
            "purchase_rate": process.purchase_rate,
            "dropout_probability": process.dropout_probability,
            "spend_rate": process.spend_rate,
            "expected_spend": config.parameters.p / process.spend_rate,
            "observed_weeks": observed_weeks,
            "operational_weeks": draws.operational_weeks_observed,
            "expected_repeat_purchases": expected_repeat_purchases(
                process.purchase_rate, process.dropout_probability, draws.operational_weeks_observed
            ),
            "repeat_purchases": draws.repeat_count,
            "cancelled_orders": cancelled.astype(np.int64),
            "dropped_out": draws.dropped_out,
            "dropped_out_at": _datetimes(season.start, draws.dropped_out_hours),
            "favourite_categories": pl.Series(
                [list(pair) for pair in paths[people.favourite]], dtype=pl.List(pl.String)
            ),
        }
    ).sort("customer_id")
