"""Overlap the stages of a video pass with threads: decode ahead, encode behind.

Why threads and not processes: the heavy parts (FFmpeg's decoder and x264 in PyAV, OpenCV, NumPy)
release the GIL, and frames are large arrays a process would have to copy.  On the GPU machine the
command's render pass took decode 1.3 s + compose 2.9 s + encode 3.1 s one after the other
(``benchmarks/results/gpu_h200``); run side by side, the pass takes about as long as its slowest stage.

Each helper keeps a bounded queue, so memory stays a few frames whatever the video's length, and
re-raises a worker's exception in the caller's thread, where ``InputError`` reaches the user as
one line like any other.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_DONE = object()


class _Failure:
    """A worker's exception, carried through the queue to be raised in the consumer's thread."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch(Generic[T]):
    """Iterate ``source`` in a background thread, ``depth`` items ahead of the consumer.

    ``busy_s``: the seconds the worker spent producing items (its own time, not time spent waiting
    for room in the queue), so a stage timer can still say what decoding costs once it overlaps.
    Close it (or use it as a context manager) when stopping early: the worker then stops too.
    """

    def __init__(self, source: Iterable[T], depth: int = 8, name: str = "prefetch") -> None:
        self.busy_s = 0.0
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._source = source
        self._finished = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        """Put ``item`` unless the consumer has gone; False once it has."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        iterator = iter(self._source)
        try:
            while not self._stop.is_set():
                start = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    self._put(_DONE)
                    return
                finally:
                    self.busy_s += time.perf_counter() - start
                if not self._put(item):
                    return
        except BaseException as err:  # noqa: BLE001 - every failure must reach the consumer
            self._put(_Failure(err))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:  # a generator's finally blocks (the container's close) run here
                close()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if item is _DONE:
            self._finished = True
            self._thread.join()
            raise StopIteration
        if isinstance(item, _Failure):
            self._finished = True
            self._thread.join()
            raise item.error
        return item

    def close(self) -> None:
        """Stop the worker and wait for it (it may be in the middle of producing one item)."""
        self._stop.set()
        self._finished = True
        self._thread.join()

    def __enter__(self) -> Prefetch[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BackgroundSink(Generic[T]):
    """Call ``consume(item)`` for every ``put`` item in a background thread, in order.

    A failure in ``consume`` is raised by the next ``put`` or by ``close``; items after it are
    dropped.  ``busy_s``: the worker's own seconds in ``consume``.
    """

    def __init__(self, consume: Callable[[T], None], depth: int = 8, name: str = "sink") -> None:
        self.busy_s = 0.0
        self._consume = consume
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._error: BaseException | None = None
        self._failed = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _DONE:
                return
            if self._failed:
                continue  # drain: the producer learns of the failure at its next put
            start = time.perf_counter()
            try:
                self._consume(item)
            except BaseException as err:  # noqa: BLE001 - re-raised in the producer's thread
                self._error, self._failed = err, True
            finally:
                self.busy_s += time.perf_counter() - start

    def _raise_failure(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def put(self, item: T) -> None:
        self._raise_failure()
        self._queue.put(item)

    def close(self) -> None:
        """Wait until every item is consumed; raise the worker's failure, if any."""
        if not self._closed:
            self._closed = True
            self._queue.put(_DONE)
            self._thread.join()
        self._raise_failure()

    def __enter__(self) -> BackgroundSink[T]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # an error in the producer wins; the worker's own is dropped
            self.close()
        except BaseException:  # noqa: BLE001
            pass
