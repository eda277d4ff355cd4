"""Preprocess a data set into the cache: worker processes, progress bar, resumable, failure summary.

Each video is independent: a worker extracts its face crops (``extract_face_clips``) and stores
them (``cache.store_video``).  Complete videos already in the cache are skipped (an incomplete
entry is rebuilt), so a run that was killed finishes when started again.  A video that fails is
reported with its reason and the run goes on; so is one whose worker process dies (the OOM
killer): that worker is replaced.  Workers never outlive the run: they watch their parent and
exit when it is gone, and SIGTERM of the run stops them as SIGINT does.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from ..errors import InputError
from ._files import exit_with_parent, sigterm_as_interrupt, this_process
from .cache import CacheSettings, discard_entry, is_cached, open_cache, store_video, write_json
from .clips import extract_face_clips
from .datasets.entry import VideoEntry
from .detectors import FaceDetector, detector_for


@dataclass
class PreprocessReport:
    """What a run did: keys done now, keys found already cached, and (video path, reason) failures."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.done) + len(self.skipped) + len(self.failed)

    def summary(self, limit: int = 20) -> str:
        lines = [f"{self.total} videos: {len(self.done)} processed, {len(self.skipped)} already cached, "
                 f"{len(self.failed)} failed"]
        for path, reason in self.failed[:limit]:
            lines.append(f"  FAILED {reason}" if reason.startswith(path) else f"  FAILED {path}: {reason}")
        if len(self.failed) > limit:
            lines.append(f"  ... and {len(self.failed) - limit} more (see failures.json)")
        return "\n".join(lines)


@functools.cache
def _worker_detector(name: str, min_face: int) -> FaceDetector:
    """One detector per worker process (loading the networks costs more than a small video)."""
    return detector_for(name, min_face=min_face)


def _worker_context() -> multiprocessing.context.BaseContext:
    """Workers forked from a fresh server that has imported this module once (cheap to start, and
    never a fork of a process whose OpenCV/torch threads are running); spawn where there is none."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # one process per core already


Task = Callable[[VideoEntry, Path, CacheSettings], tuple[str, str, str]]
"""What a worker does with one video: ``process_video``, or a stand-in in the fault tests."""


def process_video(entry: VideoEntry, cache_dir: Path, settings: CacheSettings) -> tuple[str, str, str]:
    """Extract and store one video; returns (key, "done"|"skipped"|"failed", reason)."""
    if is_cached(cache_dir, entry.key, settings.image_size):
        return entry.key, "skipped", ""
    try:
        clips = extract_face_clips(
            entry.path, image_size=settings.image_size, frames=settings.frames, stride=1,
            detector=_worker_detector(settings.detector, settings.min_face), detect_every=settings.detect_every,
            margin=settings.margin, max_frames=settings.max_frames, mask_path=entry.mask_path,
            frames_folder=cache_dir)  # the frames kept between the two passes sit on the cache's disk
        stored = store_video(cache_dir, entry, clips)
    except InputError as err:
        return entry.key, "failed", str(err)
    except MemoryError:
        return entry.key, "failed", f"{entry.path}: out of memory"
    except Exception as err:  # a bug or an odd file must not stop a long run; report it
        return entry.key, "failed", f"{entry.path}: unexpected {type(err).__name__}: {err}"
    return entry.key, "done" if stored else "skipped", ""


def _unique(entries: Iterable[VideoEntry], report: PreprocessReport) -> list[VideoEntry]:
    entries = list(entries)
    counts = Counter(e.key for e in entries)
    unique = []
    for entry in entries:
        if counts[entry.key] > 1:
            report.failed.append((str(entry.path), f"{entry.path}: {counts[entry.key]} videos share the id "
                                  f"{entry.video_id!r}; rename one"))
        else:
            unique.append(entry)
    return unique


def preprocess(entries: Iterable[VideoEntry], cache_dir: str | os.PathLike, settings: CacheSettings, *,
               workers: int = 1, progress: bool = True,
               on_result: Callable[[str, str, str], None] | None = None,
               task: Task = process_video) -> PreprocessReport:
    """Cache the face crops of ``entries`` in ``cache_dir``; skip those already there.

    ``workers`` > 1 runs that many processes.  ``failures.json`` in the cache lists this run's
    failures (retried on the next run).  ``on_result(key, status, reason)`` is called per video.
    ``task`` (a module-level function, for the worker processes) replaces ``process_video`` in tests.
    """
    from tqdm.auto import tqdm

    cache_dir = open_cache(cache_dir, settings)
    report = PreprocessReport()
    todo = _unique(entries, report)
    by_key = {e.key: e for e in todo}
    bar = tqdm(total=len(todo), desc="preprocess", unit="video", disable=not progress, dynamic_ncols=True)

    def record(key: str, status: str, reason: str) -> None:
        if status == "failed":
            report.failed.append((str(by_key[key].path), reason))
        else:
            (report.done if status == "done" else report.skipped).append(key)
        bar.update(1)
        bar.set_postfix(failed=len(report.failed), refresh=False)
        if on_result is not None:
            on_result(key, status, reason)

    try:
        with sigterm_as_interrupt():  # workers stopped, failures.json written, exit 130
            pending = []
            for entry in todo:
                if is_cached(cache_dir, entry.key, settings.image_size):
                    record(entry.key, "skipped", "")
                else:
                    discard_entry(cache_dir, entry.key)  # half-built or damaged: built again
                    pending.append(entry)
            if workers <= 1 or len(pending) <= 1:
                _init_worker()
                for entry in pending:
                    record(*task(entry, cache_dir, settings))
            else:
                _run_pool(pending, min(workers, len(pending)), cache_dir, settings, task, record)
    finally:
        bar.close()
        write_json(Path(cache_dir) / "failures.json",
                   [{"path": path, "reason": reason} for path, reason in report.failed])
    return report


# -- the worker pool ------------------------------------------------------------------------------
def _worker_main(conn, cache_dir: Path, settings: CacheSettings, task: Task, parent: tuple[int, str | None]) -> None:
    """A worker: videos in from the pipe, results out, until the pipe closes or the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    exit_with_parent(parent)  # gone within 0.2 s of the run that started it, even after a SIGKILL
    _init_worker()
    while True:
        try:
            entry = conn.recv()
        except (EOFError, OSError):
            return
        if entry is None:
            return
        conn.send(task(entry, cache_dir, settings))


class _Worker:
    """One worker process and its pipe; ``entry`` is the video it is working on (None when idle)."""

    def __init__(self, context, cache_dir: Path, settings: CacheSettings, task: Task) -> None:
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, cache_dir, settings, task, this_process()),
                                       daemon=True, name="istvt-preprocess")
        self.process.start()
        child.close()
        self.entry: VideoEntry | None = None

    def assign(self, entry: VideoEntry) -> bool:
        """Hand over one video; False when the worker is gone."""
        try:
            self.conn.send(entry)
        except (BrokenPipeError, OSError):
            return False
        self.entry = entry
        return True

    def result(self) -> tuple[str, str, str] | None:
        """Its result once ready, or None when it died without one."""
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            return None

    def death(self) -> str:
        """How the process ended, in words for failures.json."""
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = ", as the out-of-memory killer does" if -code == signal.SIGKILL else ""
            return f"killed by {name}{hint}"
        return f"exit status {code}"

    def stop(self) -> None:
        """Close the pipe (an idle worker exits), then end it for sure."""
        self.conn.close()
        self.process.join(timeout=0.5 if self.entry is None else 0)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _run_pool(pending: list[VideoEntry], workers: int, cache_dir: Path, settings: CacheSettings, task: Task,
              record: Callable[[str, str, str], None]) -> None:
    """Process ``pending`` on ``workers`` processes, one video each at a time.

    A worker that dies costs only its video (failed, with the reason) and is replaced; the
    others go on.  Every worker is stopped when this returns, however it returns.
    """
    context = _worker_context()
    queue = deque(pending)
    idle: list[_Worker] = []
    busy: list[_Worker] = []
    try:
        while queue or busy:
            while queue and len(busy) < workers:
                worker = idle.pop() if idle else _Worker(context, cache_dir, settings, task)
                if worker.assign(queue[0]):
                    queue.popleft()
                    busy.append(worker)
                else:  # it died while idle: nothing lost, start another
                    worker.stop()
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for worker in [w for w in busy if w.conn in ready or w.process.sentinel in ready]:
                busy.remove(worker)
                result = worker.result() if worker.conn in ready or worker.conn.poll() else None
                if result is not None:
                    record(*result)
                    worker.entry = None
                    idle.append(worker)
                    continue
                entry = worker.entry
                record(entry.key, "failed", f"{entry.path}: the worker process died while processing it "
                                            f"({worker.death()}); the next run retries it")
                worker.stop()
    finally:
        for worker in busy + idle:
            worker.stop()
