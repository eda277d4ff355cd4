"""Localisation of an explanation against a ground-truth manipulation mask (docs/judging.md).

Every measure reads the map at crop resolution (bilinear upsampling of the token grid), per clip:

* pointing game (Zhang et al. 2018): is the map's maximum inside the mask?  Ties are handled: the
  hit of a frame is the share of its maximal pixels that fall inside the mask, and a frame whose
  maximum covers more than half of it (a flat map) is "n/a", neither a hit nor a miss.  Chance
  level is the mask's area share;
* energy-based pointing game (Wang et al. 2020, Score-CAM): the share of the map's positive mass
  inside the mask's bounding box (chance: the box's area share);
* mass inside: the share of the positive mass inside the mask itself (chance: its area share);
* pixel AUC: the map as a classifier of mask pixels (scikit-learn ROC AUC; chance 0.5).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

FLAT_SHARE = 0.5  # a maximum that covers more of a frame than this is no pointing at all
TIE_TOLERANCE = 1e-6  # relative to the map's range: values this close to the maximum tie with it


def binary_mask(mask: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Soft blend mask (T, H, W) -> boolean, relative to its own peak (blend ratios vary per fake)."""
    peak = mask.max()
    if peak <= 0:
        return torch.zeros_like(mask, dtype=torch.bool)
    return mask >= threshold * peak


def pointing_hit(frame_map: np.ndarray, inside: np.ndarray) -> float:
    """Share of the maximal pixels that lie in the mask; NaN for a flat map (see the module doc)."""
    span = float(frame_map.max() - frame_map.min())
    top = frame_map >= frame_map.max() - TIE_TOLERANCE * span if span > 0 else np.ones_like(inside)
    if top.mean() > FLAT_SHARE:
        return math.nan
    return float(inside[top].mean())


def _bounding_box(inside: np.ndarray) -> np.ndarray:
    box = np.zeros_like(inside)
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    box[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = True
    return box


def localisation_scores(pixel_map: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Every measure (and its chance level) for one clip; ``pixel_map`` and ``mask`` (T, H, W), mask boolean.

    Only frames whose mask is not empty count; NaN marks a measure that cannot be read (a flat map).
    """
    if pixel_map.shape != mask.shape:
        raise ValueError(f"map {tuple(pixel_map.shape)} and mask {tuple(mask.shape)} differ in shape")
    m = pixel_map.detach().double().cpu().numpy()
    inside = mask.cpu().numpy().astype(bool)
    frames = [t for t in range(m.shape[0]) if inside[t].any()]
    if not frames:
        raise ValueError("the mask is empty: nothing to localise")
    m, inside = m[frames], inside[frames]
    hits = [pointing_hit(m[i], inside[i]) for i in range(len(frames))]
    boxes = np.stack([_bounding_box(inside[i]) for i in range(len(frames))])
    positive = np.clip(m, 0, None)
    total = float(positive.sum())
    labels = inside.reshape(-1)
    flat = np.ptp(m) == 0
    auc = math.nan if flat or not 0 < labels.mean() < 1 else float(roc_auc_score(labels, m.reshape(-1)))
    finite_hits = [h for h in hits if not math.isnan(h)]
    return {
        "pointing_game": float(np.mean(finite_hits)) if finite_hits else math.nan,
        "pointing_chance": float(labels.mean()),
        "energy_pointing": float(positive[boxes].sum()) / total if total > 0 else math.nan,
        "energy_chance": float(boxes.mean()),
        "mass_inside": float(positive[inside].sum()) / total if total > 0 else math.nan,
        "mass_chance": float(labels.mean()),
        "pixel_auc": auc,
    }
