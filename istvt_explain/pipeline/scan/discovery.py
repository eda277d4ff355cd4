"""Which files a scan takes: the videos of the given folders (recursive) and files, and their record keys."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from ...errors import InputError

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv",
                              ".ts", ".mts", ".3gp", ".ogv"})
"""What a folder walk picks up (case-insensitive); files named on the command line are always taken."""


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
