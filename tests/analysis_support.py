"""Helpers for the analysis, figure and notebook tests: a very small model, clips, a stand-in explainer.

The analyses only need *a* model and *an* explainer to be exercised; the tiny
preset at 64 x 64 crops (a 4 x 4 token grid) keeps each forward pass to
milliseconds on a shared CPU.  The real methods are used where it matters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from support import PRESET, tiny_model

import istvt_explain as ie
from istvt_explain.attribution.explanation import Explanation

IMAGE = 64
FRAMES = 6


def small_model(seed: int = 0) -> ie.ISTVT:
    """The tiny preset at 64 px crops, its own 6 frames and 4 blocks (the frame count of these clips)."""
    return tiny_model(image_size=IMAGE, frames=PRESET, depth=PRESET, seed=seed)


def small_weights(path: Path, seed: int = 0) -> Path:
    ie.save_checkpoint(small_model(seed), path)
    return path


def smooth_uint8_clips(count: int, seed: int = 0, size: int = IMAGE, frames: int = FRAMES) -> np.ndarray:
    """uint8 (count, T, S, S, 3) smooth random content (blur and JPEG act on it as on images).

    Unlike ``support.random_clips`` (the model's normalised float input): pixels as a video gives them,
    drawn with numpy, low-frequency plus a little noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(count, frames, size // 8, size // 8, 3)).astype(np.float32)
    up = torch.from_numpy(coarse).permute(0, 1, 4, 2, 3).flatten(0, 1)
    up = F.interpolate(up, size=(size, size), mode="bilinear", align_corners=False)
    up = up.view(count, frames, 3, size, size).permute(0, 1, 3, 4, 2).numpy()
    noise = rng.normal(0, 8, up.shape)
    return np.clip(up + noise, 0, 255).round().astype(np.uint8)


def content_explain(model, clips: torch.Tensor, method: str = "content", target=None, **options) -> Explanation:
    """A stand-in explainer whose maps follow the content: mean brightness per 4 x 4 token cell.

    Its map of a frame depends on that frame only, so a perturbation that moves
    frames in time must leave the content-aligned rank correlation at exactly 1.
    """
    b, t = clips.shape[:2]
    grey = clips.mean(dim=2)  # (B, T, H, W)
    spatial = F.adaptive_avg_pool2d(grey.flatten(0, 1), 4).view(b, t, 4, 4) + 1.0
    temporal = spatial.flatten(2).std(dim=-1)
    prob = torch.sigmoid(clips.mean(dim=(1, 2, 3, 4)) * 10)
    return Explanation(spatial, temporal, prob, torch.logit(prob), method, target, dict(options))
