"""Which video containers the tool writes, chosen by the output's extension.

Why a module of its own: the command line checks ``--out`` before importing anything heavy
(exit 2 at once for ``--out x.avi``), and ``data.video.VideoWriter`` picks the muxer from the
same table, so the file's content always matches its name.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError

VIDEO_CONTAINERS: dict[str, str] = {".mp4": "mp4", ".mkv": "matroska", ".mov": "mov"}
"""Output extension -> FFmpeg muxer; every one carries the H.264 stream the writer makes."""


def container_for(path: str | Path) -> str:
    """The FFmpeg muxer for ``path``'s extension (case-insensitive); ``InputError`` for any other."""
    suffix = Path(path).suffix.lower()
    try:
        return VIDEO_CONTAINERS[suffix]
    except KeyError:
        known = ", ".join(VIDEO_CONTAINERS)
        what = f"extension {suffix!r}" if suffix else "no extension"
        raise InputError(f"{path}: {what} is not a video container this tool writes ({known})") from None
