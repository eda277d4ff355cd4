"""Faithfulness of an explanation (docs/judging.md): does removing what it points at change the score?

* Deletion / insertion (Petsiuk et al. 2018, RISE) over space-time *tokens*: tokens are ranked by
  the map; deletion replaces the top fraction by a *removed* version of the clip, insertion shows
  only the top fraction over the removed clip; the explained class's probability along the way is a
  curve whose area is the score (deletion: lower is better, insertion: higher).  Evidence is removed
  in two ways, so that no single baseline decides: ``blur`` (a strongly blurred copy of the frame)
  and ``mean`` (the frame's mean colour).  A random ranking of the same clip is the reference.
* Temporal faithfulness: replace the k most important frames, k random ones and the k least
  important by a ``frozen`` frame (the nearest kept neighbour: the clip simply stands still) or a
  ``blur`` copy.  The model's probability is measured once per clip for *every* k-subset of frames,
  so "random k" is the exact mean over subsets, and the spread over subsets tells whether the model
  reacts to which frames are removed at all (when it does not, no frame curve can be judged).

A token is the pixel block it sits on in the crop (nearest upsampling of the grid).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...attribution.base import class_probability

TOKEN_REMOVALS = ("blur", "mean")
FRAME_REMOVALS = ("frozen", "blur")
BLUR_SIGMA_FRACTION = 1 / 16  # blur sigma as a share of the crop side: a 160 px crop gets sigma 10


@dataclass(frozen=True)
class CurveSettings:
    steps: int = 4  # points after the start: fractions 0, 1/steps, ..., 1
    batch: int = 16  # perturbed clips per forward pass


def target_probability(model: nn.Module, clips: torch.Tensor, index: torch.Tensor | int, batch: int = 16
                       ) -> torch.Tensor:
    """Probability of class column ``index`` (one per clip, or one for all) for every clip, no grad."""
    if isinstance(index, int):
        index = torch.full((clips.shape[0],), index, dtype=torch.long, device=clips.device)
    out = []
    with torch.no_grad():
        for start in range(0, clips.shape[0], batch):
            logits = model(clips[start:start + batch])
            out.append(class_probability(model, logits, index[start:start + batch])[1])
    return torch.cat(out)


def blurred(clip: torch.Tensor) -> torch.Tensor:
    """(T, 3, H, W) -> the same clip under a Gaussian blur of sigma ``BLUR_SIGMA_FRACTION`` of the side."""
    from torchvision.transforms.functional import gaussian_blur

    sigma = max(clip.shape[-1] * BLUR_SIGMA_FRACTION, 0.5)
    size = int(2 * round(3 * sigma) + 1)
    return gaussian_blur(clip, [size, size], [sigma, sigma])


def removed_clip(clip: torch.Tensor, removal: str) -> torch.Tensor:
    """What a token turns into when its evidence is removed: ``blur`` or ``mean`` (per frame)."""
    if removal == "blur":
        return blurred(clip)
    if removal == "mean":
        return clip.mean(dim=(-1, -2), keepdim=True).expand_as(clip).clone()
    raise ValueError(f"unknown removal {removal!r}; choose one of {', '.join(TOKEN_REMOVALS)}")


def token_ranking(spatial: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(T, g, g) map -> token indices, most relevant first; ties broken at random (constant maps)."""
    flat = spatial.reshape(-1).double()
    noise = torch.rand(flat.shape, generator=generator, dtype=torch.float64) * 1e-9 * (flat.abs().max() + 1e-30)
    return torch.argsort(flat + noise, descending=True)


def _token_masks(order: torch.Tensor, shape: tuple[int, int, int], image: int, fractions: Sequence[float]
                 ) -> torch.Tensor:
    """(len(fractions), T, image, image) masks, 1 where the top ``fraction`` of ``order`` lies."""
    t, g, _ = shape
    count = order.numel()
    ranks = torch.empty(count, dtype=torch.long)
    ranks[order.cpu()] = torch.arange(count)
    cuts = torch.tensor([round(count * f) for f in fractions])
    token_masks = (ranks[None, :] < cuts[:, None]).float().reshape(len(fractions), t, g, g)
    return F.interpolate(token_masks, size=(image, image), mode="nearest")


def deletion_insertion(model: nn.Module, clip: torch.Tensor, index: int, order: torch.Tensor,
                       grid_shape: tuple[int, int, int], settings: CurveSettings = CurveSettings(),
                       removal: str = "blur", ends: tuple[float, float] | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion curves (each ``steps + 1`` probabilities) of one clip (T, 3, H, W).

    ``ends`` = (probability of the clip, of the fully removed clip) when already known: both curves
    start or end there, so only the interior points are computed.
    """
    fractions = [k / settings.steps for k in range(settings.steps + 1)]
    gone = removed_clip(clip, removal)
    if ends is None:
        ends = tuple(target_probability(model, torch.stack([clip, gone]), index).cpu().tolist())
    inner = fractions[1:-1]
    if inner:
        masks = _token_masks(order, grid_shape, clip.shape[-1], inner).to(clip.device, clip.dtype)[:, :, None]
        deleted = clip[None] * (1 - masks) + gone[None] * masks
        inserted = gone[None] * (1 - masks) + clip[None] * masks
        probs = target_probability(model, torch.cat([deleted, inserted]), index, settings.batch).cpu().numpy()
    else:
        probs = np.zeros(0)
    n = len(inner)
    full, empty = ends
    deletion = np.concatenate([[full], probs[:n], [empty]])
    insertion = np.concatenate([[empty], probs[n:], [full]])
    return deletion, insertion


def curve_auc(curve: np.ndarray) -> float:
    """Area under a curve sampled at evenly spaced fractions of [0, 1] (trapezoid rule)."""
    x = np.linspace(0.0, 1.0, len(curve))
    return float(np.trapezoid(curve, x)) if hasattr(np, "trapezoid") else float(np.trapz(curve, x))


def replace_frames(clip: torch.Tensor, frames: Sequence[int] | torch.Tensor, removal: str = "frozen"
                   ) -> torch.Tensor:
    """A copy of ``clip`` (T, 3, H, W) with ``frames`` removed: ``frozen`` repeats the nearest kept
    frame (the earlier one on a tie), ``blur`` blurs them, ``grey`` sets them to 0 (the normalised grey)."""
    chosen = sorted({int(f) for f in torch.as_tensor(frames).reshape(-1).tolist()})
    t = clip.shape[0]
    kept = [f for f in range(t) if f not in chosen]
    out = clip.clone()
    if not chosen:
        return out
    if removal == "frozen":
        if not kept:
            raise ValueError("a frozen clip needs at least one kept frame")
        for f in chosen:
            out[f] = clip[min(kept, key=lambda k: (abs(k - f), k))]
    elif removal == "blur":
        out[chosen] = blurred(clip[chosen])
    elif removal == "grey":
        out[chosen] = 0.0
    else:
        raise ValueError(f"unknown frame removal {removal!r}; choose one of {', '.join(FRAME_REMOVALS)}, grey")
    return out


@dataclass(frozen=True)
class FrameRemovalTable:
    """The explained class's probability drop for every k-subset of frames of one clip."""

    subsets: list[tuple[int, ...]]
    drops: np.ndarray  # (len(subsets),) probability of the clip minus probability after removal

    @property
    def random_drop(self) -> float:
        return float(self.drops.mean())

    @property
    def spread(self) -> float:
        """Standard deviation of the drop over subsets: ~0 when the model reacts alike to any removal."""
        return float(self.drops.std())

    def drop_of(self, frames: Sequence[int]) -> float:
        return float(self.drops[self.subsets.index(tuple(sorted(int(f) for f in frames)))])


def frame_removal_table(model: nn.Module, clip: torch.Tensor, index: int, k: int, removal: str,
                        batch: int = 16) -> FrameRemovalTable:
    """Probability drops for all C(T, k) ways to remove k frames (shared by every method)."""
    t = clip.shape[0]
    if not 1 <= k < t:
        raise ValueError(f"k must be in 1..{t - 1} for clips of {t} frames, got {k}")
    subsets = list(itertools.combinations(range(t), k))
    variants = torch.stack([clip] + [replace_frames(clip, s, removal) for s in subsets])
    probs = target_probability(model, variants, index, batch).cpu().numpy()
    return FrameRemovalTable(subsets, float(probs[0]) - probs[1:])


def top_and_bottom(frame_importance: torch.Tensor, k: int, generator: torch.Generator | None = None
                   ) -> tuple[list[int], list[int]]:
    """The k most and the k least important frames (ties broken at random)."""
    t = frame_importance.numel()
    noise = torch.rand(t, generator=generator, dtype=torch.float64) * 1e-9
    order = torch.argsort(frame_importance.detach().double().cpu().reshape(-1) + noise, descending=True)
    return order[:k].tolist(), order[-k:].tolist()
