"""Judge every explanation method side by side (docs/judging.md): one row per method.

``judge_explanations(model, clips, masks)`` explains every clip as *fake* with
each method, then measures faithfulness (deletion / insertion AUC against a
shared random ranking, temporal top-k / random-k / bottom-k drops), localisation
against the masks on the correctly classified fakes only, and the
weight-randomisation sanity check.  ``judging_report`` writes the table as CSV
and as a figure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..explain import available_methods, explain, get_method
from .explanation_faithfulness import (
    CurveSettings,
    curve_auc,
    deletion_insertion,
    temporal_faithfulness,
    token_ranking,
)
from .explanation_localisation import binary_mask, localisation_scores
from .explanation_sanity import randomized_copy, rank_correlation

FAKE = 1  # class column of "fake" in explain's class scores



def judging_options(config) -> dict[str, dict[str, Any]]:
    """Cheaper settings for the costly baselines, so a judging run stays minutes on a CPU:
    16 IG steps, and occlusion boxes of half the crop (2 frames) moved by a quarter."""
    size = config.image_size
    return {"integrated_gradients": {"n_steps": 16},
            "occlusion": {"patch": max(1, size // 2), "stride": max(1, size // 4), "patch_frames": 2}}

COLUMNS = (
    "method", "label", "clips", "localised", "deletion_auc", "random_deletion_auc", "insertion_auc",
    "random_insertion_auc", "drop_top_k", "drop_random_k", "drop_bottom_k", "pointing_game", "mass_inside",
    "mass_chance", "pixel_auc", "sanity_rank_corr", "seconds_per_clip",
)


@dataclass(frozen=True)
class JudgingSettings:
    methods: tuple[str, ...] = ()  # empty: every registered method
    steps: int = 8  # deletion / insertion resolution
    top_k: int = 2  # frames dropped in the temporal test
    seed: int = 0
    sanity: bool = True
    # per method, on top of ``judging_options(model.config)``
    method_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class JudgingTable:
    """Rows (dicts keyed by ``COLUMNS``) plus what produced them."""

    rows: list[dict[str, Any]]
    settings: JudgingSettings
    model_name: str = ""

    def row(self, method: str) -> dict[str, Any]:
        for r in self.rows:
            if r["method"] == method:
                return r
        raise KeyError(method)


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def judge_explanations(model: nn.Module, clips: torch.Tensor, masks: torch.Tensor | None = None,
                       settings: JudgingSettings = JudgingSettings(), progress=None) -> JudgingTable:
    """Score every method on ``clips`` (N, T, 3, S, S) fakes with optional ``masks`` (N, T, S, S)."""
    methods = settings.methods or tuple(available_methods())
    for name in methods:
        get_method(name)  # unknown names fail before any work
    if masks is not None and masks.shape != (clips.shape[0], clips.shape[1], clips.shape[3], clips.shape[4]):
        raise ValueError(f"masks must be (N, T, H, W) = {(clips.shape[0], clips.shape[1], *clips.shape[3:])}, "
                         f"got {tuple(masks.shape)}")
    device = next(model.parameters()).device
    clips = clips.to(device)
    curve = CurveSettings(steps=settings.steps)
    size = clips.shape[-1]
    random_curves = _random_curves(model, clips, curve, settings.seed)
    randomized = randomized_copy(model, settings.seed + 1).to(device) if settings.sanity else None
    rows = []
    for name in methods:
        if progress:
            progress(name)
        options = {**judging_options(model.config).get(name, {}), **settings.method_options.get(name, {})}
        start = time.perf_counter()
        exp = explain(model, clips, method=name, target=FAKE, **options)
        seconds = (time.perf_counter() - start) / clips.shape[0]
        gen = torch.Generator().manual_seed(settings.seed)
        grid_shape = tuple(exp.spatial.shape[1:])
        dels, inss, temporal, local = [], [], [], []
        pixels = exp.to_pixels(size, size)
        for i in range(clips.shape[0]):
            d, ins = deletion_insertion(model, clips[i], FAKE, token_ranking(exp.spatial[i].cpu(), gen),
                                        grid_shape, curve)
            dels.append(curve_auc(d))
            inss.append(curve_auc(ins))
            temporal.append(temporal_faithfulness(model, clips[i], FAKE, exp.temporal[i], settings.top_k, gen))
            if masks is not None and exp.fake_probability[i] > 0.5:
                mask = binary_mask(masks[i])
                if mask.any():
                    local.append(localisation_scores(pixels[i], mask))
        sanity = float("nan")
        if randomized is not None:
            rand_exp = explain(randomized, clips, method=name, target=FAKE, **options)
            sanity = _mean([rank_correlation(exp.spatial[i], rand_exp.spatial[i]) for i in range(clips.shape[0])])
        row = {"method": name, "label": exp.settings.get("label", name), "clips": clips.shape[0],
               "localised": len(local), "deletion_auc": _mean(dels),
               "random_deletion_auc": _mean([curve_auc(c[0]) for c in random_curves]),
               "insertion_auc": _mean(inss), "random_insertion_auc": _mean([curve_auc(c[1]) for c in random_curves]),
               "sanity_rank_corr": sanity, "seconds_per_clip": seconds}
        for key in ("drop_top_k", "drop_random_k", "drop_bottom_k"):
            row[key] = _mean([t[key] for t in temporal])
        for key in ("pointing_game", "mass_inside", "mass_chance", "pixel_auc"):
            row[key] = _mean([s[key] for s in local])
        rows.append({c: row[c] for c in COLUMNS})
    return JudgingTable(rows, settings, getattr(getattr(model, "config", None), "name", ""))


def _random_curves(model: nn.Module, clips: torch.Tensor, curve: CurveSettings, seed: int
                   ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Deletion / insertion curves of one random token ranking per clip, shared by every method."""
    gen = torch.Generator().manual_seed(seed + 7)
    c = model.config
    shape = (c.frames, c.grid, c.grid)
    out = []
    for i in range(clips.shape[0]):
        order = torch.randperm(c.frames * c.grid * c.grid, generator=gen)
        out.append(deletion_insertion(model, clips[i], FAKE, order, shape, curve))
    return out
