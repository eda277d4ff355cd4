"""Localisation of an explanation against a ground-truth manipulation mask (docs/judging.md).

Used only on correctly classified fakes (a map of a missed fake explains a
"real" decision).  All three measures read the map at crop resolution:

* pointing game: is the map's maximum inside the mask (per frame, averaged);
* mass inside: the share of the map's positive mass that falls in the mask
  (chance level: the mask's area share, reported alongside);
* pixel AUC: the map as a classifier of mask pixels (scikit-learn ROC AUC).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score


def binary_mask(mask: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Soft blend mask (T, H, W) -> boolean, relative to its own peak (blend ratios vary per fake)."""
    peak = mask.max()
    if peak <= 0:
        return torch.zeros_like(mask, dtype=torch.bool)
    return mask >= threshold * peak


def localisation_scores(pixel_map: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Pointing game, mass inside, its chance level and pixel AUC for one clip.

    ``pixel_map`` and ``mask`` are (T, H, W); ``mask`` boolean.
    """
    if pixel_map.shape != mask.shape:
        raise ValueError(f"map {tuple(pixel_map.shape)} and mask {tuple(mask.shape)} differ in shape")
    m = pixel_map.double().cpu()
    inside = mask.cpu()
    frames = [t for t in range(m.shape[0]) if inside[t].any()]
    if not frames:
        raise ValueError("the mask is empty: nothing to localise")
    hits = [bool(inside[t].reshape(-1)[m[t].reshape(-1).argmax()]) for t in frames]
    positive = m.clamp(min=0)
    total = float(positive.sum())
    mass = float(positive[inside].sum()) / total if total > 0 else float("nan")
    labels = inside.reshape(-1).numpy()
    auc = float(roc_auc_score(labels, m.reshape(-1).numpy())) if 0 < labels.mean() < 1 else float("nan")
    return {"pointing_game": float(np.mean(hits)), "mass_inside": mass,
            "mass_chance": float(labels.mean()), "pixel_auc": auc}
