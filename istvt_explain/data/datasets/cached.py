"""Torch datasets over the preprocess cache: what training and evaluation read.

``CachedClipDataset`` cuts every cached video into clips of ``frames`` consecutive face
crops (one every ``stride`` frames) and serves them as model input.  ``PseudoFakeClips`` turns
some of its real clips into self-blended pseudo-fakes on the fly (training without fakes).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ...errors import InputError
from ..cache import read_cache_info, scan_cache, video_dir
from ..clips import clip_windows, normalize_clip
from ..pseudofake import make_pseudofake_clip


def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


def _wanted(meta: dict[str, Any], splits: set[str] | None, labels: set[int] | None, kinds: set[str] | None,
            sets: set[str] | None) -> bool:
    """Whether a video passes the data set's filters."""
    if splits is not None and str(meta.get("split")) not in splits:
        return False
    if labels is not None and int(meta["label"]) not in labels:
        return False
    return (kinds is None or meta["manipulation"] in kinds) and (sets is None or meta["dataset"] in sets)


class CachedClipDataset(Dataset):
    """Clips from a cache written by ``istvt-explain preprocess`` (or ``data.preprocess``).

    Arguments:
        cache_dir: the cache folder.
        split: keep videos of this split (or splits); None keeps all, ``"none"`` never matches.
        frames: T, crops per clip (at most the cache's ``frames`` setting is guaranteed per video).
        stride: frames between clip starts (default ``frames``: clips do not overlap).
        labels / manipulations / datasets: keep only videos with these values.
        max_clips_per_video: keep at most that many clips per video, evenly spread (balances long
            and short videos).

    Videos with fewer than ``frames`` consecutive cached crops give no clip; their keys are in
    ``too_short``.  Broken entries (``cache.entry_problem``: missing meta.json, truncated or
    malformed arrays, crops of another size) are left out and named in ``skipped``.  ``videos`` holds the meta.json of every video used (label, split, fps, ...),
    ``labels`` and ``video_indices`` one entry per item.

    Each item is a dict:
        ``clip`` float32 (T, 3, S, S), normalised (x/255 - 0.5)/0.5, ready for the model;
        ``label`` float32 scalar tensor, 0 real / 1 fake;
        ``mask`` float32 (T, S, S) in [0, 1]: the manipulation mask (zeros for real videos and for
            fakes without one; see ``has_mask``);
        ``has_mask`` bool scalar tensor: whether ``mask`` is ground truth;
        ``frame_indices`` int64 (T,) frame numbers in the source video;
        ``video_id``, ``manipulation``, ``key`` (str) and ``video_index`` (int) for video-level scores.
    The default ``DataLoader`` collate stacks them into a batch.  ``video_index`` groups clips
    back into videos: a video's score is the mean of its clip scores.
    """

    def __init__(self, cache_dir: str | os.PathLike, split: str | Iterable[str] | None = None, frames: int = 6,
                 stride: int | None = None, *, labels: Iterable[int] | None = None,
                 manipulations: str | Iterable[str] | None = None, datasets: str | Iterable[str] | None = None,
                 max_clips_per_video: int | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.info = read_cache_info(self.cache_dir)
        self.frames = int(frames)
        self.stride = int(stride or frames)
        splits, kinds, sets = _as_set(split), _as_set(manipulations), _as_set(datasets)
        wanted_labels = None if labels is None else {int(v) for v in labels}
        self.videos: list[dict[str, Any]] = []
        self.too_short: list[str] = []
        items: list[tuple[int, np.ndarray]] = []
        wanted = lambda meta: _wanted(meta, splits, wanted_labels, kinds, sets)  # noqa: E731
        scan = scan_cache(self.cache_dir)
        self.skipped: list[dict[str, str]] = [{"video": b["video"], "reason": b["reason"]} for b in scan.broken
                                              if "meta" not in b or wanted(b["meta"])]
        """Broken cache entries left out, as ``{"video": key, "reason": ...}`` (unknown split: in every split)."""
        for meta in scan.videos:
            if not wanted(meta):
                continue
            crop_frames = np.load(video_dir(self.cache_dir, meta["key"]) / "frames.npy")
            present = np.zeros(int(crop_frames.max()) + 1 if len(crop_frames) else 0, bool)
            present[crop_frames] = True
            windows = clip_windows(present, self.frames, self.stride)
            if len(windows) == 0:
                self.too_short.append(meta["key"])
                continue
            if max_clips_per_video and len(windows) > max_clips_per_video:
                keep = np.unique(np.linspace(0, len(windows) - 1, max_clips_per_video).round().astype(int))
                windows = windows[keep]
            video_index = len(self.videos)
            self.videos.append(meta)
            items.extend((video_index, np.searchsorted(crop_frames, w)) for w in windows)
        self._items = items
        self.video_indices = np.array([v for v, _ in items], np.int64)
        """Video (index into ``videos``) of every item: groups clip scores into video scores."""
        self.labels = np.array([self.videos[v]["label"] for v, _ in items], np.int64)
        """Label of every item (for samplers that balance classes)."""

    def __len__(self) -> int:
        return len(self._items)

    def item_key(self, index: int) -> str:
        """The cache key of the video an item comes from (names it when the item is unreadable)."""
        return str(self.videos[self._items[index][0]]["key"])

    def load_clip(self, index: int) -> dict[str, Any]:
        """The raw clip: uint8 ``frames`` (T, S, S, 3), float32 ``keypoints`` (T, 5, 2), uint8 ``masks``
        (T, S, S) or None, int64 ``frame_indices``, and the video's ``meta``."""
        video_index, positions = self._items[index]
        meta = self.videos[video_index]
        folder = video_dir(self.cache_dir, meta["key"])
        try:
            frames = np.asarray(np.load(folder / "crops.npy", mmap_mode="r")[positions])
            keypoints = np.asarray(np.load(folder / "keypoints.npy", mmap_mode="r")[positions])
            numbers = np.asarray(np.load(folder / "frames.npy", mmap_mode="r")[positions])
            masks = np.asarray(np.load(folder / "masks.npy", mmap_mode="r")[positions]) if meta.get("has_mask") else None
        except (OSError, ValueError, IndexError) as err:
            raise InputError(f"{folder}: corrupt cache entry ({err}); delete it and rerun preprocess") from None
        return {"frames": frames, "keypoints": keypoints, "masks": masks, "frame_indices": numbers,
                "meta": meta, "video_index": video_index}

    def to_item(self, raw: dict[str, Any], label: float | None = None, mask: np.ndarray | None = None) -> dict[str, Any]:
        """Turn a raw clip into the model-ready item (see the class doc)."""
        meta = raw["meta"]
        size = raw["frames"].shape[1]
        if mask is None and raw["masks"] is not None:
            mask = raw["masks"].astype(np.float32) / 255.0
        has_mask = mask is not None or int(meta["label"] if label is None else label) == 0
        if mask is None:
            mask = np.zeros((len(raw["frames"]), size, size), np.float32)
        return {
            "clip": normalize_clip(raw["frames"]),
            "label": torch.tensor(float(meta["label"] if label is None else label), dtype=torch.float32),
            "mask": torch.from_numpy(np.ascontiguousarray(mask, np.float32)),
            "has_mask": torch.tensor(has_mask),
            "frame_indices": torch.from_numpy(raw["frame_indices"].astype(np.int64)),
            "video_id": meta["video_id"], "manipulation": meta["manipulation"], "key": meta["key"],
            "video_index": raw["video_index"],
        }

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.to_item(self.load_clip(index))


class PseudoFakeClips(Dataset):
    """A view of the real clips of a ``CachedClipDataset`` where some become self-blended pseudo-fakes.

    With probability ``probability`` (per item, per epoch) a real clip is blended with a jittered
    copy of itself (``make_pseudofake_clip``): label 1, manipulation ``"pseudofake"``, and the
    blend mask as ``mask``.  Fake clips of the base dataset are left out.  Randomness depends on
    (seed, epoch, index) only: reproducible with any number of loader workers; call
    ``set_epoch`` each epoch for fresh pseudo-fakes.
    """

    def __init__(self, base: CachedClipDataset, probability: float = 0.5, seed: int = 0) -> None:
        self.base = base
        self.probability = float(probability)
        self.seed = int(seed)
        self.epoch = 0
        self._real = np.flatnonzero(base.labels == 0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self._real)

    def item_key(self, index: int) -> str:
        return self.base.item_key(int(self._real[index]))

    @property
    def skipped(self) -> list[dict[str, str]]:
        return self.base.skipped

    def __getitem__(self, index: int) -> dict[str, Any]:
        raw = self.base.load_clip(int(self._real[index]))
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        if rng.random() >= self.probability:
            return self.base.to_item(raw)
        keypoints = raw["keypoints"] if np.isfinite(raw["keypoints"]).all() else None
        fake, masks = make_pseudofake_clip(raw["frames"], rng, keypoints)
        item = self.base.to_item({**raw, "frames": fake}, label=1.0, mask=masks)
        item["manipulation"] = "pseudofake"
        return item
