"""The decode-ahead and encode-behind threads: order, failures, early stops, and real overlap."""

from __future__ import annotations

import threading
import time

import pytest

from istvt_explain.data.background import BackgroundSink, Prefetch
from istvt_explain.errors import InputError


def slow_numbers(count: int, delay: float = 0.0, fail_at: int | None = None, closed: list | None = None):
    try:
        for i in range(count):
            if i == fail_at:
                raise InputError(f"corrupt at {i}")
            time.sleep(delay)
            yield i
    finally:
        if closed is not None:
            closed.append(threading.current_thread().name)


def test_prefetch_yields_every_item_in_order_and_times_its_worker():
    with Prefetch(slow_numbers(30, delay=0.002), depth=4) as items:
        assert list(items) == list(range(30))
    assert items.busy_s >= 30 * 0.002


def test_prefetch_raises_the_source_error_in_the_consumer_after_the_items_before_it():
    seen = []
    with pytest.raises(InputError, match="corrupt at 5"), Prefetch(slow_numbers(10, fail_at=5)) as items:
        for item in items:
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_prefetch_closed_early_stops_its_worker_and_closes_the_source():
    closed: list[str] = []
    with Prefetch(slow_numbers(10_000, closed=closed), depth=2, name="decode-test") as items:
        assert next(items) == 0
    assert closed == ["decode-test"]  # the generator's finally ran, in the worker's thread
    assert not any(t.name == "decode-test" for t in threading.enumerate())
    with pytest.raises(StopIteration):
        next(items)


def test_prefetch_overlaps_producing_with_consuming():
    """20 items that take 20 ms to make and 20 ms to use: 0.8 s one after the other, ~0.4 s side by side."""
    start = time.perf_counter()
    with Prefetch(slow_numbers(20, delay=0.02)) as items:
        for _ in items:
            time.sleep(0.02)
    assert time.perf_counter() - start < 0.65


def test_sink_consumes_every_item_in_order_and_overlaps():
    got = []

    def consume(item: int) -> None:
        time.sleep(0.02)
        got.append(item)

    start = time.perf_counter()
    with BackgroundSink(consume, depth=4) as sink:
        for i in range(20):
            time.sleep(0.02)
            sink.put(i)
    assert got == list(range(20))  # close() waited for the last one
    assert time.perf_counter() - start < 0.65
    assert sink.busy_s >= 20 * 0.02


def test_sink_failure_reaches_the_producer_and_later_items_are_dropped():
    got = []

    def consume(item: int) -> None:
        if item == 3:
            raise OSError("disk full")
        got.append(item)

    sink = BackgroundSink(consume, depth=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            sink.put(i)
        sink.close()
    sink.close()
    assert got == [0, 1, 2]


def test_sink_keeps_the_producers_own_error():
    def consume(item: int) -> None:
        raise OSError("worker")

    with pytest.raises(ValueError, match="producer"), BackgroundSink(consume) as sink:
        sink.put(1)
        time.sleep(0.05)
        raise ValueError("producer")
