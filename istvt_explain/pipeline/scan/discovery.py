"""Which files a scan takes: the videos of the given folders (recursive) and files, and their record keys."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from ...errors import InputError

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv",
                              ".ts", ".mts", ".3gp", ".ogv"})
"""What a folder walk picks up (case-insensitive); files named on the command line are always taken."""


def find_videos(inputs: Sequence[str | Path]) -> list[Path]:
    """Every video of ``inputs``: files as given, folders walked recursively (hidden entries skipped).

    Sorted within each folder and without duplicates, so a rerun walks the same list in the same
    order.  A missing input raises ``InputError`` before any work.  Entries that are no video file
    (a symlink loop, a FIFO, a device) are listed all the same: the scan gives each an error row
    (``unreadable``) and never opens them.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for item in inputs:
        path = Path(item).expanduser()
        if not os.path.lexists(path):
            raise InputError(f"{path}: no such file or folder")
        candidates = sorted(_walk(path)) if path.is_dir() else [path]
        for video in candidates:
            key = _absolute(video)
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


def unreadable(video: Path) -> str | None:
    """Why ``video`` must not be opened, or None for a regular file (or a link to one).

    Checked with ``stat`` alone, before any read: opening a FIFO blocks until someone writes to it,
    and a device such as /dev/zero never ends.
    """
    try:
        mode = os.stat(video).st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symlink loop"
        if os.path.islink(video):
            return "broken symlink (its target does not exist)"
        return f"cannot read it ({err.strerror or err})"
    if stat.S_ISREG(mode):
        return None
    kinds = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
             (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "folder"))
    kind = next((name for test, name in kinds if test(mode)), "special file")
    return f"not a regular file ({kind})"


def printable(text: str) -> str:
    """``text`` with the bytes of a non-UTF-8 file name shown escaped (``caf\\xe9.mp4``), so that it can
    be written as UTF-8 (the CSV, the HTML); valid text is unchanged."""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no file name decodes to
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def _absolute(video: Path) -> Path:
    """The resolved path, or the absolute one where resolving fails (a symlink loop)."""
    try:
        return video.resolve()
    except (OSError, RuntimeError):
        return video.absolute()


def video_key(video: Path) -> str:
    """A stable, collision-free file name stem for a video's records."""
    digest = hashlib.sha1(str(_absolute(video)).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", video.stem)[:60] or "video"
    return f"{stem}-{digest}"
