"""Preprocess a data set into the cache: worker processes, progress bar, resumable, failure summary.

Each video is independent: a worker extracts its face crops (``extract_face_clips``) and stores
them (``cache.store_video``).  Videos already in the cache are skipped, so a run that was killed
finishes when started again.  A video that fails is reported with its reason and the run goes on.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .cache import CacheSettings, is_cached, open_cache, store_video, write_json
from .clips import extract_face_clips
from .datasets.entry import VideoEntry

_DETECTORS: dict[tuple[str, int], object] = {}


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


def _detector(name: str, min_face: int):
    """One detector per worker process (loading the networks costs more than a small video)."""
    if (name, min_face) not in _DETECTORS:
        from .faces import create_detector

        _DETECTORS[name, min_face] = create_detector(name, min_face=min_face)
    return _DETECTORS[name, min_face]


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


def process_video(entry: VideoEntry, cache_dir: Path, settings: CacheSettings) -> tuple[str, str, str]:
    """Extract and store one video; returns (key, "done"|"skipped"|"failed", reason)."""
    if is_cached(cache_dir, entry.key):
        return entry.key, "skipped", ""
    try:
        clips = extract_face_clips(
            entry.path, image_size=settings.image_size, frames=settings.frames, stride=1,
            detector=_detector(settings.detector, settings.min_face), detect_every=settings.detect_every,
            margin=settings.margin, max_frames=settings.max_frames, mask_path=entry.mask_path)
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
               on_result: Callable[[str, str, str], None] | None = None) -> PreprocessReport:
    """Cache the face crops of ``entries`` in ``cache_dir``; skip those already there.

    ``workers`` > 1 runs that many processes.  ``failures.json`` in the cache lists this run's
    failures (retried on the next run).  ``on_result(key, status, reason)`` is called per video.
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
        pending = []
        for entry in todo:
            if is_cached(cache_dir, entry.key):
                record(entry.key, "skipped", "")
            else:
                pending.append(entry)
        if workers <= 1 or len(pending) <= 1:
            _init_worker()
            for entry in pending:
                record(*process_video(entry, cache_dir, settings))
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(pending)), mp_context=_worker_context(),
                                     initializer=_init_worker) as pool:
                futures = [pool.submit(process_video, e, cache_dir, settings) for e in pending]
                try:
                    for future in as_completed(futures):
                        record(*future.result())
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()
        write_json(Path(cache_dir) / "failures.json",
                   [{"path": path, "reason": reason} for path, reason in report.failed])
    return report
