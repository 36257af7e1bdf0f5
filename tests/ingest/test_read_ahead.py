"""The import reads and validates the next batch in a helper thread while it writes one."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from patron.ingest.services import ImportFileError, _read_ahead


def test_items_come_in_order_and_a_producer_error_is_raised_in_the_caller() -> None:
    # given a producer that fails on its third item
    def produce() -> Iterator[int]:
        yield 1
        yield 2
        raise ImportFileError("broken at 3")

    # when read ahead
    items = _read_ahead(produce())
    seen = [next(items), next(items)]
    with pytest.raises(ImportFileError, match="broken at 3"):
        next(items)

    # then the items before the error arrived in order
    assert seen == [1, 2]


def test_the_helper_thread_stops_when_the_caller_stops_early() -> None:
    # given a long producer
    produced: list[int] = []

    def produce() -> Iterator[int]:
        for number in range(1000):
            produced.append(number)
            yield number

    # when the caller takes one item and stops
    items = _read_ahead(produce())
    assert next(items) == 0
    items.close()

    # then the producer ran at most a couple of items ahead and its thread is gone
    assert len(produced) <= 3
    assert "patron-import-read-ahead" not in {thread.name for thread in threading.enumerate()}
