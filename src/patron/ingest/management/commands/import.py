"""``patron import customers|products|orders|events PATH``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from patron.ingest.readers import FORMATS
from patron.ingest.services import (
    ImportFileError,
    ImportOptions,
    RecordKind,
    default_rejects_path,
    import_file,
    parse_mapping,
)

SHOWN_ERRORS = 20


class Command(BaseCommand):
    help = (
        "Import customers, products, orders or events from a CSV, JSONL or Parquet file "
        "(optionally .gz). Importing the same file twice changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=[kind.value for kind in RecordKind])
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", choices=FORMATS, dest="file_format")
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="SOURCE=TARGET",
            help="read the file's column SOURCE as the canonical column TARGET (repeatable)",
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="write nothing at all if any row is bad",
        )
        parser.add_argument(
            "--rejects",
            type=Path,
            help="CSV file for the rejected rows (default: PATRON_HOME/rejects/...)",
        )
        parser.add_argument(
            "--currency", help="currency of rows without one (default PATRON_CURRENCY)"
        )
        parser.add_argument(
            "--time-zone", help="time zone of times without an offset (default PATRON_TIME_ZONE)"
        )
        parser.add_argument(
            "--encoding", default="utf-8", help="text encoding of CSV/JSONL (e.g. gbk)"
        )
        parser.add_argument(
            "--no-points",
            action="store_false",
            dest="award_points",
            help="orders: do not settle loyalty points (a history load that should not earn)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        started = time.perf_counter()
        try:
            import_options = ImportOptions(
                source=path.name,
                strict=options["strict"],
                mapping=parse_mapping(options["map"]),
                rejects_path=options["rejects"] or default_rejects_path(path),
                currency=options["currency"],
                time_zone=options["time_zone"],
                encoding=options["encoding"],
                award_points=options["award_points"],
            )
            summary = import_file(
                RecordKind(options["kind"]),
                path,
                file_format=options["file_format"],
                options=import_options,
            )
        except ImportFileError as error:
            raise CommandError(str(error)) from error
        elapsed = time.perf_counter() - started
        for row_error in summary.errors[:SHOWN_ERRORS]:
            self.stderr.write(str(row_error))
        if summary.rejected > SHOWN_ERRORS:
            self.stderr.write(f"... and more: {summary.rejected} rows rejected in all")
        if summary.ignored_columns:
            self.stdout.write(f"Ignored columns: {', '.join(summary.ignored_columns)}")
        created = ", ".join(
            f"{count} {name}" for name, count in sorted(summary.created.items()) if count
        )
        verb = "Imported" if summary.written else "Nothing written (--strict); would have imported"
        self.stdout.write(
            f"{verb} {summary.kind} from {path.name} in {elapsed:.1f}s: "
            f"{summary.inserted} inserted, {summary.updated} updated, "
            f"{summary.unchanged} unchanged, {summary.rejected} rejected"
            + (f" (created {created})" if created and summary.written else "")
        )
        if summary.points is not None:
            self.stdout.write(f"Loyalty points: {summary.points}")
            for problem in summary.points.problems[:SHOWN_ERRORS]:
                self.stderr.write(f"points refused: {problem}")
        if summary.rejects_path is not None:
            self.stdout.write(f"Rejected rows with their reasons: {summary.rejects_path}")
        if summary.rejected:
            raise CommandError(f"{summary.rejected} rows rejected", returncode=1)
