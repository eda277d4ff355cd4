"""FaceForensics++ (Rössler et al. 2019): originals, every manipulation, pair splits, masks.

Layout (docs/datasets.md)::

    original_sequences/youtube/<c>/videos/000.mp4          (c: raw, c23, c40)
    original_sequences/actors/<c>/videos/*.mp4             (DeepFakeDetection's originals)
    manipulated_sequences/<M>/<c>/videos/000_003.mp4       (target_source)
    manipulated_sequences/<M>/masks/videos/000_003.mp4     (none for FaceShifter)
    train.json / val.json / test.json                      (lists of pairs [a, b])

A pair [a, b] puts the real videos a and b and the fakes a_b and b_a into that split.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from ...errors import InputError
from .entry import FAKE, REAL, VideoEntry, video_files

MANIPULATIONS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter", "DeepFakeDetection")
COMPRESSIONS = ("raw", "c23", "c40")
SPLITS = ("train", "val", "test")


def read_ffpp_splits(folder: Path) -> dict[str, str]:
    """Map video names (``"000"``, ``"000_003"``) to their split from ``<split>.json`` in ``folder``."""
    names: dict[str, str] = {}
    for split in SPLITS:
        path = folder / f"{split}.json"
        if not path.is_file():
            continue
        try:
            pairs = json.loads(path.read_text())
            for a, b in pairs:
                a, b = str(a), str(b)
                for name in (a, b, f"{a}_{b}", f"{b}_{a}"):
                    names[name] = split
        except (ValueError, TypeError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: not a FaceForensics++ split file (a JSON list of pairs): {err}") from None
    return names


def _find_splits(root: Path, splits_dir: Path | None) -> dict[str, str]:
    for folder in ([Path(splits_dir)] if splits_dir else [root / "splits", root]):
        if any((folder / f"{s}.json").is_file() for s in SPLITS):
            return read_ffpp_splits(folder)
    if splits_dir:
        raise InputError(f"{splits_dir}: no train.json, val.json or test.json here")
    return {}


def read_ffpp(root: str | Path, *, compression: str = "c23", manipulations: Iterable[str] | None = None,
              splits_dir: str | Path | None = None) -> Iterator[VideoEntry]:
    """Yield the videos of a FaceForensics++ tree at one compression level.

    ``manipulations``: restrict to these methods (default: all present).  Real videos have
    manipulation ``"original"`` (``"original_actors"`` for DeepFakeDetection's).  Splits come
    from ``splits_dir`` (default ``root/splits/`` or ``root/``); videos outside every pair
    (DeepFakeDetection) get split None.
    """
    root = Path(root)
    if compression not in COMPRESSIONS:
        raise ValueError(f"unknown compression {compression!r}; choose one of {', '.join(COMPRESSIONS)}")
    if not root.is_dir():
        raise InputError(f"{root}: no such data set folder")
    if not (root / "original_sequences").is_dir() and not (root / "manipulated_sequences").is_dir():
        raise InputError(f"{root}: not a FaceForensics++ tree (no original_sequences/ or manipulated_sequences/)")
    wanted = set(manipulations) if manipulations is not None else None
    unknown = (wanted or set()) - set(MANIPULATIONS)
    if unknown:
        raise ValueError(f"unknown FaceForensics++ manipulation(s) {sorted(unknown)}; known: {MANIPULATIONS}")
    splits = _find_splits(root, Path(splits_dir) if splits_dir else None)
    found = 0
    for actors, name in ((False, "original"), (True, "original_actors")):
        folder = root / "original_sequences" / ("actors" if actors else "youtube") / compression / "videos"
        for path in video_files(folder):
            found += 1
            yield VideoEntry(path=path, label=REAL, video_id=f"{name}/{compression}/{path.stem}", dataset="ffpp",
                             manipulation=name, split=splits.get(path.stem))
    for method in MANIPULATIONS:
        if wanted is not None and method not in wanted:
            continue
        base = root / "manipulated_sequences" / method
        masks = base / "masks" / "videos"
        for path in video_files(base / compression / "videos"):
            found += 1
            mask = masks / path.name
            target = path.stem.split("_")[0]
            yield VideoEntry(path=path, label=FAKE, video_id=f"{method}/{compression}/{path.stem}", dataset="ffpp",
                             manipulation=method, split=splits.get(path.stem),
                             mask_path=mask if mask.is_file() else None, source=target)
    if not found:
        raise InputError(f"{root}: no FaceForensics++ videos at compression {compression}")
