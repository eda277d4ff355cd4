"""Scan many videos: one JSON report and one thumbnail each, a results table and an HTML index.

Why a library module: ``istvt-explain scan`` is a thin wrapper, and notebooks or a job scheduler
can drive the same loop.  The results folder is the scan's whole state, which makes it resumable:
a video whose record (its report, or its error) is already there is skipped, and the table and
index are rebuilt from the records at the end of every run.  Every file is written under a
temporary name and renamed, with the permissions the umask gives (never a half-written record).

Layout of ``RESULTS/``::

    results.csv            one row per video: path, verdict, fake_probability, segments, faces, seconds, error
    index.html             thumbnails of each video's most suspicious frame, most suspicious video first
    reports/KEY.json       the full report of each video (``render.report``), as ``--json`` writes it
    reports/KEY.error.json why a video could not be analysed (never stops the scan)
    thumbs/KEY.jpg         the most suspicious frame, explained (heatmap, box, timeline strip)

``KEY`` is the video's file name and a short hash of its absolute path (two ``clip.mp4`` in
different folders do not collide, and a rerun finds the same key).

With ``workers`` > 0, worker processes decode the next videos and find their faces
(``pipeline.find_face_clips``) while this process runs the model on the current one; results are
the same as without them (tested), only the order of the work changes.  Clips are batched across
videos: a short video's clips share model calls with the next video's (``_batches``).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import os
import re
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv",
                              ".ts", ".mts", ".3gp", ".ogv"})
"""What a folder walk picks up (case-insensitive); files named on the command line are always taken."""
CSV_COLUMNS = ("path", "verdict", "fake_probability", "segments", "faces", "seconds", "error", "report")
THUMB_WIDTH = 320


# -- finding the videos ----------------------------------------------------------------------------


def find_videos(inputs: Sequence[str | Path]) -> list[Path]:
    """Every video of ``inputs``: files as given, folders walked recursively (hidden entries skipped).

    Sorted within each folder and without duplicates, so a rerun walks the same list in the same
    order.  A missing input raises ``InputError`` before any work.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        path = Path(item).expanduser()
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        candidates = sorted(_walk(path)) if path.is_dir() else [path]
        for video in candidates:
            key = video.resolve()
            if key not in seen:
                seen.add(key)
                found.append(video)
    return found


def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                yield Path(root) / name


def video_key(video: Path) -> str:
    """A stable, collision-free file name stem for a video's records."""
    digest = hashlib.sha1(str(video.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", video.stem)[:60] or "video"
    return f"{stem}-{digest}"


# -- the results folder ------------------------------------------------------------------------------


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``path`` under a temporary name, then rename: readers never see half a file."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp's private 0600 would survive the rename
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class ResultsFolder:
    """The scan's output folder: where each video's records go, and which are done already."""

    MARKER = ".istvt-scan"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        self.reports = self.root / "reports"
        self.thumbs = self.root / "thumbs"

    def check(self) -> None:
        """Refuse a folder that is not ours (a non-empty folder without the marker): nothing is overwritten."""
        root = self.root
        if root.exists() and not root.is_dir():
            raise InputError(f"{root}: --out must be a folder, but a file of that name exists")
        if root.is_dir() and any(root.iterdir()) and not (root / self.MARKER).exists():
            raise InputError(f"{root}: folder exists, is not empty and holds no earlier scan "
                             "(give a new or empty folder)")
        if not root.exists() and not root.parent.is_dir():
            raise InputError(f"{root}: cannot create it: folder {root.parent} does not exist")

    def create(self) -> None:
        try:
            self.root.mkdir(exist_ok=True)
            (self.root / self.MARKER).touch()  # first: another rank's check() must see it as soon as anything is there
            for folder in (self.reports, self.thumbs):
                folder.mkdir(exist_ok=True)
        except OSError as err:
            raise InputError(f"{self.root}: cannot write the results there ({err.strerror or err})") from None

    def report_path(self, key: str) -> Path:
        return self.reports / f"{key}.json"

    def error_path(self, key: str) -> Path:
        return self.reports / f"{key}.error.json"

    def thumb_path(self, key: str) -> Path:
        return self.thumbs / f"{key}.jpg"

    def done(self, video: Path, retry_errors: bool = False) -> bool:
        """A record of ``video`` exists (a failed one counts unless ``retry_errors``)."""
        key = video_key(video)
        return self.report_path(key).exists() or (not retry_errors and self.error_path(key).exists())

    def forget(self, video: Path) -> None:
        key = video_key(video)
        for path in (self.report_path(key), self.error_path(key), self.thumb_path(key)):
            path.unlink(missing_ok=True)


# -- one row per video ---------------------------------------------------------------------------------


@dataclass
class ScanRow:
    """What the table says about one video."""

    path: str
    verdict: str = ""
    fake_probability: float | None = None
    segments: str = ""
    faces: int | None = None
    seconds: float | None = None
    error: str = ""
    report: str = ""
    thumb: str = ""
    peak: float = -1.0  # the highest clip score: how the index sorts (errors last)

    def csv_row(self) -> dict[str, Any]:
        return {"path": self.path, "verdict": self.verdict,
                "fake_probability": "" if self.fake_probability is None else f"{self.fake_probability:.4f}",
                "segments": self.segments, "faces": "" if self.faces is None else self.faces,
                "seconds": "" if self.seconds is None else f"{self.seconds:.2f}", "error": self.error,
                "report": self.report}


def row_from_record(folder: ResultsFolder, video: Path) -> ScanRow:
    """The row of one video, read back from its record (so resumed and new videos look the same)."""
    key = video_key(video)
    report_path, error_path = folder.report_path(key), folder.error_path(key)
    if report_path.exists():
        report = json.loads(report_path.read_text(encoding="utf-8"))
        scan = report.get("scan", {})
        clip_scores = [c["fake_probability"] for c in report.get("clips", []) if c["fake_probability"] is not None]
        thumb = folder.thumb_path(key)
        return ScanRow(
            path=str(video), verdict=report["verdict"], fake_probability=report["fake_probability"],
            segments=";".join(f"{s['start_frame']}-{s['end_frame']}" for s in report["segments"]),
            faces=len(report.get("face_tracks", [])), seconds=scan.get("seconds"),
            report=report_path.relative_to(folder.root).as_posix(),
            thumb=thumb.relative_to(folder.root).as_posix() if thumb.exists() else "",
            peak=max(clip_scores, default=0.0))
    if error_path.exists():
        record = json.loads(error_path.read_text(encoding="utf-8"))
        return ScanRow(path=str(video), error=record["error"], seconds=record.get("seconds"),
                       report=error_path.relative_to(folder.root).as_posix())
    return ScanRow(path=str(video), error="not scanned (interrupted)")


def write_table(folder: ResultsFolder, rows: Iterable[ScanRow]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.csv_row())
    path = folder.root / "results.csv"
    write_atomic(path, buffer.getvalue())
    return path


def write_index(folder: ResultsFolder, rows: Iterable[ScanRow]) -> Path:
    """``index.html``: one card per video, the most suspicious first (highest clip score), errors last."""
    ordered = sorted(rows, key=lambda r: (-r.peak, r.path))
    cards = []
    for row in ordered:
        e = html.escape
        if row.error:
            body = f'<div class="noimg">no picture</div><p class="err">{e(row.error)}</p>'
        else:
            img = f'<img src="{e(row.thumb)}" loading="lazy" alt="most suspicious frame">' if row.thumb else ""
            seg = f"frames {e(row.segments.replace(';', ', '))}" if row.segments else "no manipulated segment"
            body = (f'{img}<p class="{e(row.verdict)}"><b>{e(row.verdict.upper())}</b> · peak clip '
                    f'{row.peak:.2f} · mean {row.fake_probability:.2f}</p><p>{seg} · {row.faces} face track(s)</p>')
        link = f'<a href="{e(row.report)}">report</a>' if row.report else ""
        cards.append(f'<div class="card"><p class="path" title="{e(row.path)}">{e(row.path)}</p>{body}'
                     f'<p class="small">{link}</p></div>')
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>istvt-explain scan</title>
<style>
body {{ font-family: sans-serif; margin: 1em; background: #f6f6f6; }}
.grid {{ display: flex; flex-wrap: wrap; gap: 12px; }}
.card {{ background: white; padding: 8px; width: {THUMB_WIDTH}px; box-shadow: 0 1px 3px #0003; }}
.card img {{ width: {THUMB_WIDTH}px; display: block; }}
.card p {{ margin: 4px 0; font-size: 13px; }}
.path {{ font-family: monospace; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }}
.fake {{ color: #c62828; }} .real {{ color: #2e7d32; }} .err {{ color: #555; }} .small {{ font-size: 11px; }}
.noimg {{ height: 60px; background: #eee; color: #999; text-align: center; line-height: 60px; }}
</style></head><body>
<h1>istvt-explain scan: {len(ordered)} video(s)</h1>
<p>Most suspicious first (highest clip score). The picture is each video's most suspicious frame with
its heatmap; frames count from 0. Table: <a href="results.csv">results.csv</a>.</p>
<div class="grid">
{chr(10).join(cards)}
</div></body></html>
"""
    path = folder.root / "index.html"
    write_atomic(path, page)
    return path


# -- the scan ----------------------------------------------------------------------------------------------


ProgressFn = Callable[[Path, ScanRow, bool], None]
"""``progress(video, row, skipped)``: called after each video of this process's share (``skipped``: done before)."""


def scan_videos(videos: Sequence[Path], folder: ResultsFolder, model, options, *, weights: dict[str, Any],
                style=None, retry_errors: bool = False, progress: ProgressFn | None = None,
                top_k: int = 5, workers: int = 0, shard: tuple[int, int] = (0, 1),
                barrier: Callable[[], None] | None = None) -> list[ScanRow]:
    """Analyse every video not yet done, record each, then rebuild ``results.csv`` and ``index.html``.

    ``options`` is a ``pipeline.PipelineOptions``; ``weights`` describes the model for the reports.
    A video that cannot be analysed gets an error record and the scan goes on.  ``workers``:
    processes that find the faces of the next videos meanwhile (0: everything in this process).
    ``shard`` = (rank, world size): this process takes every world-th video of the list, from the
    rank-th (the list, not what is left of it, so that every process agrees); ``barrier`` waits for
    the other processes before rank 0 writes the table and the index over all of them.
    """
    rank, world = shard
    folder.create()
    todo = []
    for video in videos[rank::world]:
        if folder.done(video, retry_errors):
            if progress:
                progress(video, row_from_record(folder, video), True)
        else:
            todo.append(video)
    if todo:
        faces = (_face_clips_ahead(todo, workers, model.config, options) if workers > 0
                 else _face_clips_here(todo, model.config, options))
        for group in _batches(faces, options.batch_size):
            explanations, explain_seconds = _explain_together(group, model, options)
            for (video, clips, face_seconds), explanation, extra in zip(group, explanations, explain_seconds,
                                                                         strict=True):
                folder.forget(video)  # a retried error, or a thumbnail left by an interrupted run
                _scan_one(video, folder, model, options, weights, style, top_k, clips, face_seconds + extra, rank,
                          explanation)
                if progress:
                    progress(video, row_from_record(folder, video), False)
    if barrier is not None:
        barrier()
    rows = [row_from_record(folder, v) for v in videos]
    if rank == 0:
        write_table(folder, rows)
        write_index(folder, rows)
    return rows


def _scan_one(video: Path, folder: ResultsFolder, model, options, weights: dict[str, Any], style,
              top_k: int, clips=None, face_seconds: float = 0.0, rank: int = 0, explanation=None) -> None:
    """Analyse one video (from its face clips and explanation when made already) and write its record."""
    from .pipeline import analyze_clips, analyze_video
    from .render.report import build_report

    key = video_key(video)
    started = time.perf_counter() - face_seconds
    try:
        if isinstance(clips, BaseException):
            raise clips
        analysis = (analyze_video(video, model, options) if clips is None
                    else analyze_clips(clips, model, options, explanation=explanation))
        report = build_report(analysis, weights, top_k=top_k)
        thumb = _thumbnail(analysis, style)
    except KeyboardInterrupt:
        raise
    except Exception as err:  # noqa: BLE001 - one bad file never stops the scan; the reason is recorded
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        message = message.removeprefix(f"{video}: ")  # the row names the file already
        if not isinstance(err, InputError):
            message = f"{type(err).__name__}: {message}"
        record = {"path": str(video), "error": message, "seconds": round(time.perf_counter() - started, 3)}
        write_atomic(folder.error_path(key), json.dumps(record, indent=2) + "\n")
        return
    seconds = time.perf_counter() - started
    report["scan"] = {"seconds": round(seconds, 3), "key": key, "rank": rank}
    if thumb is not None:
        write_atomic(folder.thumb_path(key), thumb)
    write_atomic(folder.report_path(key), json.dumps(report, indent=2, allow_nan=False) + "\n")  # last: "done"


def _face_clips_ahead(videos: Sequence[Path], workers: int, config, options) -> Iterator[tuple[Path, Any, float]]:
    """(video, its ``VideoClips`` or the exception, seconds) in order, cut ``workers`` + 1 videos ahead.

    Worker processes are spawned (not forked: this process holds torch's threads) and use one
    thread each, so that the model keeps the cores it had.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init)
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
                clips, seconds = err, 0.0
            yield video, clips, seconds
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _face_clips_here(videos: Sequence[Path], config, options) -> Iterator[tuple[Path, Any, float]]:
    """``_face_clips_ahead`` without workers: each video's face clips when its turn comes."""
    for video in videos:
        started = time.perf_counter()
        try:
            clips = _face_clips_job(video, config.image_size, config.frames, options)[0]
        except Exception as err:  # noqa: BLE001 - recorded as the video's error by _scan_one
            clips = err
        yield video, clips, time.perf_counter() - started


MAX_GROUP_BATCHES = 16
"""At most this many model calls' worth of clips wait in memory for a batch to fill."""


def _batches(faces: Iterable[tuple[Path, Any, float]], batch_size: int) -> Iterator[list[tuple[Path, Any, float]]]:
    """Group consecutive videos so that their clips fill whole model calls.

    A group ends when its clips fill a whole number of batches, when it holds ``MAX_GROUP_BATCHES``
    batches' worth, or at the end; videos without clips (errors) ride along and are recorded as such.
    """
    group: list[tuple[Path, Any, float]] = []
    clips = 0
    for item in faces:
        group.append(item)
        clips += _clip_count(item[1])
        if clips and (clips % batch_size == 0 or clips >= MAX_GROUP_BATCHES * batch_size):
            yield group
            group, clips = [], 0
    if group:
        yield group


def _clip_count(clips) -> int:
    return 0 if clips is None or isinstance(clips, BaseException) else len(clips.frame_indices)


def _explain_together(group: list[tuple[Path, Any, float]], model, options) -> tuple[list[Any], list[float]]:
    """Explain the clips of every video of ``group`` in shared model calls; split back per video.

    Returns one ``Explanation`` (or None: no clips, or the shared call failed, so that the video
    explains itself and records its own error) and the seconds spent on it, per video.
    """
    import numpy as np

    from .data.clips import normalize_clip
    from .explain import explain
    from .explain.explanation import Explanation

    counts = [_clip_count(clips) for _, clips, _ in group]
    if sum(counts) == 0:
        return [None] * len(group), [0.0] * len(group)
    import torch  # after the checks: nothing to explain costs nothing

    device = next(model.parameters()).device
    crops = [(clips, position) for (_, clips, _), n in zip(group, counts, strict=True) if n
             for position in clips.clip_positions]
    started = time.perf_counter()
    parts = []
    try:
        for first in range(0, len(crops), options.batch_size):
            chunk = crops[first:first + options.batch_size]
            batch = normalize_clip(np.stack([clips.crops[position] for clips, position in chunk])).to(device)
            parts.append(explain(model, batch, method=options.method, precision=options.precision))
    except (ValueError, RuntimeError):  # each video then explains itself, and records its own error
        return [None] * len(group), [0.0] * len(group)
    seconds = time.perf_counter() - started
    cat = {name: torch.cat([getattr(p, name).detach().float().cpu() for p in parts])
           for name in ("spatial", "temporal", "fake_probability", "logits")}
    out, start = [], 0
    for n in counts:
        out.append(Explanation(**{k: v[start:start + n] for k, v in cat.items()}, method=parts[0].method,
                               target=parts[0].target, settings=dict(parts[0].settings)) if n else None)
        start += n
    total = sum(counts)
    return out, [seconds * n / total for n in counts]


def _worker_init() -> None:
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _face_clips_job(video: Path, image_size: int, frames: int, options) -> tuple[Any, float]:
    from .pipeline import find_face_clips

    started = time.perf_counter()
    clips = find_face_clips(video, image_size, frames, options)
    return clips, time.perf_counter() - started


def _thumbnail(analysis, style) -> bytes | None:
    """JPEG of the most suspicious frame, explained (heatmap, box and strip), ``THUMB_WIDTH`` wide."""
    import cv2

    from .data.video import VideoReader
    from .render.video import FrameComposer

    order = analysis.suspicious_frames(1)
    if not order:
        return None
    index = order[0]
    frame = VideoReader(analysis.video_path).read_frames([index])[0]
    picture = FrameComposer(analysis, style).compose(index, frame)
    height = max(1, round(picture.shape[0] * THUMB_WIDTH / picture.shape[1]))
    small = cv2.resize(picture, (THUMB_WIDTH, height), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return data.tobytes() if ok else None
