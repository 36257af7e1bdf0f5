"""Build the demo shop into the store: generate the world, import it, write the truth beside it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.utils import timezone

from patron.analytics.models import AnalysisRun
from patron.analytics.services import AnalysisError, run_analysis
from patron.demo.generator import DemoConfig, DemoWorld, generate_world
from patron.ingest.services import ImportOptions, ImportSummary, RecordKind, import_frames
from patron.loyalty.models import Programme, Promotion
from patron.loyalty.order_points import sync_order_points
from patron.loyalty.programme import add_promotion, configure_programme, get_programme
from patron.loyalty.tiers import define_tier
from patron.recommend.models import TrainingRun
from patron.recommend.services import RecommendError, train_recommendations

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo"  # printed for everyone on purpose: it is the demo login
DEMO_GROUP = "admin"
#: Rows per frame handed to the importer: big enough for its set-based writes, small enough
#: to keep memory flat.
CHUNK_ROWS = 50_000
#: The demo programme started this many months (from the first of the month) before the
#: demo's last day; orders placed since then earn points.
PROGRAMME_MONTHS = 6
TRUTH_FILE = "truth.json"
TRUTH_CUSTOMERS_FILE = "truth_customers.parquet"


class DemoBuildError(RuntimeError):
    """The demo shop cannot be built (the store holds another demo, or the import failed)."""


@dataclass(frozen=True)
class DemoReport:
    """What :func:`build_demo_shop` built."""

    customers: int
    customer_accounts: int
    duplicate_accounts: int
    products: int
    orders: int
    order_lines: int
    events: int
    #: Net sales: totals of the orders not cancelled, less refunds.
    revenue: Decimal
    currency: str
    as_of: date
    seed: int
    truth_path: Path
    truth_customers_path: Path
    username: str
    password: str
    imports: tuple[ImportSummary, ...]
    #: The analysis run made after the import (see patron.analytics.services.run_analysis).
    analysis_run_id: int
    #: The recommendations trained after the analysis (patron.recommend.services).
    recommendation_run_id: int
    seconds: float


def demo_dir(home: Path | None = None) -> Path:
    """The folder of the demo's truth files: ``PATRON_HOME/demo``."""
    return Path(home or settings.PATRON_HOME) / "demo"


def build_demo_shop(
    customers: int = 20_000,
    seed: int = 42,
    as_of: date | None = None,
    *,
    home: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> DemoReport:
    """Generate the demo shop and import it into the store (which must be migrated).

    ``as_of`` is the day the two observed years end (today in the shop's time zone when not
    given; a rebuild with the same customers and seed reuses the day of the first build, so
    building again changes nothing). The truth files go to ``home/demo`` (``PATRON_HOME`` by
    default). Creates or refreshes the staff login ``demo`` / ``demo`` in the ``admin`` group,
    then analyses the customers as of the window's end (a new analysis run at every build).
    Raises :class:`DemoBuildError` when ``home`` already holds a demo built with other
    customers or seed (the two would mix in the store).
    """
    say = progress or (lambda message: None)
    began = time.perf_counter()
    folder = demo_dir(home)
    as_of = _check_previous_build(folder, customers, seed, as_of)
    config = DemoConfig(
        customers=customers,
        seed=seed,
        as_of=as_of,
        time_zone=str(settings.TIME_ZONE),
        currency=str(settings.PATRON_CURRENCY),
    )
    say(f"Generating {customers:,} customers (seed {seed}, two years up to {config.end_date()})")
    world = generate_world(config)
    say(
        f"Generated {world.customers.height:,} customer accounts, {world.products.height:,} "
        f"products, {world.orders['order_id'].n_unique():,} orders, "
        f"{world.events.height:,} events in {time.perf_counter() - began:.1f} s"
    )
    summaries = tuple(
        _import(kind, frame, say)
        for kind, frame in (
            (RecordKind.CUSTOMERS, world.customers),
            (RecordKind.PRODUCTS, world.products),
            (RecordKind.ORDERS, world.orders),
            (RecordKind.EVENTS, world.events),
        )
    )
    truth_path, truth_customers_path = write_truth(world, folder)
    say(f"Wrote the hidden parameters to {truth_path}")
    ensure_demo_user()
    programme = set_up_demo_programme(config.end_date())
    say(
        f"Loyalty programme {programme.name!r}: {programme.tiers.count()} tiers, "
        f"{programme.promotions.count()} promotions, orders earn from "
        f"{timezone.localtime(programme.earns_from).date() if programme.earns_from else '-'}"
    )
    # The programme starts after the history was imported, as in a shop that launches one:
    # settle the points of the orders placed since it started, as of the demo's last day.
    settling = time.perf_counter()
    points = sync_order_points(as_of=_end_of_day(config.end_date()), programme=programme)
    say(f"  points: {points} in {time.perf_counter() - settling:.1f} s")
    analysis = _analyse(config.end_date(), say)
    recommendations = _train_recommendations(config.end_date(), say)
    return DemoReport(
        customers=world.truth_customers.height,
        customer_accounts=world.customers.height,
        duplicate_accounts=world.duplicate_accounts,
        products=world.products.height,
        orders=world.orders["order_id"].n_unique(),
        order_lines=world.orders.height,
        events=world.events.height,
        revenue=net_revenue(world.orders),
        currency=config.currency,
        as_of=config.end_date(),
        seed=seed,
        truth_path=truth_path,
        truth_customers_path=truth_customers_path,
        username=DEMO_USERNAME,
        password=DEMO_PASSWORD,
        imports=summaries,
        analysis_run_id=analysis.pk,
        recommendation_run_id=recommendations.pk,
        seconds=time.perf_counter() - began,
    )


#: The demo programme's tiers: (name, 12-month spend threshold, earn multiplier, birthday
#: bonus points, free shipping). Spend tiers, as most Chinese shops run them (会员等级 by 消费额).
DEMO_TIERS = (
    ("Silver 银卡", Decimal(0), Decimal(1), 100, False),
    ("Gold 金卡", Decimal(2_000), Decimal("1.2"), 300, True),
    ("Platinum 铂金卡", Decimal(8_000), Decimal("1.5"), 800, True),
)


def set_up_demo_programme(as_of: date) -> Programme:
    """The demo shop's loyalty programme: 1 point per yuan of net spend (rounded down),
    pending for the 15-day return window, expiring at the end of the year after earning,
    100 points worth 1 yuan; three spend tiers over a rolling 12 months with 30 days' grace;
    double points on 11.11 and 618 of the demo's years; orders placed from the first of the
    month six months before ``as_of`` earn. Building again changes nothing."""
    zone = ZoneInfo(str(settings.TIME_ZONE))
    start_month = as_of.month - PROGRAMME_MONTHS
    start = datetime(
        as_of.year + (start_month - 1) // 12, (start_month - 1) % 12 + 1, 1, tzinfo=zone
    )
    programme = configure_programme(
        get_programme(),
        name="Patron Demo Club 会员俱乐部",
        earns_from=start,
        points_per_unit=Decimal(1),
        rounding="floor",
        pending_days=15,
        expiry_policy="end_of_year_after_earning",
        point_value_amount=Decimal("0.01"),
        tier_metric="spend",
        tier_window="rolling_12_months",
        downgrade_grace_days=30,
    )
    for name, threshold, multiplier, bonus, free_shipping in DEMO_TIERS:
        define_tier(
            name,
            threshold,
            earn_multiplier=multiplier,
            birthday_bonus_points=bonus,
            has_free_shipping=free_shipping,
            programme=programme,
        )
    for year in range(as_of.year - 2, as_of.year + 1):
        for name, month, day in (("618", 6, 18), ("11.11", 11, 11)):
            title = f"{name} double points {year}"
            if Promotion.objects.filter(programme=programme, name=title).exists():
                continue
            starts = datetime(year, month, day, tzinfo=zone)
            add_promotion(title, 2, starts, starts + timedelta(days=1), programme=programme)
    return programme


def _end_of_day(day: date) -> datetime:
    """The last moment of ``day`` in the shop's time zone."""
    zone = ZoneInfo(str(settings.TIME_ZONE))
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone) - (
        timedelta(microseconds=1)
    )


def _analyse(as_of: date, say: Callable[[str], None]) -> AnalysisRun:
    """Run the customer analytics over the demo shop, so the dashboard has results to show."""
    say(f"Analysing the customers as of {as_of} (patron analyze) ...")
    try:
        run = run_analysis(as_of=as_of, triggered_by="demo")
    except AnalysisError as error:
        raise DemoBuildError(f"the analysis of the demo shop failed: {error}") from error
    say(
        f"  analysis #{run.pk}: {run.customers:,} customers, {run.orders:,} orders in "
        f"{run.duration_seconds or 0:.1f} s"
    )
    for model_run in run.model_runs.order_by("id"):
        label = model_run.get_kind_display()
        if model_run.error:
            say(f"  {label}: not fitted: {model_run.error}")
        else:
            say(f"  {label}: fitted on {model_run.customers:,} customers")
    return run


def _train_recommendations(as_of: date, say: Callable[[str], None]) -> TrainingRun:
    """Train the recommendations on the demo shop (after the analysis: the popular products
    per segment use its RFM segments), so the customer pages and the API have lists."""
    say(f"Training the recommendations as of {as_of} (patron recommend train) ...")
    try:
        run = train_recommendations(as_of, triggered_by="demo")
    except RecommendError as error:
        raise DemoBuildError(f"the recommendations of the demo shop failed: {error}") from error
    best = max(run.report, key=lambda row: row["ndcg"], default=None)
    say(
        f"  recommendations #{run.pk}: lists for {run.recommended_customers:,} customers, "
        f"{run.rules:,} basket rules in {run.duration_seconds or 0:.1f} s"
        + (f"; best NDCG@10 {best['ndcg']:.4f} ({best['recommender']})" if best else "")
    )
    return run


def _check_previous_build(
    folder: Path, customers: int, seed: int, as_of: date | None
) -> date | None:
    """The end day to build: ``as_of``, else that of the demo already built in ``folder``.

    Raises :class:`DemoBuildError` when that demo was built with other parameters: the two
    shops would mix in the store (same ids, other rows).
    """
    path = folder / TRUTH_FILE
    if not path.exists():
        return as_of
    previous = json.loads(path.read_text(encoding="utf-8"))
    previous_as_of = date.fromisoformat(str(previous["as_of"]))
    wanted = (customers, seed, as_of or previous_as_of)
    if (previous.get("customers"), previous.get("seed"), previous_as_of) != wanted:
        raise DemoBuildError(
            f"{folder.parent} already holds a demo shop built with --customers "
            f"{previous.get('customers')} --seed {previous.get('seed')} --as-of "
            f"{previous_as_of}; build that one again, or use a fresh PATRON_HOME (an empty "
            f"store) for --customers {customers} --seed {seed}"
        )
    return previous_as_of


def _import(kind: RecordKind, frame: pl.DataFrame, say: Callable[[str], None]) -> ImportSummary:
    began = time.perf_counter()
    say(f"Importing {frame.height:,} {kind} rows ...")
    chunks: Iterator[pl.DataFrame] = frame.iter_slices(CHUNK_ROWS)
    # Strict: the generated rows are all valid, so a rejected one is a bug; leave nothing of
    # it half-written.
    summary = import_frames(kind, chunks, options=ImportOptions(source="demo", strict=True))
    if summary.rejected:
        first = "; ".join(
            f"row {error.row} {error.field}: {error.reason}" for error in summary.errors[:3]
        )
        raise DemoBuildError(
            f"the importer rejected {summary.rejected} generated {kind} rows ({first})"
        )
    say(
        f"  {kind}: {summary.inserted:,} inserted, {summary.updated:,} updated, "
        f"{summary.unchanged:,} unchanged in {time.perf_counter() - began:.1f} s"
    )
    return summary


def write_truth(world: DemoWorld, folder: Path) -> tuple[Path, Path]:
    """Write ``truth.json`` (population parameters, seed, window) and the per-person table."""
    folder.mkdir(parents=True, exist_ok=True)
    truth = world.truth.to_json()
    truth["as_of"] = world.config.end_date().isoformat()
    truth["duplicate_accounts"] = world.duplicate_accounts
    truth["files"] = {"customers": TRUTH_CUSTOMERS_FILE}
    truth_path = folder / TRUTH_FILE
    truth_path.write_text(
        json.dumps(truth, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    customers_path = folder / TRUTH_CUSTOMERS_FILE
    world.truth_customers.write_parquet(customers_path)
    return truth_path, customers_path


@transaction.atomic
def ensure_demo_user() -> User:
    """The staff login ``demo`` / ``demo`` in the ``admin`` group (created when missing)."""
    user, _ = User.objects.get_or_create(username=DEMO_USERNAME, defaults={"is_staff": True})
    changed = False
    if not user.is_staff or not user.is_active:
        user.is_staff = user.is_active = True
        changed = True
    # Only when it differs: re-hashing would change the row on every build.
    if not user.check_password(DEMO_PASSWORD):
        user.set_password(DEMO_PASSWORD)
        changed = True
    if changed:
        user.save()
    group, _ = Group.objects.get_or_create(name=DEMO_GROUP)
    user.groups.add(group)
    return user


def net_revenue(orders: pl.DataFrame) -> Decimal:
    """Net sales of an order-lines frame: order totals (lines less the order's discount) of the
    orders not cancelled, less their refunds."""
    per_order = (
        orders.filter(pl.col("status") != "cancelled")
        .group_by("order_id")
        .agg(
            (pl.col("quantity").cast(pl.Decimal(18, 0)) * pl.col("unit_price"))
            .sum()
            .alias("lines"),
            pl.col("discount").first().fill_null(0),
            pl.col("refund_amount").first().fill_null(0),
        )
    )
    total = per_order.select(
        (pl.col("lines") - pl.col("discount") - pl.col("refund_amount")).sum()
    ).item()
    return Decimal(str(total)).quantize(Decimal("0.01"))
