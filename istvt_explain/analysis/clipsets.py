"""Labelled clips to analyse, as uint8 frames: what perturbations, galleries and figures work on.

The analyses read any data set the training stage builds (items with a
normalised ``clip``, a ``label`` and optionally ``video_id``, ``manipulation``
and a ``mask``): for the demo weights, the held-out pseudo-fakes of the demo
configuration's test split, whose blend masks say where the manipulation is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class LabelledClips:
    """Clips with ground truth.

    Attributes:
        clips: uint8 (K, T, S, S, 3) face crops.
        labels: (K,) 1 = fake, 0 = real.
        masks: float32 (K, T, S, S) manipulated region in [0, 1] (all zero for real clips).
        ids: (K,) readable names ("3:grace_hopper-1": data set index and video).
        videos: (K,) the source video of each clip (for video-level scores).
    """

    clips: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    ids: list[str]
    videos: list[str]

    def __len__(self) -> int:
        return len(self.clips)

    def subset(self, indices: Sequence[int]) -> LabelledClips:
        idx = list(indices)
        return LabelledClips(self.clips[idx], self.labels[idx], self.masks[idx],
                             [self.ids[i] for i in idx], [self.videos[i] for i in idx])


def to_uint8_frames(clip: np.ndarray | torch.Tensor) -> np.ndarray:
    """A normalised model-input clip (T, 3, S, S) back to uint8 frames (T, S, S, 3), for display and perturbation."""
    x = torch.as_tensor(clip).detach().float().cpu()
    return ((x * 0.5 + 0.5) * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def clips_from_dataset(dataset: Sequence[Mapping[str, Any]], indices: Sequence[int] | None = None) -> LabelledClips:
    """Clips of a training/evaluation data set (items with ``clip``, ``label`` and optional ``video_id``, ``mask``).

    This is how the analyses see exactly what ``istvt-explain evaluate`` scored:
    item i here is row i of its ``scores.csv``.
    """
    indices = list(range(len(dataset))) if indices is None else list(indices)
    clips, labels, masks, ids, videos = [], [], [], [], []
    for i in indices:
        item = dataset[i]
        frames = to_uint8_frames(item["clip"])
        clips.append(frames)
        labels.append(int(float(item["label"]) >= 0.5))
        mask = item.get("mask")
        masks.append(np.zeros(frames.shape[:3], np.float32) if mask is None
                     else torch.as_tensor(mask).float().cpu().numpy())
        video = str(item.get("video_id", f"item{i}"))
        ids.append(f"{i}:{video}")
        # A pseudo-fake shares its real clip's video id: keep them apart for video-level scores.
        videos.append(f"{video}:{item['manipulation']}" if item.get("manipulation") else video)
    return LabelledClips(np.stack(clips), np.array(labels, np.int64), np.stack(masks).astype(np.float32), ids, videos)
