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
from ..models.weights import atomic_write

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


def is_cached(cache_dir: Path, key: str) -> bool:
    return (video_dir(cache_dir, key) / "meta.json").is_file()


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_parts(cache_dir: Path) -> None:
    """Delete half-built entries of runs that were killed (their process is gone)."""
    parts = cache_dir / ".tmp"
    if not parts.is_dir():
        return
    for part in parts.iterdir():
        pid = part.name.rsplit(".", 1)[-1]
        if not pid.isdigit() or not _pid_alive(int(pid)) or int(pid) == os.getpid():
            shutil.rmtree(part, ignore_errors=True)


def store_video(cache_dir: Path, entry: VideoEntry, clips: VideoClips) -> bool:
    """Write one video's crops under ``videos/<key>/`` in one rename; False if it was already there."""
    final = video_dir(cache_dir, entry.key)
    if final.exists():
        return False
    part = Path(cache_dir) / ".tmp" / f"{entry.key}.{os.getpid()}"
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


def cached_videos(cache_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """The meta.json of every finished video in a cache, sorted by key."""
    cache_dir = Path(cache_dir)
    read_cache_info(cache_dir)
    metas = []
    for meta_path in sorted((cache_dir / "videos").glob("*/meta.json")):
        try:
            metas.append(json.loads(meta_path.read_text()))
        except ValueError as err:
            raise InputError(f"{meta_path}: corrupt cache entry ({err}); delete its folder and rerun preprocess") from None
    return metas
