"""``patron export segment NAME PATH``: write one segment's customers to CSV or Parquet.

The file holds names and contacts, so each export is a ``pii_read`` audit event (purpose
``segment export (command)``, the segment and the number of rows; never a value)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patron.analytics.choices import SegmentationChoices
from patron.analytics.selectors import UnknownSegmentError, get_run
from patron.analytics.services import AnalysisError, export_segment
from patron.privacy.audit import AuditActor, record
from patron.privacy.choices import AuditActionChoices

#: Who the audit log names for an export by this command.
COMMAND_ACTOR = AuditActor(label="command: patron export")


class Command(BaseCommand):
    help = "Export analysis results: `export segment NAME PATH` writes a segment's customers."

    def add_arguments(self, parser: CommandParser) -> None:
        # One sub-action per kind of export, so that others (customers, ...) can join later.
        actions = parser.add_subparsers(dest="what", required=True, metavar="segment")
        segment = actions.add_parser(
            "segment",
            help="the customers of one segment, with their contact and scores",
            description=(
                "Write the customers of segment NAME (a code such as champions, or its label "
                "in English or Chinese) to PATH: .csv or .parquet."
            ),
        )
        segment.add_argument("name", help="segment code or label, e.g. champions or 冠军客户")
        segment.add_argument("path", type=Path, help="file to write, .csv or .parquet")
        segment.add_argument(
            "--by",
            choices=SegmentationChoices.values,
            default=SegmentationChoices.RFM,
            help="which segmentation NAME belongs to (rfm)",
        )
        segment.add_argument(
            "--run", type=int, default=None, help="analysis run id (default: the latest)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        run = get_run(options["run"])
        if run is None:
            if options["run"] is not None:
                raise CommandError(f"no successful analysis run #{options['run']}")
            raise CommandError("no analysis has run yet: run `patron analyze` first")
        try:
            export = export_segment(
                options["name"], Path(options["path"]), by=options["by"], run=run
            )
        except (AnalysisError, UnknownSegmentError) as error:
            raise CommandError(str(error)) from error
        record(
            AuditActionChoices.PII_READ,
            actor=COMMAND_ACTOR,
            details={
                "purpose": "segment export (command)",
                "segmentation": export.by,
                "segment": export.segment,
                "analysis_run": export.run_id,
                "rows": export.customers,
            },
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {export.customers:,} customers of {export.by} segment {export.segment} "
                f"(analysis #{export.run_id}) to {export.path}"
            )
        )
