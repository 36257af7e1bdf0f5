"""Reads of the predictive models' results for the dashboard's CLV, churn and model pages.

They read what ``patron analyze`` kept: the per-customer predictions of
:class:`~patron.analytics.models.CustomerAnalysis` (``clv``, ``churn_probability`` ...) and the
:class:`~patron.analytics.models.ModelRun` rows. Aggregates run in SQL over the run's rows;
lists come back as querysets with their customer joined, so that a page of them costs one
query.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from django.db.models import (
    Avg,
    Count,
    F,
    FloatField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Cast, Round

from patron.analytics.choices import AnalysisRunStatusChoices, SegmentationChoices
from patron.analytics.models import AnalysisRun, CustomerAnalysis, ModelRun
from patron.analytics.selectors import segment_codes, segmentation_field
from patron.core.choices import ChannelChoices
from patron.core.money import MONEY_DECIMAL_PLACES, default_currency, round_for_currency
from patron.orders.selectors import counted_orders

#: The groupings of the CLV page: three segmentations of the run and the first-order channel.
CLV_GROUPINGS = (
    SegmentationChoices.RFM,
    SegmentationChoices.VALUE_TIER,
    SegmentationChoices.LIFECYCLE,
    "channel",
)
#: Bins of the CLV histogram below the top bin.
CLV_HISTOGRAM_BINS = 20
#: Share of customers above the histogram's last regular bin: the long tail of CLV would
#: otherwise squeeze every other customer into the first bar.
CLV_TAIL_QUANTILE = 0.99


_MONEY_UNITS = 10**MONEY_DECIMAL_PLACES


def _exact_money_sum(field: str) -> Sum:
    # Money summed as whole ten-thousandths: SQLite sums decimals as floats, which can miss
    # the last cent of a large total; whole numbers stay exact in a float up to 2**53.
    return Sum(Round(F(field) * _MONEY_UNITS), output_field=FloatField())


def _money_from_units(units: Any) -> Decimal:
    return Decimal(int(units or 0)) / _MONEY_UNITS


@dataclass(frozen=True)
class ClvOverview:
    """The CLV of a run's customers: how many have one, their sum (the customer equity),
    mean and median, in the shop's currency."""

    customers: int
    with_clv: int
    equity: Decimal
    mean: Decimal | None
    median: Decimal | None


def _with_clv(run: AnalysisRun) -> QuerySet[CustomerAnalysis]:
    return CustomerAnalysis.objects.filter(run=run, clv__isnull=False)


def _clv_at(run: AnalysisRun, offset: int, count: int = 1) -> list[Decimal]:
    """The ``count`` CLVs from position ``offset`` of the run's CLVs, smallest first."""
    values = _with_clv(run).order_by("clv").values_list("clv", flat=True)[offset : offset + count]
    return [value for value in values if value is not None]


def clv_overview(run: AnalysisRun) -> ClvOverview:
    """Customer equity (the sum of CLV), mean and median CLV of ``run``.

    Two SQL statements whatever the number of customers: one aggregate, and the middle one or
    two values for the median (the mean of the two middle values for an even count).
    """
    totals = CustomerAnalysis.objects.filter(run=run).aggregate(
        customers=Count("pk"), with_clv=Count("clv"), equity=_exact_money_sum("clv")
    )
    with_clv = int(totals["with_clv"])
    equity = _money_from_units(totals["equity"])
    currency = default_currency()
    median = None
    if with_clv:
        middle = _clv_at(run, (with_clv - 1) // 2, 2 - with_clv % 2)
        median = round_for_currency(sum(middle, Decimal(0)) / len(middle), currency)
    return ClvOverview(
        customers=int(totals["customers"]),
        with_clv=with_clv,
        equity=round_for_currency(equity, currency),
        mean=round_for_currency(equity / with_clv, currency) if with_clv else None,
        median=median,
    )


@dataclass(frozen=True)
class ClvBin:
    """One bar of the CLV histogram: customers with ``low <= clv < high`` (the last bin is
    open: ``high`` is None; the first also holds any CLV below 0)."""

    low: Decimal
    high: Decimal | None
    customers: int


def clv_bin_width(top: Decimal, bins: int) -> Decimal:
    """The width of ``bins`` equal bins that reach ``top``, rounded up to two significant
    digits so that the edges are readable amounts (¥300, not ¥287.43)."""
    raw = top / bins
    exponent = raw.adjusted() - 1
    unit = Decimal(10) ** exponent
    return (raw / unit).to_integral_value(rounding=ROUND_CEILING) * unit


def clv_histogram(
    run: AnalysisRun, bins: int = CLV_HISTOGRAM_BINS, with_clv: int | None = None
) -> list[ClvBin]:
    """Equal-width bins from 0 to the 99th percentile of the run's CLVs, and one open bin for
    the customers above it; trailing empty bins are dropped.

    Three SQL statements whatever the number of customers (the count, which ``with_clv``
    saves when the caller has it; the percentile; one count per edge in one aggregate).
    """
    count = _with_clv(run).count() if with_clv is None else with_clv
    if not count:
        return []
    top = _clv_at(run, min(count - 1, int(CLV_TAIL_QUANTILE * count)))[0]
    if top <= 0:
        return [ClvBin(Decimal(0), None, count)]
    width = clv_bin_width(top, bins)
    edges = [width * index for index in range(bins + 1)]
    at_least = _with_clv(run).aggregate(
        **{f"edge_{i}": Count("pk", filter=Q(clv__gte=edges[i])) for i in range(1, bins + 1)}
    )
    # Customers at or above each edge; the first edge (0) counts everyone, negatives included.
    above = [count] + [int(at_least[f"edge_{i}"]) for i in range(1, bins + 1)] + [0]
    result = [ClvBin(edges[i], edges[i + 1], above[i] - above[i + 1]) for i in range(bins)]
    result.append(ClvBin(edges[bins], None, above[bins]))
    # Trailing empty regular bins add nothing but width.
    while len(result) > 1 and result[-2].customers == 0 and result[-1].customers == 0:
        result.pop()
    if result[-1].customers == 0 and result[-1].high is None:
        result.pop()
    return result


@dataclass(frozen=True)
class ClvGroup:
    """The CLV of one group of customers (a segment or a first-order channel)."""

    code: str
    label: str
    customers: int
    with_clv: int
    equity: Decimal
    mean: Decimal | None
    equity_share: float


def _first_channel() -> Subquery:
    # The channel of the customer's first counted order: every analysed customer has one.
    return Subquery(
        counted_orders()
        .filter(customer=OuterRef("customer"))
        .order_by("ordered_at", "pk")
        .values("channel")[:1]
    )


def clv_by_group(run: AnalysisRun, by: str) -> list[ClvGroup]:
    """Customer equity per segment of segmentation ``by`` (``rfm``, ``value_tier``,
    ``lifecycle``...) or per first-order ``channel``, in the segmentation's order (channels by
    equity); groups without customers are left out. One SQL aggregate."""
    rows = CustomerAnalysis.objects.filter(run=run).order_by()
    if by == "channel":
        field = "group"
        rows = rows.annotate(group=_first_channel())
        labels: dict[str, Any] = dict(ChannelChoices.choices)
    else:
        field = segmentation_field(by)
        labels = dict(segment_codes(run, by))
    aggregates = {
        str(row[field]): row
        for row in rows.values(field).annotate(
            customers=Count("pk"),
            with_clv=Count("clv"),
            equity=_exact_money_sum("clv"),
        )
    }
    currency = default_currency()
    total = sum((_money_from_units(row["equity"]) for row in aggregates.values()), Decimal(0))
    order = (
        sorted(aggregates, key=lambda code: -_money_from_units(aggregates[code]["equity"]))
        if by == "channel"
        else [code for code in labels if code in aggregates]
    )
    groups = []
    for code in order:
        row = aggregates[code]
        equity = _money_from_units(row["equity"])
        with_clv = int(row["with_clv"])
        groups.append(
            ClvGroup(
                code=code,
                label=str(labels.get(code, code)),
                customers=int(row["customers"]),
                with_clv=with_clv,
                equity=round_for_currency(equity, currency),
                mean=round_for_currency(equity / with_clv, currency) if with_clv else None,
                equity_share=float(equity / total) if total else 0.0,
            )
        )
    return groups


def top_clv_customers(run: AnalysisRun, limit: int = 20) -> list[CustomerAnalysis]:
    """The ``limit`` customers of ``run`` with the highest CLV, highest first."""
    return list(
        CustomerAnalysis.objects.filter(run=run, clv__isnull=False)
        .select_related("customer")
        .order_by("-clv", "customer__external_id")[:limit]
    )


# --- churn -------------------------------------------------------------------------------


def churn_ranking(
    run: AnalysisRun,
    min_probability: float | None = None,
    segment_by: str | None = None,
    segment: str | None = None,
) -> QuerySet[CustomerAnalysis]:
    """The customers of ``run`` with a CLV and a churn probability, by value at risk
    (CLV × churn probability, annotated as ``risk``), highest first.

    ``min_probability`` (0–1) keeps customers at least that likely to churn; ``segment_by``
    and ``segment`` keep one segment of a segmentation.
    """
    rows = CustomerAnalysis.objects.filter(
        run=run, clv__isnull=False, churn_probability__isnull=False
    )
    if min_probability is not None:
        rows = rows.filter(churn_probability__gte=min_probability)
    if segment_by and segment:
        field = segmentation_field(segment_by)
        value: str | int = int(segment) if segment_by == SegmentationChoices.BEHAVIOUR else segment
        rows = rows.filter(**{field: value})
    return (
        rows.annotate(
            risk=Cast("clv", output_field=FloatField()) * F("churn_probability"),
        )
        .select_related("customer")
        .order_by("-risk", "customer__external_id")
    )


@dataclass(frozen=True)
class ChurnTotals:
    """Totals of the customers a churn list shows."""

    customers: int
    value_at_risk: Decimal
    equity: Decimal
    mean_probability: float | None


def churn_totals(rows: QuerySet[CustomerAnalysis]) -> ChurnTotals:
    """How many customers ``rows`` (from :func:`churn_ranking`) holds, their value at risk and
    CLV in the shop's currency, and their mean churn probability. One SQL aggregate."""
    totals = rows.order_by().aggregate(
        customers=Count("pk"),
        total_risk=Sum("risk"),
        equity=_exact_money_sum("clv"),
        probability=Avg("churn_probability"),
    )
    currency = default_currency()
    return ChurnTotals(
        customers=int(totals["customers"]),
        value_at_risk=round_for_currency(Decimal(str(totals["total_risk"] or 0)), currency),
        equity=round_for_currency(_money_from_units(totals["equity"]), currency),
        mean_probability=(
            float(totals["probability"]) if totals["probability"] is not None else None
        ),
    )


# --- model runs --------------------------------------------------------------------------


def model_run_list(limit: int = 100) -> list[ModelRun]:
    """The latest ``limit`` model runs with their analysis, newest analysis first."""
    return list(
        ModelRun.objects.select_related("analysis").order_by(
            "-analysis__started_at", "-analysis_id", "id"
        )[:limit]
    )


def get_model_run(model_run_id: int) -> ModelRun | None:
    """The model run ``model_run_id`` with its analysis, or None."""
    return ModelRun.objects.select_related("analysis").filter(pk=model_run_id).first()


def run_model(run: AnalysisRun, kind: str) -> ModelRun | None:
    """The model run of kind ``kind`` (a :class:`PredictiveModelChoices`) in ``run``, or None
    when the analysis fitted no such model."""
    return ModelRun.objects.filter(analysis=run, kind=kind).first()


def failed_models(run: AnalysisRun) -> list[ModelRun]:
    """The models of ``run`` that could not be fitted (each with its error)."""
    return list(
        ModelRun.objects.filter(analysis=run)
        .exclude(status=AnalysisRunStatusChoices.SUCCEEDED)
        .order_by("id")
    )


#: Keys of the churn model's metrics: the model and its two baselines, in table order. The
#: BG/NBD baseline is kept as ``bgnbd`` by the runs of this version (``bgnbd_expected_purchases``
#: is read too).
CHURN_SCORES = ("model", "bgnbd_expected_purchases", "one_minus_p_alive")
CHURN_METRICS = ("roc_auc", "pr_auc", "brier", "top_decile_lift")


def churn_metric(metrics: dict[str, Any], score: str) -> dict[str, Any]:
    """The metrics of one score (``model``, ``bgnbd_expected_purchases``,
    ``one_minus_p_alive``) of a churn model run's ``metrics``; empty when not kept."""
    found = metrics.get(score)
    if found is None and score == "bgnbd_expected_purchases":
        found = metrics.get("bgnbd")
    return found if isinstance(found, dict) else {}
