"""Reading CSV in a stream: blocks cut only between records, whatever the block size."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from patron.ingest import readers
from patron.ingest.readers import ImportFileError, detect_format, read_csv

# A BOM, Windows line ends, a quoted field holding a line break, quotes and a comma,
# multi-byte UTF-8 and an empty last field.
AWKWARD_CSV = (
    b'\xef\xbb\xbfa,b\r\n1,"x\r\ny, ""q"""\r\n2,plain\r\n3,"\xe8\xbf\x9e\xe8\xa1\xa3"\r\n4,\r\n'
)


@pytest.mark.parametrize("block_bytes", [1, 2, 3, 5, 7, 16, 64, 8 * 1024 * 1024])
def test_csv_blocks_never_split_a_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int
) -> None:
    # given an awkward CSV file, read in blocks of a few bytes up to the real size
    monkeypatch.setattr(readers, "CSV_CHUNK_BYTES", block_bytes)
    path = tmp_path / "awkward.csv"
    path.write_bytes(AWKWARD_CSV)

    # when it is read
    batches = list(read_csv(path))

    # then every record arrives whole, numbered as a spreadsheet numbers its rows
    frame = pl.concat([batch.frame for batch in batches])
    assert frame.columns == ["a", "b", readers.ROW]
    assert frame.rows() == [
        ("1", 'x\r\ny, "q"', 2),
        ("2", "plain", 3),
        ("3", "连衣", 4),
        ("4", None, 5),
    ]


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    # given an empty file
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")

    # when it is read
    # then the error says it is empty
    with pytest.raises(
        ImportFileError, match=r"^empty\.csv: the file is empty \(no header line\)$"
    ):
        list(read_csv(path))


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("orders.csv", None, "csv"),
        ("orders.CSV.gz", None, "csv"),
        ("orders.tsv", None, "csv"),
        ("events.ndjson", None, "jsonl"),
        ("events.jsonl.gz", None, "jsonl"),
        ("orders.pq", None, "parquet"),
        ("orders.txt", "csv", "csv"),
    ],
)
def test_the_format_comes_from_the_option_or_the_extension(
    name: str, given: str | None, expected: str
) -> None:
    # given / when the format of a file name is detected
    detected = detect_format(Path(name), given)

    # then it is the named format
    assert detected == expected


def test_an_unknown_extension_asks_for_format() -> None:
    # given / when a file has an extension the importer does not know
    with pytest.raises(ImportFileError) as raised:
        detect_format(Path("orders.xlsx"), None)

    # then the error says how to name the format
    assert str(raised.value) == (
        "orders.xlsx: cannot tell the format from the extension; pass --format "
        "(csv, jsonl, parquet)"
    )


def test_a_compressed_tsv_is_read_by_tabs(tmp_path: Path) -> None:
    # given a gzip-compressed, tab-separated file
    path = tmp_path / "orders.tsv.gz"
    path.write_bytes(gzip.compress(b"a\tb\n1,5\t2\n"))

    # when it is read
    (batch,) = list(read_csv(path))

    # then the tab separates the columns and the comma is data
    assert batch.frame.rows() == [("1,5", "2", 2)]
