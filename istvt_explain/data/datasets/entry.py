"""One video of a data set, as every reader yields it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
REAL, FAKE = 0, 1


@dataclass(frozen=True)
class VideoEntry:
    """A labelled video: ``label`` 0 real / 1 fake.

    ``video_id`` is unique within its data set (e.g. ``"Deepfakes/c23/000_003"``);
    ``manipulation`` names the method (``"original"`` for real videos of FF++, the folder name
    elsewhere); ``mask_path`` is a video of the manipulation mask, frame-aligned (FF++ only);
    ``split`` is ``"train"``/``"val"``/``"test"`` when the data set says, else None;
    ``source`` is the real video a fake was made from, when known.
    """

    path: Path
    label: int
    video_id: str
    dataset: str
    manipulation: str
    split: str | None = None
    mask_path: Path | None = None
    source: str | None = None

    @property
    def key(self) -> str:
        """A file-name-safe key, unique within a data set: where the cache stores this video."""
        return f"{self.dataset}__" + re.sub(r"[^A-Za-z0-9._-]+", "_", self.video_id.replace("/", "__"))


def video_files(folder: Path) -> list[Path]:
    """The video files directly inside ``folder``, sorted (none when it does not exist)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))
