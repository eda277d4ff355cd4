"""The results folder: the scan's whole state, one record per video, and the table rebuilt from them.

Layout of ``RESULTS/``::

    results.csv            one row per video: path, verdict, fake_probability, segments, faces, seconds, error
                           (a row is appended as each video is done; the table is rewritten in the
                           order of the inputs at the end of the run)
    index.html             thumbnails of each video's most suspicious frame, most suspicious video first
    reports/KEY.json       the full report of each video (``pipeline.report``), as ``--json`` writes it
    reports/KEY.error.json why a video could not be analysed (never stops the scan)
    thumbs/KEY.jpg         the most suspicious frame, explained (heatmap, box, timeline strip)

``KEY`` is the video's file name and a short hash of its absolute path (``discovery.video_key``): two
``clip.mp4`` in different folders do not collide, and a rerun finds the same key.  Every file is
written under a temporary name and renamed, with the permissions the umask gives.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...data._files import public_mode, remove_stale_parts, temporary_prefix, write_atomic
from ...errors import InputError
from ...render.index import write_index_page
from .discovery import printable, video_key

CSV_COLUMNS = ("path", "verdict", "fake_probability", "segments", "faces", "seconds", "error", "report")


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

    PARTS = (("", ".results.csv.*.part"), ("", ".index.html.*.part"), ("reports", ".*.json.*.part"),
             ("thumbs", ".*.jpg.*.part"))
    """(subfolder, pattern) of the temporaries ``atomic_write`` names while writing this folder's files."""

    def remove_stale_parts(self, before: float) -> list[Path]:
        """Delete the temporaries an earlier, killed run left (those last changed before ``before``, a
        wall-clock time): only the names this folder's own writes take, never another file.

        Why the time: another rank of this run may be writing its own meanwhile.
        """
        return [part for sub, pattern in self.PARTS for part in remove_stale_parts(self.root / sub, [pattern], before)]

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


@dataclass
class ScanRow:
    """What the table says about one video (``path`` and ``error`` printable: a non-UTF-8 name escaped)."""

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
            path=printable(str(video)), verdict=report["verdict"], fake_probability=report["fake_probability"],
            segments=";".join(f"{s['start_frame']}-{s['end_frame']}" for s in report["segments"]),
            faces=len(report.get("face_tracks", [])), seconds=scan.get("seconds"),
            report=report_path.relative_to(folder.root).as_posix(),
            thumb=thumb.relative_to(folder.root).as_posix() if thumb.exists() else "",
            peak=max(clip_scores, default=0.0))
    if error_path.exists():
        record = json.loads(error_path.read_text(encoding="utf-8"))
        return ScanRow(path=printable(str(video)), error=printable(record["error"]), seconds=record.get("seconds"),
                       report=error_path.relative_to(folder.root).as_posix())
    return ScanRow(path=printable(str(video)), error="not scanned (interrupted)")


def _csv_text(rows: Iterable[ScanRow], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    if header:
        writer.writeheader()
    for row in rows:
        writer.writerow(row.csv_row())
    return buffer.getvalue()


def write_table(folder: ResultsFolder, rows: Iterable[ScanRow]) -> Path:
    """``results.csv`` from scratch, in the order of ``rows`` (written under a temporary name, then renamed)."""
    path = folder.root / "results.csv"
    write_atomic(path, _csv_text(rows, header=True))
    return path


def append_row(folder: ResultsFolder, row: ScanRow) -> None:
    """Add one finished video's row to ``results.csv`` at once, so that a killed scan leaves a table of
    every video done so far (``write_table`` puts it in order at the end of the run).

    Why appending and not a rewrite per video: rewriting the table would cost time quadratic in the
    number of videos.  Each row goes out in one ``write`` to a file opened ``O_APPEND``, so rows of
    several ranks never interleave; a missing table is created with its header by a hard link of a
    complete temporary file, so that no rank's row can land before the header.  Until the end of a
    run, a video retried after an earlier error has both rows (the later one counts).
    """
    path = folder.root / "results.csv"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix("results.csv"), suffix=".part", dir=folder.root)
        try:
            os.write(fd, _csv_text([], header=True).encode("utf-8"))
            os.fchmod(fd, public_mode())
            os.close(fd)
            fd = -1
            os.link(tmp, path)  # fails if another rank made it meanwhile: theirs has the same header
        except FileExistsError:
            pass
        finally:
            if fd >= 0:
                os.close(fd)
            os.unlink(tmp)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, _csv_text([row], header=False).encode("utf-8"))
    finally:
        os.close(fd)


def write_index(folder: ResultsFolder, rows: Iterable[ScanRow]) -> Path:
    """``index.html``: one card per video, the most suspicious first (``render.index``)."""
    return write_index_page(folder.root / "index.html", rows)
