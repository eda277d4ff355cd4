"""A plain folder of videos: ``real/`` and ``fake/``, optionally inside ``train/``, ``val/``, ``test/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ...errors import InputError
from .entry import FAKE, REAL, VideoEntry, video_files

SPLITS = ("train", "val", "test")


def read_folder(root: str | Path) -> Iterator[VideoEntry]:
    """Yield ``root/{real,fake}/*`` (split None) or ``root/<split>/{real,fake}/*``."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such data set folder")
    layouts = [(None, root)] + [(s, root / s) for s in SPLITS if (root / s).is_dir()]
    found = 0
    for split, base in layouts:
        for name, label in (("real", REAL), ("fake", FAKE)):
            for path in video_files(base / name):
                found += 1
                prefix = f"{split}/" if split else ""
                yield VideoEntry(path=path, label=label, video_id=f"{prefix}{name}/{path.stem}", dataset="folder",
                                 manipulation=name, split=split)
    if not found:
        raise InputError(f"{root}: no videos in real/ or fake/ (nor in train/, val/, test/ below it)")
