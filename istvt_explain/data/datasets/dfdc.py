"""DFDC (Dolhansky et al. 2020): ``dfdc_train_part_N/metadata.json`` next to the videos.

``metadata.json``: ``{"x.mp4": {"label": "FAKE"|"REAL", "split": ..., "original": "y.mp4"}}``;
``original`` may be null or absent.  ``root`` is either one part folder or the folder of parts.
A video listed but missing on disk is still yielded, so that preprocessing reports it by name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ...errors import InputError
from .entry import FAKE, REAL, VideoEntry

LABELS = {"FAKE": FAKE, "REAL": REAL}


def _read_metadata(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise InputError(f"{path}: expected an object mapping video names to their labels")
    return meta


def read_dfdc(root: str | Path) -> Iterator[VideoEntry]:
    """Yield the videos listed by every ``metadata.json`` under ``root`` (one level of parts)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such data set folder")
    files = [root / "metadata.json"] if (root / "metadata.json").is_file() else sorted(root.glob("*/metadata.json"))
    if not files:
        raise InputError(f"{root}: not a DFDC tree (no metadata.json in it or in its part folders)")
    for meta_path in files:
        part = meta_path.parent
        for name, info in _read_metadata(meta_path).items():
            label = LABELS.get(str(info.get("label", "")).upper()) if isinstance(info, dict) else None
            if label is None:
                raise InputError(f"{meta_path}: entry {name!r} has no label REAL or FAKE")
            split = info.get("split")
            yield VideoEntry(path=part / name, label=label, video_id=f"{part.name}/{Path(name).stem}",
                             dataset="dfdc", manipulation="fake" if label == FAKE else "real",
                             split=str(split) if split else None, source=info.get("original") or None)
