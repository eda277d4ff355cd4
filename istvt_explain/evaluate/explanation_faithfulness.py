"""Faithfulness of an explanation (docs/judging.md): does removing what it points at change the score?

* Deletion / insertion (Petsiuk et al. 2018, RISE) over space-time *tokens*: tokens
  are ranked by the map, the top fraction is greyed out (deletion) or only it is
  shown on a grey clip (insertion), and the explained class's probability is
  recorded; the area under that curve is the score (deletion: lower is better,
  insertion: higher).  A random ranking gives the reference.
* Temporal faithfulness: grey out the k most important frames, k random ones and
  the k least important; a faithful frame curve makes the first drop largest.

Grey is 0 after normalisation, the same baseline Captum's methods use here.  A
token is the pixel block it sits on in the crop (nearest upsampling of the grid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..explain.base import class_probability


@dataclass(frozen=True)
class CurveSettings:
    steps: int = 8  # points after the start: fractions 0, 1/steps, ..., 1
    batch: int = 9  # perturbed clips per forward pass


def target_probability(model: nn.Module, clips: torch.Tensor, index: torch.Tensor, batch: int = 8
                       ) -> torch.Tensor:
    """Probability of class column ``index`` (one per clip) for every clip, batched, no grad."""
    out = []
    with torch.no_grad():
        for start in range(0, clips.shape[0], batch):
            part = clips[start:start + batch]
            logits = model(part)
            out.append(class_probability(model, logits, index[start:start + batch])[1])
    return torch.cat(out)


def token_ranking(spatial: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(T, g, g) map -> token indices, most relevant first; ties broken at random (constant maps)."""
    flat = spatial.reshape(-1).double()
    noise = torch.rand(flat.shape, generator=generator, dtype=torch.float64) * 1e-9 * (flat.abs().max() + 1e-30)
    return torch.argsort(flat + noise, descending=True)


def _token_masks(order: torch.Tensor, shape: tuple[int, int, int], image: int, steps: int) -> torch.Tensor:
    """(steps+1, T, image, image) masks, 1 where the top fraction k/steps of ``order`` lies."""
    t, g, _ = shape
    count = order.numel()
    ranks = torch.empty(count, dtype=torch.long)
    ranks[order] = torch.arange(count)
    cuts = torch.tensor([round(count * k / steps) for k in range(steps + 1)])
    token_masks = (ranks[None, :] < cuts[:, None]).float().reshape(steps + 1, t, g, g)
    return F.interpolate(token_masks, size=(image, image), mode="nearest")


def deletion_insertion(model: nn.Module, clip: torch.Tensor, index: int, order: torch.Tensor,
                       grid_shape: tuple[int, int, int], settings: CurveSettings = CurveSettings()
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion curves (each steps+1 probabilities) of one clip (T, 3, H, W)."""
    masks = _token_masks(order, grid_shape, clip.shape[-1], settings.steps).to(clip.device, clip.dtype)
    masks = masks[:, :, None]  # broadcast over colour
    deleted = clip[None] * (1 - masks)
    inserted = clip[None] * masks
    both = torch.cat([deleted, inserted])
    target = torch.full((both.shape[0],), index, dtype=torch.long, device=clip.device)
    probs = target_probability(model, both, target, settings.batch).cpu().numpy()
    n = settings.steps + 1
    return probs[:n], probs[n:]


def curve_auc(curve: np.ndarray) -> float:
    """Area under a curve sampled at evenly spaced fractions of [0, 1] (trapezoid rule)."""
    x = np.linspace(0.0, 1.0, len(curve))
    return float(np.trapezoid(curve, x)) if hasattr(np, "trapezoid") else float(np.trapz(curve, x))


def drop_frames(clip: torch.Tensor, frames: list[int] | torch.Tensor) -> torch.Tensor:
    """A copy of ``clip`` (T, 3, H, W) with ``frames`` replaced by grey."""
    out = clip.clone()
    out[torch.as_tensor(frames, dtype=torch.long)] = 0.0
    return out


def temporal_faithfulness(model: nn.Module, clip: torch.Tensor, index: int, frame_importance: torch.Tensor,
                          k: int, generator: torch.Generator, random_draws: int = 3) -> dict[str, float]:
    """Probability drop when the top-k, k random and the bottom-k frames are greyed out."""
    t = clip.shape[0]
    if not 1 <= k < t:
        raise ValueError(f"k must be in 1..{t - 1} for clips of {t} frames, got {k}")
    noise = torch.rand(t, generator=generator, dtype=torch.float64) * 1e-9
    order = torch.argsort(frame_importance.double().cpu() + noise, descending=True)
    variants = [clip, drop_frames(clip, order[:k]), drop_frames(clip, order[-k:])]
    variants += [drop_frames(clip, torch.randperm(t, generator=generator)[:k]) for _ in range(random_draws)]
    target = torch.full((len(variants),), index, dtype=torch.long, device=clip.device)
    probs = target_probability(model, torch.stack(variants), target).cpu().numpy()
    base = float(probs[0])
    return {"drop_top_k": base - float(probs[1]), "drop_bottom_k": base - float(probs[2]),
            "drop_random_k": base - float(np.mean(probs[3:]))}
