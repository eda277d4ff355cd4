"""Celeb-DF v2 (Li et al. 2020).

Layout: ``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/`` and ``List_of_testing_videos.txt``
whose lines are ``<label> <folder>/<file>.mp4`` with **1 = real, 0 = fake** (the reverse of ours).
Listed videos form the test split; all others are train.  A listed video missing on disk is
still yielded, so that preprocessing reports it by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ...errors import InputError
from .entry import FAKE, REAL, VideoEntry, video_files

FOLDERS = {"Celeb-real": REAL, "YouTube-real": REAL, "Celeb-synthesis": FAKE}
TEST_LIST = "List_of_testing_videos.txt"


def read_celebdf_test_list(path: Path) -> dict[str, int]:
    """``{"Celeb-real/id0_0000.mp4": label}`` from the testing list, in our convention (1 = fake)."""
    listed: dict[str, int] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1") or "/" not in parts[1]:
            raise InputError(f"{path}: line {number} is not '<0|1> <folder>/<file>': {line.strip()[:80]!r}")
        listed[parts[1]] = REAL if parts[0] == "1" else FAKE
    return listed


def read_celebdf(root: str | Path) -> Iterator[VideoEntry]:
    """Yield the videos of a Celeb-DF v2 tree with labels and the official test split."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such data set folder")
    if not any((root / f).is_dir() for f in FOLDERS):
        raise InputError(f"{root}: not a Celeb-DF tree (no {', '.join(FOLDERS)} folders)")
    test_list = root / TEST_LIST
    listed = read_celebdf_test_list(test_list) if test_list.is_file() else {}
    seen = set()
    for folder, label in FOLDERS.items():
        for path in video_files(root / folder):
            rel = f"{folder}/{path.name}"
            seen.add(rel)
            yield VideoEntry(path=path, label=label, video_id=f"{folder}/{path.stem}", dataset="celebdf",
                             manipulation=folder, split=("test" if rel in listed else "train") if listed else None)
    for rel, label in listed.items():
        if rel not in seen:
            folder, name = rel.split("/", 1)
            yield VideoEntry(path=root / rel, label=label, video_id=f"{folder}/{Path(name).stem}",
                             dataset="celebdf", manipulation=folder, split="test")
