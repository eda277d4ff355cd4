"""The preprocess cache: one folder of arrays per video, written whole or not at all.

Layout::

    cache.json                  settings the crops were made with (refuses a mismatched rerun)
    failures.json               the videos the last run could not process, and why
    videos/<key>/meta.json      label, ids, split, fps, frame size ... (VideoEntry + extraction facts)
    videos/<key>/crops.npy      uint8 (F, S, S, 3) face crops of frames with a face
    videos/<key>/frames.npy     int64 (F,) their frame numbers in the video
    videos/<key>/boxes.npy      float32 (F, 4) square crop boxes in full-frame pixels
    videos/<key>/keypoints.npy  float32 (F, 5, 2) MTCNN keypoints in crop pixels (NaN if unknown)
    videos/<key>/masks.npy      uint8 (F, S, S) manipulation mask crops (FF++ fakes only)

A video's folder is assembled under ``.tmp/`` and renamed into ``videos/`` in one step, so an
interrupted run never leaves a partial entry and a finished one is never rewritten.  ``.npy``
files load with ``mmap_mode="r"``: a training loader reads only the frames of one clip.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ._files import atomic_write, writer_tag, written_by_a_living_process

if TYPE_CHECKING:
    from .clips import VideoClips
    from .datasets.entry import VideoEntry

CACHE_FORMAT = "istvt-explain-cache"
CACHE_VERSION = 1


@dataclass(frozen=True)
class CacheSettings:
    """How the crops of a cache were made; a cache holds crops of one kind only."""

    image_size: int = 300
    frames: int = 6
    detector: str = "mtcnn"
    min_face: int = 20          # smallest face side in pixels, on frames shrunk to 640 px at most
    detect_every: int = 1
    margin: float = 1.25
    max_frames: int | None = None


def video_dir(cache_dir: Path, key: str) -> Path:
    return Path(cache_dir) / "videos" / key


def is_cached(cache_dir: Path, key: str, image_size: int | None = None) -> bool:
    """Whether the entry is complete: a folder that only exists is not (see ``entry_problem``)."""
    return entry_problem(video_dir(cache_dir, key), image_size) is None


META_KEYS = ("key", "video_id", "label", "dataset", "manipulation", "split")


def read_entry_meta(folder: Path) -> dict[str, Any]:
    """An entry's meta.json; ``InputError`` saying what is wrong when it is missing or malformed."""
    path = Path(folder) / "meta.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("no meta.json (an unfinished or damaged entry)") from None
    except (OSError, ValueError) as err:
        raise InputError(f"unreadable meta.json ({str(err).splitlines()[0][:80]})") from None
    if not isinstance(meta, dict):
        raise InputError("meta.json is not a JSON object")
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise InputError(f"meta.json lacks {', '.join(missing)}")
    if meta["label"] not in (0, 1) or isinstance(meta["label"], bool):
        raise InputError(f"meta.json label {meta['label']!r} is not 0 or 1")
    return meta


def entry_problem(folder: Path, image_size: int | None = None) -> str | None:
    """Why a cache entry cannot be used (None when it is complete and well-formed).

    Checks meta.json and the shape and type of every array (headers only, except the small
    frames.npy), so an entry whose files were truncated, replaced or deleted is found before a
    loader trips over it.  ``image_size`` (the cache's crop size) is checked when given.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return "no such entry"
    try:
        meta = read_entry_meta(folder)
        if meta["key"] != folder.name:
            raise InputError(f"meta.json belongs to {str(meta['key'])[:60]!r}, not to this folder")
        _check_arrays(folder, meta, image_size)
    except InputError as err:
        return str(err)
    return None


def _load_header(path: Path) -> np.ndarray:
    """The array memory-mapped: shape and dtype without reading it; a truncated file fails here."""
    try:
        return np.load(path, mmap_mode="r")
    except FileNotFoundError:
        raise InputError(f"{path.name} is missing") from None
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path.name} is unreadable ({str(err).splitlines()[0][:80]})") from None


def _check_arrays(folder: Path, meta: dict[str, Any], image_size: int | None) -> None:
    frames = _load_header(folder / "frames.npy")
    if frames.ndim != 1 or frames.dtype.kind not in "iu":
        raise InputError(f"frames.npy has shape {frames.shape} and type {frames.dtype}, not (F,) integers")
    count = len(frames)
    if count and (int(frames[0]) < 0 or bool(np.any(np.diff(frames) <= 0))):
        raise InputError("frames.npy is not a rising list of frame numbers")
    crops = _load_header(folder / "crops.npy")
    size = image_size or (crops.shape[1] if crops.ndim > 1 else 0)
    wanted = {"crops.npy": ((count, size, size, 3), "u"), "boxes.npy": ((count, 4), "f"),
              "keypoints.npy": ((count, 5, 2), "f")}
    if meta.get("has_mask"):
        wanted["masks.npy"] = ((count, size, size), "u")
    for name, (shape, kind) in wanted.items():
        array = _load_header(folder / name)
        if array.shape != shape or array.dtype.kind != kind:
            raise InputError(f"{name} has shape {array.shape} ({array.dtype}), expected {shape}")
    if "num_crops" in meta and meta["num_crops"] != count:
        raise InputError(f"meta.json says {meta['num_crops']} crops, frames.npy holds {count}")


def discard_entry(cache_dir: Path, key: str) -> None:
    """Move a broken entry out of ``videos/`` (one rename) and delete it, so it is rebuilt."""
    folder = video_dir(cache_dir, key)
    if not folder.exists():
        return
    trash = Path(cache_dir) / ".tmp" / f"{key}.broken.{writer_tag()}.part"
    trash.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(trash, ignore_errors=True)
    try:
        os.rename(folder, trash)
    except OSError:
        return  # another process moved it first
    shutil.rmtree(trash, ignore_errors=True)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (``atomic_write``)."""
    text = json.dumps(data, indent=1, default=str)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def open_cache(cache_dir: str | os.PathLike, settings: CacheSettings) -> Path:
    """Create the cache folder or check that an existing one was made with the same settings."""
    cache_dir = Path(cache_dir)
    if cache_dir.exists() and not cache_dir.is_dir():
        raise InputError(f"{cache_dir}: exists and is not a folder")
    info = cache_dir / "cache.json"
    wanted = {"format": CACHE_FORMAT, "version": CACHE_VERSION, **asdict(settings)}
    if info.is_file():
        stored = read_cache_info(cache_dir)
        diff = {k: (stored.get(k), v) for k, v in wanted.items() if stored.get(k) != v}
        if diff:
            detail = ", ".join(f"{k} {old!r} (asked {new!r})" for k, (old, new) in diff.items())
            raise InputError(f"{cache_dir}: cache was made with other settings: {detail}; "
                             "use another output folder")
    elif cache_dir.is_dir() and any(p for p in cache_dir.iterdir() if not p.name.startswith(".")):
        raise InputError(f"{cache_dir}: folder is not empty and is not an istvt-explain cache")
    else:
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            write_json(info, wanted)
        except OSError as err:
            raise InputError(f"{cache_dir}: cannot create the cache folder ({err.strerror or err})") from None
    try:
        (cache_dir / "videos").mkdir(exist_ok=True)
    except OSError as err:
        raise InputError(f"{cache_dir}: cannot write to the cache folder ({err.strerror or err})") from None
    _remove_stale_parts(cache_dir)
    return cache_dir


def read_cache_info(cache_dir: Path) -> dict[str, Any]:
    path = Path(cache_dir) / "cache.json"
    if not path.is_file():
        raise InputError(f"{cache_dir}: not an istvt-explain cache (no cache.json; run `istvt-explain preprocess`)")
    try:
        info = json.loads(path.read_text())
    except ValueError as err:
        raise InputError(f"{path}: corrupt cache description ({err})") from None
    if not isinstance(info, dict) or info.get("format") != CACHE_FORMAT:
        raise InputError(f"{path}: not an istvt-explain cache description")
    return info


def _remove_stale_parts(cache_dir: Path) -> None:
    """Delete half-built entries of runs that were killed (their process is gone)."""
    parts = cache_dir / ".tmp"
    if not parts.is_dir():
        return
    for part in parts.iterdir():
        if not written_by_a_living_process(part):
            shutil.rmtree(part, ignore_errors=True)


def store_video(cache_dir: Path, entry: VideoEntry, clips: VideoClips) -> bool:
    """Write one video's crops under ``videos/<key>/`` in one rename; False if it was already there."""
    final = video_dir(cache_dir, entry.key)
    if final.exists():
        return False
    part = Path(cache_dir) / ".tmp" / f"{entry.key}.{writer_tag()}.part"
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        np.save(part / "crops.npy", clips.crops)
        np.save(part / "frames.npy", clips.crop_frames.astype(np.int64))
        np.save(part / "boxes.npy", clips.boxes[clips.crop_frames].astype(np.float32))
        np.save(part / "keypoints.npy", clips.keypoints.astype(np.float32))
        if clips.masks is not None:
            np.save(part / "masks.npy", clips.masks)
        meta = {
            "key": entry.key, "video_id": entry.video_id, "label": entry.label, "dataset": entry.dataset,
            "manipulation": entry.manipulation, "split": entry.split, "source": entry.source,
            "path": str(entry.path), "mask_path": str(entry.mask_path) if entry.mask_path else None,
            "has_mask": clips.masks is not None, "fps": clips.fps, "num_frames": clips.num_frames,
            "frame_size": list(clips.frame_size), "num_crops": len(clips.crop_frames),
            "face_frames": int(clips.face_frames.sum()), "num_tracks": clips.num_tracks,
            "track_index": clips.track_index,
        }
        (part / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.rename(part, final)
        except OSError:  # another worker finished it first
            shutil.rmtree(part, ignore_errors=True)
            return False
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    return True


@dataclass
class CacheScan:
    """The entries of a cache: ``videos`` the meta.json of every usable one, ``broken`` the others
    as ``{"video": key, "reason": ...}`` (with the meta.json when it was readable)."""

    videos: list[dict[str, Any]]
    broken: list[dict[str, Any]]


def scan_cache(cache_dir: str | os.PathLike) -> CacheScan:
    """Check every entry of a cache (sorted by key); broken ones are listed, never fatal."""
    cache_dir = Path(cache_dir)
    info = read_cache_info(cache_dir)
    image_size = info.get("image_size") if isinstance(info.get("image_size"), int) else None
    scan = CacheScan([], [])
    folders = sorted(p for p in (cache_dir / "videos").iterdir() if p.is_dir()) if (cache_dir / "videos").is_dir() else []
    for folder in folders:
        problem = entry_problem(folder, image_size)
        if problem is None:
            scan.videos.append(read_entry_meta(folder))
            continue
        broken: dict[str, Any] = {"video": folder.name, "reason": problem}
        try:
            broken["meta"] = read_entry_meta(folder)
        except InputError:
            pass
        scan.broken.append(broken)
    return scan


def cached_videos(cache_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The meta.json of every complete video in a cache, sorted by key (``scan_cache`` names the others)."""
    return scan_cache(cache_dir).videos
