"""Stream records out of CSV, JSONL and Parquet files (optionally gzip-compressed).

Every reader yields :class:`RawBatch` es of at most a few tens of thousands of records, so a
file of any size is read in constant memory. CSV and JSONL values arrive as strings; the
row number of a record is the row a spreadsheet shows (the CSV header is row 1; a record whose
quoted field holds a line break is still one row).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import polars as pl

ROW = "__row"
CSV_CHUNK_BYTES = 8 * 1024 * 1024
RECORDS_PER_BATCH = 50_000
FORMATS = ("csv", "jsonl", "parquet")


class ImportFileError(ValueError):
    """A problem with the input as a whole (unreadable file, a required column missing ...)."""


@dataclass(frozen=True)
class RawBatch:
    """Records as read, original column names, plus the ``__row`` number of each."""

    frame: pl.DataFrame


def detect_format(path: Path, given: str | None) -> str:
    """The format named by ``given`` or by the file's extension (``.csv.gz`` is csv)."""
    if given:
        if given not in FORMATS:
            raise ImportFileError(f"unknown format {given!r}: use one of {', '.join(FORMATS)}")
        return given
    suffixes = [suffix.lower() for suffix in path.suffixes if suffix.lower() != ".gz"]
    extension = suffixes[-1].lstrip(".") if suffixes else ""
    extension = {"ndjson": "jsonl", "json": "jsonl", "pq": "parquet", "tsv": "csv"}.get(
        extension, extension
    )
    if extension not in FORMATS:
        raise ImportFileError(
            f"{path.name}: cannot tell the format from the extension; pass --format "
            f"({', '.join(FORMATS)})"
        )
    return extension


def _open_binary(path: Path) -> IO[bytes]:
    if not path.exists():
        raise ImportFileError(f"{path}: no such file")
    handle: IO[bytes] = path.open("rb")
    if handle.read(2) == b"\x1f\x8b":
        handle.seek(0)
        return gzip.open(handle, "rb")  # type: ignore[return-value]
    handle.seek(0)
    return handle


def _split_complete_records(block: bytes) -> int:
    """Offset just past the last newline of ``block`` that is outside a quoted field."""
    end = block.rfind(b"\n")
    while end >= 0 and block.count(b'"', 0, end) % 2:
        end = block.rfind(b"\n", 0, end)
    return end + 1


def read_csv(path: Path, *, encoding: str = "utf-8") -> Iterator[RawBatch]:
    """CSV with a header line, in blocks of complete records parsed by Polars as strings.

    Bytes that are not valid in ``encoding`` become U+FFFD so the row can be rejected by
    name instead of the whole file failing.
    """
    with _open_binary(path) as handle:
        header_line = handle.readline()
        if not header_line.strip():
            raise ImportFileError(f"{path.name}: the file is empty (no header line)")
        if header_line.startswith(b"\xef\xbb\xbf"):
            header_line = header_line[3:]
        separator = "\t" if path.name.lower().removesuffix(".gz").endswith(".tsv") else ","
        header = _decode(header_line, encoding).rstrip("\r\n").encode()
        next_row = 2
        pending = b""
        while True:
            block = handle.read(CSV_CHUNK_BYTES)
            data = pending + block
            if not data:
                break
            cut = len(data) if not block else _split_complete_records(data)
            if cut == 0:
                pending = data
                continue
            complete, pending = data[:cut], data[cut:]
            text = _decode(complete, encoding).encode() if encoding != "utf-8" else complete
            frame = pl.read_csv(
                io.BytesIO(header + b"\n" + text),
                separator=separator,
                infer_schema=False,
                encoding="utf8-lossy",
                truncate_ragged_lines=False,
                raise_if_empty=False,
            )
            frame = frame.with_columns(
                pl.int_range(next_row, next_row + frame.height, dtype=pl.Int64).alias(ROW)
            )
            next_row += frame.height
            if frame.height:
                yield RawBatch(frame)


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding, errors="replace")
    except LookupError as error:
        raise ImportFileError(f"unknown encoding {encoding!r}") from error


def read_jsonl(path: Path, *, encoding: str = "utf-8") -> Iterator[RawBatch]:
    """One JSON object per line; an order's ``lines`` list becomes one record per line."""
    with _open_binary(path) as handle:
        text = io.TextIOWrapper(handle, encoding=encoding, errors="replace")
        yield from records_to_batches(_jsonl_records(text, path.name), first_row=1)


def _jsonl_records(text: IO[str], name: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    for line_number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield line_number, {"__error": f"not valid JSON ({error.msg})"}
            continue
        if not isinstance(record, dict):
            yield line_number, {"__error": "not a JSON object"}
            continue
        yield line_number, record


def read_parquet(path: Path) -> Iterator[RawBatch]:
    """A Parquet file, one row group batch at a time."""
    import pyarrow.parquet as parquet

    if not path.exists():
        raise ImportFileError(f"{path}: no such file")
    try:
        parquet_file = parquet.ParquetFile(path)
    except Exception as error:
        raise ImportFileError(f"{path.name}: not a readable Parquet file ({error})") from error
    next_row = 1
    for arrow_batch in parquet_file.iter_batches(batch_size=RECORDS_PER_BATCH):
        frame = pl.from_arrow(arrow_batch)
        assert isinstance(frame, pl.DataFrame)
        frame = frame.with_columns(
            pl.int_range(next_row, next_row + frame.height, dtype=pl.Int64).alias(ROW)
        )
        next_row += frame.height
        yield RawBatch(frame)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flatten(record: Mapping[str, Any]) -> Iterator[dict[str, str | None]]:
    """Records as string columns; an order with nested ``lines`` becomes one row per line."""
    lines = record.get("lines")
    if isinstance(lines, list) and lines:
        header = {key: _text(value) for key, value in record.items() if key != "lines"}
        for line in lines:
            if isinstance(line, dict):
                yield {**header, **{key: _text(value) for key, value in line.items()}}
            else:
                yield {**header, "__error": "an order line is not a JSON object"}
        return
    yield {key: _text(value) for key, value in record.items()}


def records_to_batches(
    records: Iterable[tuple[int, Mapping[str, Any]]], *, first_row: int = 1
) -> Iterator[RawBatch]:
    """Group ``(row number, record)`` pairs into string-typed batches."""
    rows: list[dict[str, str | None]] = []
    numbers: list[int] = []
    for row_number, record in records:
        for flat in _flatten(record):
            rows.append(flat)
            numbers.append(row_number)
        if len(rows) >= RECORDS_PER_BATCH:
            yield _batch(rows, numbers)
            rows, numbers = [], []
    if rows:
        yield _batch(rows, numbers)


def _batch(rows: list[dict[str, str | None]], numbers: list[int]) -> RawBatch:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    data = {name: [row.get(name) for row in rows] for name in columns}
    frame = pl.DataFrame(data, schema=dict.fromkeys(columns, pl.Utf8))
    return RawBatch(frame.with_columns(pl.Series(ROW, numbers, dtype=pl.Int64)))


def frames_to_batches(frames: Iterable[pl.DataFrame]) -> Iterator[RawBatch]:
    """Typed frames (from the demo or an analyst) numbered from 1 across the frames."""
    next_row = 1
    for frame in frames:
        yield RawBatch(
            frame.with_columns(
                pl.int_range(next_row, next_row + frame.height, dtype=pl.Int64).alias(ROW)
            )
        )
        next_row += frame.height


def read_file(
    path: Path, file_format: str | None, *, encoding: str = "utf-8"
) -> Iterator[RawBatch]:
    """Batches of the records in ``path``."""
    detected = detect_format(path, file_format)
    if detected == "csv":
        return read_csv(path, encoding=encoding)
    if detected == "jsonl":
        return read_jsonl(path, encoding=encoding)
    return read_parquet(path)
