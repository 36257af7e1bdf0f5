"""``patron analyze`` and ``patron export segment``."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from pathlib import Path

import polars as pl
import pytest
from django.core.management import CommandError, call_command

from patron.analytics.models import AnalysisRun, CustomerAnalysis
from patron.analytics.services import run_analysis
from patron.customers.models import Customer
from patron.demo.generator import DemoWorld
from patron.privacy.models import AuditEvent
from tests.analytics.conftest import AS_OF


def _run_command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_analyze_prints_the_runs_summary(demo_store: DemoWorld) -> None:
    # when
    output = _run_command("analyze", "--as-of", "2025-06-01")

    # then
    run = AnalysisRun.objects.get()
    champions = CustomerAnalysis.objects.filter(run=run, rfm_segment="champions").count()
    assert f"Analysis #{run.pk} as of 2025-06-01 on polars: {run.customers:,} customers" in output
    assert f"{run.orders:,} orders" in output
    assert "RFM segment:" in output
    assert f"  {'Champions':<32} {champions:>8,}" in output
    assert "Lifecycle thresholds (derived)" in output


def test_analyze_refuses_a_bad_date_and_an_empty_store(db: None) -> None:
    with pytest.raises(CommandError, match="--as-of '2025-13-01': not a date"):
        call_command("analyze", "--as-of", "2025-13-01")
    with pytest.raises(CommandError, match="no counted orders"):
        call_command("analyze")


def test_analyze_uses_the_lifecycle_thresholds_and_ahp_matrix_given(
    demo_store: DemoWorld,
) -> None:
    # given thresholds and a matrix weighing monetary above all
    matrix = "[[1, 1, 0.2, 1], [1, 1, 0.2, 1], [5, 5, 1, 5], [1, 1, 0.2, 1]]"

    # when the analysis runs with them
    output = _run_command(
        "analyze",
        "--as-of",
        "2025-06-01",
        "--new-days",
        "30",
        "--at-risk-days",
        "60",
        "--lapsed-days",
        "200",
        "--ahp-matrix",
        matrix,
    )

    # then the run used them, and the stages follow them
    run = AnalysisRun.objects.get()
    assert "Lifecycle thresholds (given): new 30 d, at risk 60 d, lapsed 200 d" in output
    assert run.parameters["lifecycle_thresholds"] == {
        "new_days": 30,
        "at_risk_days": 60,
        "lapsed_days": 200,
        "derived": False,
    }
    assert run.parameters["ahp"]["weights"] == pytest.approx([0.125, 0.125, 0.625, 0.125])
    rows = CustomerAnalysis.objects.filter(run=run)
    assert rows.filter(lifecycle_stage="lapsed", recency_days__lte=200).count() == 0
    assert rows.filter(recency_days__gt=200).exclude(lifecycle_stage="lapsed").count() == 0
    assert (
        rows.filter(recency_days__gt=60, recency_days__lte=200)
        .exclude(lifecycle_stage="at_risk")
        .count()
        == 0
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--new-days", "30"], "missing --at-risk-days, --lapsed-days"),
        (["--new-days", "30", "--at-risk-days", "90", "--lapsed-days", "60"], "more than"),
        (["--ahp-matrix", "[[1, 2], [0.5"], "not a JSON list"),
        (
            ["--ahp-matrix", "[[1, 9, 9, 9], [1, 1, 9, 9], [1, 1, 1, 9], [1, 1, 1, 1]]"],
            "reciprocal",
        ),
        (
            [
                "--ahp-matrix",
                "[[1, 9, 0.1111111, 1], [0.1111111, 1, 9, 1], [9, 0.1111111, 1, 1], [1, 1, 1, 1]]",
            ],
            "consistency ratio is 2.381, and AHP accepts less than 0.1",
        ),
    ],
)
def test_analyze_refuses_bad_thresholds_and_matrices(
    demo_store: DemoWorld, arguments: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("analyze", "--as-of", "2025-06-01", *arguments)


def _expected_export(run: AnalysisRun, segment: str) -> list[tuple[object, ...]]:
    """The segment's customers read straight from the tables, by external id."""
    rows = []
    for row in CustomerAnalysis.objects.filter(run=run, rfm_segment=segment):
        customer = Customer.objects.get(pk=row.customer_id)
        rows.append(
            (
                customer.external_id,
                customer.name,
                customer.email,
                customer.phone,
                row.frequency,
                row.monetary,
                row.r_score,
                row.rfm_segment,
                row.value_tier,
            )
        )
    return sorted(rows)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_segment_writes_its_customers_with_their_scores(
    demo_store: DemoWorld, tmp_path: Path, suffix: str
) -> None:
    # given
    run = run_analysis(with_models=False, as_of=AS_OF)
    segment = CustomerAnalysis.objects.filter(run=run).values_list("rfm_segment", flat=True).first()
    assert segment is not None
    path = tmp_path / "out" / f"segment{suffix}"

    # when: the segment is named by its Chinese label
    label = {"champions": "冠军客户", "lost": "已流失客户"}.get(segment, segment)
    output = _run_command("export", "segment", label, str(path))

    # then
    if suffix == ".csv":
        assert path.read_bytes().startswith("\ufeff".encode())  # Excel then reads it as UTF-8
        frame = pl.read_csv(path, infer_schema=False)
    else:
        frame = pl.read_parquet(path)
    written = sorted(
        (
            row["external_id"],
            row["name"] or "",
            row["email"] or "",
            row["phone"] or "",
            int(row["frequency"]),
            Decimal(str(row["monetary"])),
            int(row["r_score"]),
            row["rfm_segment"],
            row["value_tier"],
        )
        for row in frame.iter_rows(named=True)
    )
    assert written == _expected_export(run, segment)
    assert frame.columns[:5] == ["external_id", "name", "email", "phone", "as_of"]
    assert f"Wrote {frame.height:,} customers of rfm segment {segment}" in output
    # and the export of names and contacts is in the audit log, without a value
    event = AuditEvent.objects.get(action="pii_read")
    assert event.actor_label == "command: patron export"
    assert event.details == {
        "purpose": "segment export (command)",
        "segmentation": "rfm",
        "segment": segment,
        "analysis_run": run.pk,
        "rows": frame.height,
    }


def test_export_of_an_unknown_segment_lists_the_valid_names(
    demo_store: DemoWorld, tmp_path: Path
) -> None:
    # given
    run_analysis(with_models=False, as_of=AS_OF)

    # when / then
    with pytest.raises(CommandError, match="no value_class segment named 'vip'") as raised:
        call_command("export", "segment", "vip", str(tmp_path / "x.csv"), "--by", "value_class")
    assert "important_value, important_develop" in str(raised.value)
    assert not (tmp_path / "x.csv").exists()
    assert not AuditEvent.objects.exists()


def test_export_needs_a_run_and_a_known_format(demo_store: DemoWorld, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="run `patron analyze` first"):
        call_command("export", "segment", "champions", str(tmp_path / "x.csv"))
    run_analysis(with_models=False, as_of=AS_OF)
    with pytest.raises(CommandError, match=r"x\.xlsx: write a \.csv or \.parquet file"):
        call_command("export", "segment", "champions", str(tmp_path / "x.xlsx"))
    with pytest.raises(CommandError, match="no successful analysis run #999"):
        call_command("export", "segment", "champions", str(tmp_path / "x.csv"), "--run", "999")
