"""Helpers of the importer tests: write input files, run ``patron import``, read the store."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from io import StringIO
from pathlib import Path

from django.apps import apps
from django.core.management import call_command

from patron.orders.models import Order

#: The apps whose tables an import may write.
STORE_APPS = ("customers", "catalog", "orders")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class CommandOutput:
    """What ``patron import`` printed (kept also when the command raises)."""

    stdout_buffer: StringIO = field(default_factory=StringIO)
    stderr_buffer: StringIO = field(default_factory=StringIO)

    @property
    def stdout(self) -> str:
        """Everything written to standard output."""
        return self.stdout_buffer.getvalue()

    @property
    def stderr(self) -> str:
        """Everything written to standard error."""
        return self.stderr_buffer.getvalue()


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Write a UTF-8 CSV file with ``header`` and ``rows``; returns ``path``."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run_import(
    kind: str, path: Path, *arguments: str, output: CommandOutput | None = None
) -> CommandOutput:
    """Run ``patron import KIND PATH ARGUMENTS...`` and return its output.

    Raises ``CommandError`` like the command does (for instance when rows were rejected);
    pass ``output`` to read what it printed before it raised.
    """
    output = output or CommandOutput()
    call_command(
        "import",
        kind,
        str(path),
        *arguments,
        stdout=output.stdout_buffer,
        stderr=output.stderr_buffer,
    )
    return output


def table_counts() -> dict[str, int]:
    """Number of rows of every table of the store's apps, by model label."""
    return {
        model._meta.label: model._default_manager.count()
        for app_label in STORE_APPS
        for model in apps.get_app_config(app_label).get_models()
    }


def read_rejects(path: Path) -> list[dict[str, str]]:
    """The rows of a rejects file."""
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def cents(amount: Decimal | None) -> Decimal:
    """An amount (``None`` for the sum of nothing) rounded to cents for comparisons."""
    return (amount or Decimal(0)).quantize(CENT)


def order_snapshot() -> list[tuple[object, ...]]:
    """Every order with its customer, time, status, amounts and lines, in a comparable form."""
    snapshot: list[tuple[object, ...]] = []
    for order in Order.objects.select_related("customer").order_by("external_id"):
        lines = tuple(
            (
                line.line_key,
                line.product.external_id if line.product else None,
                line.quantity,
                line.unit_price_amount,
                line.line_total_amount,
            )
            for line in order.lines.select_related("product").order_by("line_number")
        )
        snapshot.append(
            (
                order.external_id,
                order.customer.external_id,
                order.ordered_at,
                order.status,
                order.currency,
                order.subtotal_amount,
                order.discount_amount,
                order.total_amount,
                lines,
            )
        )
    return snapshot
