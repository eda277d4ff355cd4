"""Scan many videos: one JSON report and one thumbnail each, a results table and an HTML index.

Why a library module: ``istvt-explain scan`` is a thin wrapper, and notebooks or a job scheduler
can drive the same loop.  The results folder is the scan's whole state, which makes it resumable:
a video whose record (its report, or its error) is already there is skipped, and the table and
index are rebuilt from the records at the end of every run.  Every file is written under a
temporary name and renamed, with the permissions the umask gives (never a half-written record).

The layout of the results folder, and how a row is read back from it: ``results``.

With ``workers`` > 0, worker processes decode the next videos and find their faces
(``pipeline.run.find_face_clips``) while this process runs the model on the current one; results are
the same as without them (tested), only the order of the work changes.  Clips are batched across
videos: a short video's clips share model calls with the next video's (``_batches``).
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...data._files import write_atomic
from ...errors import InputError
from ...models.device import model_device
from ...render.index import THUMB_WIDTH
from .discovery import unreadable, video_key
from .results import ResultsFolder, ScanRow, append_row, row_from_record, write_index, write_table


@dataclass(frozen=True)
class _Failed:
    """Why a video's face clips could not be cut: the message alone.

    Why not the exception: its traceback holds the frames (and the decoded arrays in them) of
    every failure that waits in a batch group, so memory would grow with each failed video.
    """

    message: str


VideoDoneFn = Callable[[Path, ScanRow, bool], None]
"""``progress(video, row, skipped)``: called after each video of this process's share (``skipped``: done before)."""


def scan_videos(videos: Sequence[Path], folder: ResultsFolder, model, options, *, weights: dict[str, Any],
                style=None, retry_errors: bool = False, progress: VideoDoneFn | None = None,
                top_k: int = 5, workers: int = 0, shard: tuple[int, int] = (0, 1),
                barrier: Callable[[], None] | None = None, started: float | None = None) -> list[ScanRow]:
    """Analyse every video not yet done, record each, then rebuild ``results.csv`` and ``index.html``.

    ``options`` is a ``pipeline.options.PipelineOptions``; ``weights`` describes the model for the reports.
    A video that cannot be analysed gets an error record and the scan goes on.  ``workers``:
    processes that find the faces of the next videos meanwhile (0: everything in this process).
    ``shard`` = (rank, world size): this process takes every world-th video of the list, from the
    rank-th (the list, not what is left of it, so that every process agrees); ``barrier`` waits for
    the other processes before rank 0 writes the table and the index over all of them.
    ``started``: when this run began (``time.time()``, default now); rank 0 deletes the temporaries
    that an earlier, killed run left in ``folder`` before it (``ResultsFolder.remove_stale_parts``).
    """
    rank, world = shard
    folder.create()
    if rank == 0:
        folder.remove_stale_parts(time.time() if started is None else started)
    todo = []
    for video in videos[rank::world]:
        if folder.done(video, retry_errors):
            if progress:
                progress(video, row_from_record(folder, video), True)
        else:
            todo.append(video)
    with _stop_when_unwritable(folder):
        if todo:
            faces = (_face_clips_ahead(todo, workers, model.config, options) if workers > 0
                     else _face_clips_here(todo, model.config, options))
            for group in _batches(faces, options.clips_per_call(model_device(model))):
                explanations, explain_seconds = _explain_together(group, model, options)
                for (video, clips, face_seconds), explanation, extra in zip(group, explanations, explain_seconds,
                                                                             strict=True):
                    folder.forget(video)  # a retried error, or a thumbnail left by an interrupted run
                    _scan_one(video, folder, model, options, weights, style, top_k, clips, face_seconds + extra,
                              rank, explanation)
                    row = row_from_record(folder, video)
                    append_row(folder, row)  # on disk now: a kill loses only the videos in flight
                    if progress:
                        progress(video, row, False)
        if barrier is not None:
            barrier()
        rows = [row_from_record(folder, v) for v in videos]
        if rank == 0:
            write_table(folder, rows)
            write_index(folder, rows)
    return rows


@contextmanager
def _stop_when_unwritable(folder: ResultsFolder) -> Iterator[None]:
    """A write into the results folder that fails (a full disk, a quota, a folder made read-only)
    ends the scan with one line (``InputError``: exit 2): the records written so far stay whole and
    a rerun goes on from them.

    Why every ``OSError`` here is a write's: reading and analysing a video turns its own errors into
    that video's error record, so none reaches this block.
    """
    try:
        yield
    except OSError as err:
        raise InputError(f"{folder.root}: cannot write the results ({err.strerror or err}); the scan stopped, "
                         "the records written so far are kept and a rerun goes on from them") from None


def _scan_one(video: Path, folder: ResultsFolder, model, options, weights: dict[str, Any], style,
              top_k: int, clips=None, face_seconds: float = 0.0, rank: int = 0, explanation=None) -> None:
    """Analyse one video (from its face clips and explanation when made already) and write its record."""
    key = video_key(video)
    started = time.perf_counter() - face_seconds
    message = clips.message if isinstance(clips, _Failed) else None
    if message is None:
        try:
            report, thumb = _analyse(video, model, options, weights, style, top_k, clips, explanation)
        except KeyboardInterrupt:
            raise
        except Exception as err:  # noqa: BLE001 - one bad file never stops the scan; the reason is recorded
            message = _error_message(video, err)  # the message only: no traceback kept alive
    if message is not None:
        record = {"path": str(video), "error": message, "seconds": round(time.perf_counter() - started, 3)}
        write_atomic(folder.error_path(key), json.dumps(record, indent=2) + "\n")
        return
    seconds = time.perf_counter() - started
    report["scan"] = {"seconds": round(seconds, 3), "key": key, "rank": rank}
    try:
        if thumb is not None:
            write_atomic(folder.thumb_path(key), thumb)
        write_atomic(folder.report_path(key), json.dumps(report, indent=2, allow_nan=False) + "\n")  # last: "done"
    except BaseException:  # a full disk, a kill: no thumbnail without its report
        folder.thumb_path(key).unlink(missing_ok=True)
        raise


def _analyse(video: Path, model, options, weights: dict[str, Any], style, top_k: int, clips,
             explanation) -> tuple[dict[str, Any], bytes | None]:
    """The report and thumbnail of one video (raises what goes wrong)."""
    from ..report import build_report
    from ..run import analyze_clips, analyze_video

    analysis = (analyze_video(video, model, options) if clips is None
                else analyze_clips(clips, model, options, explanation=explanation))
    return build_report(analysis, weights, top_k=top_k), _thumbnail(analysis, style)


def _error_message(video: Path, err: BaseException) -> str:
    """The one line a video's error row shows: an ``InputError``'s message, else ``Type: message``."""
    message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    message = message.removeprefix(f"{video}: ")  # the row names the file already
    return message if isinstance(err, InputError) else f"{type(err).__name__}: {message}"


def _face_clips_ahead(videos: Sequence[Path], workers: int, config, options) -> Iterator[tuple[Path, Any, float]]:
    """(video, its ``VideoClips`` or ``_Failed``, seconds) in order, cut ``workers`` + 1 videos ahead.

    Worker processes are spawned (not forked: this process holds torch's threads) and use one
    thread each, so that the model keeps the cores it had.  They end with this process, however it
    ends: at once when it is interrupted (Ctrl-C, SIGTERM), by themselves when it is killed.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from ...data._files import this_process

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                               initargs=(this_process(),))
    try:
        pending: deque = deque()
        queue = iter(videos)

        def submit() -> None:
            video = next(queue, None)
            if video is not None:
                pending.append((video, pool.submit(_face_clips_job, video, config.image_size, config.frames,
                                                   options)))

        for _ in range(workers + 1):
            submit()
        while pending:
            video, future = pending.popleft()
            submit()
            try:
                clips, seconds = future.result()
            except Exception as err:  # noqa: BLE001 - recorded as the video's error by _scan_one
                clips, seconds = _Failed(_error_message(video, err)), 0.0
            yield video, clips, seconds
    except BaseException:  # interrupted, or a failure: the videos in hand are not worth waiting for
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _stop_workers(pool) -> None:
    """End the processes of a ``ProcessPoolExecutor`` now (``shutdown`` would wait for their videos).

    Python 3.14 has ``terminate_workers``; before it, the pool's own table of processes is the way.
    """
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _face_clips_here(videos: Sequence[Path], config, options) -> Iterator[tuple[Path, Any, float]]:
    """``_face_clips_ahead`` without workers: each video's face clips when its turn comes."""
    for video in videos:
        started = time.perf_counter()
        try:
            clips = _face_clips_job(video, config.image_size, config.frames, options)[0]
        except Exception as err:  # noqa: BLE001 - recorded as the video's error by _scan_one
            clips = _Failed(_error_message(video, err))
        yield video, clips, time.perf_counter() - started


MAX_GROUP_BATCHES = 16
"""At most this many model calls' worth of clips wait in memory for a batch to fill."""


def _batches(faces: Iterable[tuple[Path, Any, float]], batch_size: int) -> Iterator[list[tuple[Path, Any, float]]]:
    """Group consecutive videos so that their clips fill whole model calls.

    A group ends when its clips fill a whole number of batches, when it holds ``MAX_GROUP_BATCHES``
    batches' worth, or at the end.  A video without clips (an error) rides along with clips that wait
    for their batch, and is recorded with them; when none wait, it is a group of its own at once, so
    that its record is on disk as soon as it is known (a folder of unreadable files is not held back
    to the end of the scan, where a kill would lose every record).
    """
    group: list[tuple[Path, Any, float]] = []
    clips = 0
    for item in faces:
        group.append(item)
        clips += _clip_count(item[1])
        if not clips or clips % batch_size == 0 or clips >= MAX_GROUP_BATCHES * batch_size:
            yield group
            group, clips = [], 0
    if group:
        yield group


def _clip_count(clips) -> int:
    return 0 if clips is None or isinstance(clips, _Failed) else len(clips.frame_indices)


def _explain_together(group: list[tuple[Path, Any, float]], model, options) -> tuple[list[Any], list[float]]:
    """Explain the clips of every video of ``group`` in shared model calls; split back per video.

    Returns one ``Explanation`` (or None: no clips, or the shared call failed, so that the video
    explains itself and records its own error) and the seconds spent on it, per video.
    """
    counts = [_clip_count(clips) for _, clips, _ in group]
    if sum(counts) == 0:
        return [None] * len(group), [0.0] * len(group)
    import numpy as np  # after the checks: nothing to explain costs nothing

    from ...attribution.batching import explain_batches
    from ...data.clips import normalize_clip

    device = model_device(model)
    crops = [(clips, position) for (_, clips, _), n in zip(group, counts, strict=True) if n
             for position in clips.clip_positions]
    started = time.perf_counter()
    try:
        joined = explain_batches(
            model, crops, options.method, batch_size=options.clips_per_call(device), precision=options.precision,
            to_input=lambda chunk: normalize_clip(np.stack([clips.crops[position] for clips, position in chunk]))
            .to(device))
    except Exception:  # noqa: BLE001 - each video then explains itself, and records its own error
        return [None] * len(group), [0.0] * len(group)
    seconds = time.perf_counter() - started
    out, start = [], 0
    for n in counts:
        out.append(joined.clips(start, start + n) if n else None)
        start += n
    total = sum(counts)
    return out, [seconds * n / total for n in counts]


def _worker_init(parent: tuple[int, str | None]) -> None:
    """One thread per worker; Ctrl-C left to the parent (it stops the workers, with one line, no
    traceback of theirs); the worker ends by itself when ``parent`` is gone (``exit_with_parent``)."""
    import signal

    from ...data._files import exit_with_parent

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent)
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _face_clips_job(video: Path, image_size: int, frames: int, options) -> tuple[Any, float]:
    from ..run import find_face_clips

    started = time.perf_counter()
    problem = unreadable(video)  # before any open: a FIFO would block, a device never end
    if problem is not None:
        raise InputError(problem)
    clips = find_face_clips(video, image_size, frames, options)
    return clips, time.perf_counter() - started


def _thumbnail(analysis, style) -> bytes | None:
    """JPEG of the most suspicious frame, explained (heatmap, box and strip), ``THUMB_WIDTH`` wide."""
    import cv2

    from ...data.video import VideoReader
    from ..heatmap_video import FrameComposer

    order = analysis.suspicious_frames(1)
    if not order:
        return None
    index = order[0]
    clock = analysis.clock  # its pts let the reader seek to the frame instead of decoding all before it
    frame = VideoReader(analysis.video_path).read_frame(index, clock.pts if clock is not None else None)
    picture = FrameComposer(analysis, style).compose(index, frame)
    height = max(1, round(picture.shape[0] * THUMB_WIDTH / picture.shape[1]))
    small = cv2.resize(picture, (THUMB_WIDTH, height), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return data.tobytes() if ok else None
