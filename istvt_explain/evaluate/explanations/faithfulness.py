"""Faithfulness of an explanation (docs/judging.md): does removing what it points at change the score?

Deletion / insertion (Petsiuk et al. 2018, RISE) over space-time *tokens*: tokens are ranked by the
map; deletion removes the top fraction, insertion shows only the top fraction over a fully removed
clip; the explained class's probability along the way is a curve whose area is the score (deletion:
lower is better, insertion: higher).  A random ranking of the same clip is the reference.

A token is the pixel block it sits on in the crop (nearest upsampling of the grid).  Three removals:

* ``road``: noisy linear imputation from the remaining pixels (``imputation``; Rong et al. 2022), which
  stays near the data, so the model reacts to the evidence that left rather than to the removal;
* ``blur``: a strongly blurred copy of the frame; ``mean``: the frame's mean colour.  Both are easy to
  read but not neutral: a model may take a blurred face for a blend.

Whatever the removal, the judge first measures its *whole-clip effect* on each clip's explained class
(the probability with every token removed, minus the clip's), and judges a class with a removal only
where that effect lowers the class's probability (``criteria``): a removal that adds evidence for the
class cannot show that a map found the evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...attribution.base import class_probability
from .imputation import linear_imputation
from .settings import TOKEN_REMOVALS

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
            out.append(class_probability(model, logits, index[start:start + batch].to(logits.device))[1])
    return torch.cat(out)


def frame_mix_probability(model: nn.Module, frames: torch.Tensor, picks: torch.Tensor, index: int,
                          batch: int = 16) -> torch.Tensor:
    """Probability of class column ``index`` for clips assembled from a pool of ``frames`` (P, 3, H, W):
    clip v shows ``frames[picks[v, t]]`` at time t (``picks`` (V, T) indices).

    The same as ``target_probability`` on the assembled clips, but each pooled frame goes through the
    Xception entry flow once, however many clips show it: the frame removals of the temporal test
    (C(T, k) + 1 clips of one clip's frames and their replacements) cost about ``2 T`` frame embeddings
    instead of ``T (C(T, k) + 1)``.  A model without ``frame_tokens`` gets the assembled clips.
    """
    picks = picks.to(frames.device).long()
    if not (hasattr(model, "frame_tokens") and hasattr(model, "token_grid")):
        return target_probability(model, frames[picks], index, batch)
    model.check_clips(frames[picks[:1]])
    with torch.no_grad():
        tokens = torch.cat([model.frame_tokens(frames[s:s + batch]) for s in range(0, frames.shape[0], batch)])
        out = []
        for start in range(0, picks.shape[0], batch):
            grid = model.token_grid(tokens[picks[start:start + batch]])
            logits = model.forward_head(model.forward_blocks(grid))
            column = torch.full((logits.shape[0],), index, dtype=torch.long, device=logits.device)
            out.append(class_probability(model, logits, column)[1])
    return torch.cat(out)


def blurred(clip: torch.Tensor) -> torch.Tensor:
    """(T, 3, H, W) -> the same clip under a Gaussian blur of sigma ``BLUR_SIGMA_FRACTION`` of the side."""
    from torchvision.transforms.functional import gaussian_blur

    sigma = max(clip.shape[-1] * BLUR_SIGMA_FRACTION, 0.5)
    size = int(2 * round(3 * sigma) + 1)
    return gaussian_blur(clip, [size, size], [sigma, sigma])


def removed_clip(clip: torch.Tensor, removal: str) -> torch.Tensor:
    """The clip (T, 3, H, W) with every token removed: ``blur``, ``mean`` (per frame) or ``road``
    (with nothing left to impute from, each frame's mean colour plus the imputation's noise)."""
    if removal == "blur":
        return blurred(clip)
    if removal == "mean":
        return clip.mean(dim=(-1, -2), keepdim=True).expand_as(clip).clone()
    if removal == "road":
        everything = torch.ones(clip.shape[0], 1, *clip.shape[-2:], dtype=torch.bool, device=clip.device)
        return linear_imputation(clip, everything, generator=torch.Generator().manual_seed(0))
    raise ValueError(f"unknown removal {removal!r}; choose one of {', '.join(TOKEN_REMOVALS)}")


def remove_tokens(clip: torch.Tensor, removed: torch.Tensor, removal: str,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Copies of ``clip`` (T, 3, H, W) with the tokens where ``removed`` (V, T, g, g) is True removed:
    (V, T, 3, H, W)."""
    v, t = removed.shape[:2]
    pixels = F.interpolate(removed.float(), size=clip.shape[-2:], mode="nearest").to(clip.device)
    if removal == "road":
        frames = clip[None].expand(v, -1, -1, -1, -1).reshape(v * t, *clip.shape[1:])
        filled = linear_imputation(frames, pixels.reshape(v * t, 1, *clip.shape[-2:]) > 0, generator=generator)
        return filled.reshape(v, t, *clip.shape[1:])
    gone = removed_clip(clip, removal)
    weight = pixels[:, :, None].to(clip.dtype)
    return clip[None] * (1 - weight) + gone[None] * weight


def token_ranking(spatial: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """(T, g, g) map -> token indices, most relevant first.  Exact ties (a constant map) are broken at
    random by noise far below the map's own scale."""
    flat = spatial.reshape(-1).double()
    span = float(flat.max() - flat.min()) if flat.numel() else 0.0
    scale = span if span > 0 else max(float(flat.abs().max()), 1e-300)
    noise = torch.rand(flat.shape, generator=generator, dtype=torch.float64) * 1e-9 * scale
    return torch.argsort(flat + noise, descending=True)


def token_masks(order: torch.Tensor, shape: tuple[int, int, int], fractions: Sequence[float]) -> torch.Tensor:
    """(len(fractions), T, g, g) booleans, True where the top ``fraction`` of ``order`` lies."""
    count = order.numel()
    ranks = torch.empty(count, dtype=torch.long)
    ranks[order.cpu()] = torch.arange(count)
    cuts = torch.tensor([round(count * f) for f in fractions])
    return (ranks[None, :] < cuts[:, None]).reshape(len(fractions), *shape)


def deletion_insertion(model: nn.Module, clip: torch.Tensor, index: int, order: torch.Tensor,
                       grid_shape: tuple[int, int, int], settings: CurveSettings = CurveSettings(),
                       removal: str = "road", ends: tuple[float, float] | None = None,
                       generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion curves (each ``steps + 1`` probabilities) of one clip (T, 3, H, W).

    ``ends`` = (probability of the clip, of the fully removed clip) when already known: both curves
    start or end there, so only the interior points are computed.
    """
    fractions = [k / settings.steps for k in range(settings.steps + 1)]
    if ends is None:
        ends = tuple(target_probability(model, torch.stack([clip, removed_clip(clip, removal)]), index).cpu().tolist())
    inner = fractions[1:-1]
    if inner:
        top = token_masks(order, grid_shape, inner)
        variants = remove_tokens(clip, torch.cat([top, ~top]), removal, generator)
        probs = target_probability(model, variants, index, settings.batch).cpu().numpy()
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
