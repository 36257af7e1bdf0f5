"""Import customers, products, orders and events from files, API calls or DataFrames.

Each input is read in batches, renamed by the user's mapping, validated column by column,
and written set-based. Importing the same input twice changes nothing; a later record for the
same external id updates it. Every bad record is reported with its row, field and reason and
written to the rejects file; with ``strict`` nothing at all is written if any record is bad.
"""

from __future__ import annotations

import csv
import difflib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
from django.conf import settings
from django.db import transaction

from patron.core.money import default_currency
from patron.ingest.loaders import (
    INSERTED,
    UNCHANGED,
    UPDATED,
    BatchResult,
    CustomerLoader,
    EventLoader,
    OrderLoader,
    ProductLoader,
)
from patron.ingest.readers import (
    ROW,
    ImportFileError,
    RawBatch,
    frames_to_batches,
    read_file,
    records_to_batches,
)
from patron.ingest.schemas import MAX_API_RECORDS, SCHEMAS, RecordKind
from patron.ingest.validation import Validated, validate
from patron.loyalty.order_points import OrderPointsSync, sync_order_points
from patron.privacy.pii.masking import mask_address, mask_email, mask_name, mask_phone

__all__ = [
    "ImportFileError",
    "ImportOptions",
    "ImportSummary",
    "OrderPointsSync",
    "RecordKind",
    "RowError",
    "import_file",
    "import_frames",
    "import_records",
]

logger = logging.getLogger(__name__)

_Item = TypeVar("_Item")

#: Personal columns of customer records and how the rejects file shows them: masked, so
#: that no plain personal data is left in a file beside the store (docs/privacy.md).
_PERSONAL_COLUMNS: dict[str, Callable[[str], str]] = {
    "name": mask_name,
    "email": mask_email,
    "phone": mask_phone,
    "address": mask_address,
    "birthday": lambda value: "****" if value else "",  # the raw text may not be a date
}


def _redacted_reason(field_name: str, reason: str) -> str:
    """A rejection reason without the personal value some reasons quote (``not a date: …``)."""
    if field_name in _PERSONAL_COLUMNS:
        return reason.split(":", 1)[0]
    return reason


@dataclass(frozen=True)
class ImportOptions:
    """How to read and apply one input."""

    source: str = ""
    strict: bool = False
    mapping: Mapping[str, str] = field(default_factory=dict)
    rejects_path: Path | None = None
    currency: str | None = None
    time_zone: str | None = None
    encoding: str = "utf-8"
    #: Settle the points of the orders written (earn, refunds, cancellations) when a loyalty
    #: programme is active; off for a history load that should not earn.
    award_points: bool = True


@dataclass(frozen=True)
class RowError:
    """One problem with one record: where it is and what is wrong."""

    source: str
    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}, row {self.row}, {self.field}: {self.reason}"


@dataclass
class ImportSummary:
    """What an import did. With ``strict`` and any rejected record, ``written`` is False and
    the counts say what would have been written."""

    kind: RecordKind
    source: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    created: dict[str, int] = field(default_factory=dict)
    rejects_path: Path | None = None
    written: bool = True
    #: What the loyalty ledger did with the orders written (None: not asked or not orders).
    points: OrderPointsSync | None = None

    @property
    def total(self) -> int:
        """Records read."""
        return self.inserted + self.updated + self.unchanged + self.rejected


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """``["InvoiceNo=order_id", ...]`` as a dict, refusing malformed pairs."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, separator, target = pair.partition("=")
        if not separator or not source.strip() or not target.strip():
            raise ImportFileError(f"--map {pair!r}: write it as SOURCE=TARGET")
        mapping[source.strip()] = target.strip()
    return mapping


class _Run:
    """One import in progress."""

    def __init__(self, kind: RecordKind, options: ImportOptions) -> None:
        self.kind = kind
        self.options = options
        self.schema = SCHEMAS[kind]
        self.summary = ImportSummary(kind=kind, source=options.source)
        self.time_zone = options.time_zone or str(settings.TIME_ZONE)
        self.currency = (options.currency or default_currency()).upper()
        self.given: set[str] | None = None
        self.loader: Any = None
        self.rejects_writer: Any = None
        self.rejects_handle: Any = None
        self.rejects_columns: list[str] = []
        self.error_cap = 1000

    def _check_columns(self, columns: list[str]) -> set[str]:
        mapping = dict(self.options.mapping)
        for source, target in mapping.items():
            if target not in self.schema.columns:
                close = difflib.get_close_matches(target, self.schema.columns, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise ImportFileError(
                    f"--map {source}={target}: {target} is not a column of {self.kind}{hint}; "
                    f"the columns are {', '.join(self.schema.columns)}"
                )
            if source not in columns:
                close = difflib.get_close_matches(source, columns, n=1)
                hint = f"; the closest column present is {close[0]!r}" if close else ""
                raise ImportFileError(f"--map {source}={target}: no column {source!r}{hint}")
        renamed = [mapping.get(name, name) for name in columns]
        given = {name for name in renamed if name in self.schema.columns}
        for name in self.schema.required:
            if name not in given:
                self._missing_column(name, [c for c in columns if c not in mapping])
        if self.schema.one_of_groups and not any(
            set(group) <= given for group in self.schema.one_of_groups
        ):
            wanted = " or ".join(" + ".join(group) for group in self.schema.one_of_groups)
            raise ImportFileError(f"{self.options.source}: the {self.kind} need {wanted} columns")
        self.summary.ignored_columns = sorted(
            name
            for name in columns
            if name not in mapping
            and name not in self.schema.columns
            and name != ROW
            and name != "__error"
        )
        return given

    def _missing_column(self, name: str, present: list[str]) -> None:
        close = difflib.get_close_matches(name, present, n=1, cutoff=0.4)
        hint = (
            f"; the closest column present is {close[0]!r} (use --map {close[0]}={name})"
            if close
            else ""
        )
        raise ImportFileError(f"{self.options.source}: required column {name!r} is missing{hint}")

    def _make_loader(self, given: set[str]) -> Any:
        if self.kind is RecordKind.CUSTOMERS:
            return CustomerLoader(given)
        if self.kind is RecordKind.PRODUCTS:
            return ProductLoader(self.currency, given)
        if self.kind is RecordKind.ORDERS:
            return OrderLoader(self.currency)
        return EventLoader()

    def prepare(self, batch: RawBatch) -> tuple[pl.DataFrame, Validated]:
        """Check, rename and validate one batch: no database access, so that it may run
        while the previous batch is written (:func:`_read_ahead`)."""
        raw = batch.frame
        if self.given is None:
            self.given = self._check_columns(raw.columns)
            self.rejects_columns = [name for name in raw.columns if name not in (ROW, "__error")]
        renamed = raw.rename({k: v for k, v in self.options.mapping.items() if k in raw.columns})
        renamed = renamed.select(
            [
                name
                for name in renamed.columns
                if name in self.schema.columns or name in (ROW, "__error")
            ]
        )
        return raw, validate(self.kind, renamed, self.time_zone)

    def process(self, prepared: tuple[pl.DataFrame, Validated]) -> None:
        """Write one prepared batch and count and report its rows."""
        raw, validated = prepared
        if self.loader is None:
            assert self.given is not None
            self.loader = self._make_loader(self.given)
        result: BatchResult = self.loader.load(validated.good)
        errors = pl.concat([validated.errors, result.rejected.select(validated.errors.columns)])
        if self.kind is RecordKind.CUSTOMERS:
            errors = errors.with_columns(
                pl.struct("field", "reason")
                .map_elements(
                    lambda error: _redacted_reason(error["field"], error["reason"]),
                    return_dtype=pl.Utf8,
                )
                .alias("reason")
            )
        self._count(result, errors)
        if errors.height:
            self._reject(raw, errors)

    def _count(self, result: BatchResult, errors: pl.DataFrame) -> None:
        counts = dict(result.statuses.get_column("status").value_counts().iter_rows())
        self.summary.inserted += counts.get(INSERTED, 0)
        self.summary.updated += counts.get(UPDATED, 0)
        self.summary.unchanged += counts.get(UNCHANGED, 0)
        for name, count in result.created.items():
            self.summary.created[name] = self.summary.created.get(name, 0) + count
        self.summary.rejected += errors.get_column(ROW).n_unique()

    def _reject(self, raw: pl.DataFrame, errors: pl.DataFrame) -> None:
        for row_number, field_name, reason in errors.iter_rows():
            if len(self.summary.errors) >= self.error_cap:
                break
            self.summary.errors.append(
                RowError(self.options.source, row_number, field_name, reason)
            )
        if self.options.rejects_path is None:
            return
        reasons = errors.group_by(ROW, maintain_order=True).agg(
            pl.col("field").str.join("; ").alias("reject_field"),
            pl.format("{}: {}", "field", "reason").str.join("; ").alias("reject_reason"),
        )
        bad = raw.join(reasons, on=ROW, how="inner").sort(ROW)
        if self.kind is RecordKind.CUSTOMERS:
            bad = self._masked(bad)
        if self.rejects_writer is None:
            self.options.rejects_path.parent.mkdir(parents=True, exist_ok=True)
            self.rejects_handle = self.options.rejects_path.open("w", newline="", encoding="utf-8")
            self.rejects_writer = csv.writer(self.rejects_handle)
            self.rejects_writer.writerow(
                ["reject_row", "reject_field", "reject_reason", *self.rejects_columns]
            )
            self.summary.rejects_path = self.options.rejects_path
        columns = [ROW, "reject_field", "reject_reason", *self.rejects_columns]
        for name in columns:
            if name not in bad.columns:
                bad = bad.with_columns(pl.lit(None, dtype=pl.Utf8).alias(name))
        self.rejects_writer.writerows(bad.select(columns).cast(pl.Utf8).rows())

    def _masked(self, bad: pl.DataFrame) -> pl.DataFrame:
        """Rejected customer rows with their personal columns (under the file's own names)
        masked."""
        mapping = dict(self.options.mapping)
        masked = []
        for name in bad.columns:
            mask = _PERSONAL_COLUMNS.get(mapping.get(name, name))
            if mask is not None:
                masked.append(
                    pl.col(name).cast(pl.Utf8).map_elements(mask, return_dtype=pl.Utf8).alias(name)
                )
        return bad.with_columns(masked) if masked else bad

    def finish(self) -> None:
        if self.loader is not None and hasattr(self.loader, "finish"):
            self.loader.finish()

    def close(self) -> None:
        if self.rejects_handle is not None:
            self.rejects_handle.close()


_END = object()


def _read_ahead(items: Iterator[_Item]) -> Iterator[_Item]:
    """The items of ``items``, each next one computed in a thread while the caller works
    on the current one.

    Reading and validating a batch (Polars, which releases the GIL) then overlaps with
    writing the previous one (the database's own work, which releases it too): on a
    machine with a spare core the import takes about as long as the larger of the two
    instead of their sum. The thread never touches the database. An error raised while
    computing an item is raised here, in the caller's thread; when the caller stops
    early, the thread stops too.
    """
    handoff: queue.Queue[tuple[object, BaseException | None]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def put(item: object, error: BaseException | None = None) -> bool:
        while not stop.is_set():
            try:
                handoff.put((item, error), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the caller, raised there
            put(None, error)

    worker = threading.Thread(target=work, name="patron-import-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, error = handoff.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


def _run(kind: RecordKind, batches: Iterator[RawBatch], options: ImportOptions) -> ImportSummary:
    kind = RecordKind(kind)
    run = _Run(kind, options)
    try:
        with transaction.atomic():
            for prepared in _read_ahead(map(run.prepare, batches)):
                run.process(prepared)
            if run.given is None:
                raise ImportFileError(f"{options.source}: there are no records to import")
            run.finish()
            if options.strict and run.summary.rejected:
                # All or nothing: undo every write of this import.
                transaction.set_rollback(True)
                run.summary.written = False
            elif kind is RecordKind.ORDERS and options.award_points:
                # In the import's transaction: the orders and their points land together, so
                # a failure cannot leave orders that will never earn.
                run.summary.points = sync_order_points(run.loader.written_orders)
    finally:
        run.close()
    logger.info(
        "import %s from %s: %d inserted, %d updated, %d unchanged, %d rejected",
        kind,
        options.source,
        run.summary.inserted,
        run.summary.updated,
        run.summary.unchanged,
        run.summary.rejected,
    )
    return run.summary


def import_file(
    kind: RecordKind,
    path: Path,
    *,
    file_format: str | None = None,
    options: ImportOptions | None = None,
) -> ImportSummary:
    """Import a CSV, JSONL or Parquet file (optionally gzip-compressed), read as a stream."""
    options = options or ImportOptions()
    if not options.source:
        options = _with_source(options, path.name)
    try:
        batches = read_file(path, file_format, encoding=options.encoding)
        return _run(kind, batches, options)
    except pl.exceptions.ComputeError as error:
        raise ImportFileError(
            f"{path.name}: the file cannot be read as {file_format or 'given'}: {error}"
        ) from error


def import_records(
    kind: RecordKind, records: Iterable[Mapping[str, Any]], *, options: ImportOptions | None = None
) -> ImportSummary:
    """Import a list of JSON-like records (the API); at most 10,000 per call."""
    options = options or ImportOptions(source="api")
    record_list = list(records)
    if len(record_list) > MAX_API_RECORDS:
        raise ImportFileError(
            f"{len(record_list)} records in one call; send at most {MAX_API_RECORDS:,} per call"
        )
    numbered = (
        (index, record if isinstance(record, Mapping) else {"__error": "not a JSON object"})
        for index, record in enumerate(record_list, start=1)
    )
    return _run(kind, records_to_batches(numbered), options)


def import_frames(
    kind: RecordKind, frames: Iterable[pl.DataFrame], *, options: ImportOptions | None = None
) -> ImportSummary:
    """Import Polars frames with canonical columns (typed or text), numbered from 1.

    ``frames`` is iterated in a helper thread (see :func:`_read_ahead`): it must not read
    the store itself (a database connection belongs to one thread)."""
    return _run(kind, frames_to_batches(frames), options or ImportOptions(source="frames"))


def default_rejects_path(source: Path) -> Path:
    """Where rejected rows go when the user names no file: beside the store."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    name = source.name.split(".")[0] or "import"
    return Path(settings.PATRON_HOME) / "rejects" / f"{name}-{stamp}.rejects.csv"


def _with_source(options: ImportOptions, source: str) -> ImportOptions:
    return replace(options, source=source)
