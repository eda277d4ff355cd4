"""Model-randomisation sanity checks (Adebayo et al., NeurIPS 2018, "Sanity Checks for Saliency Maps").

A map that stays the same when the model's weights are destroyed explains the input, not the model.
(The other half of sanity, that a map repeats when nothing changes, is ``criteria.Sanity``'s.)
Two protocols, each on a deep copy (the caller's model is untouched):

* cascading: randomise from the head down, one stage at a time (head, then the last transformer
  block, ..., the first block, then the token embedding, then the Xception entry flow), keeping
  earlier stages random, and compare the map after each stage with the original;
* independent: randomise one stage alone, every other stage keeps its trained weights.

Similarity of two maps is the absolute Spearman rank correlation (the sign of a map is a convention,
so an inverted map is as similar as the map itself) and the SSIM of the maps scaled to [0, 1]
(scikit-image).  With every stage randomised, both similarities must be at most ``SANITY_THRESHOLD``;
a map that does not change fails.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

SANITY_THRESHOLD = 0.5  # mean |Spearman| and mean SSIM after full randomisation must not exceed this


def randomisation_stages(model: nn.Module) -> list[tuple[str, list[str]]]:
    """[(stage label, parameter-name prefixes)] from the output down, Adebayo's cascading order."""
    depth = len(model.blocks)
    stages = [("head", ["head.", "norm."])]
    stages += [(f"block {i + 1}", [f"blocks.{i}."]) for i in reversed(range(depth))]
    stages += [("embedding", ["proj.", "pos_embed", "spatial_cls", "temporal_cls"]), ("entry flow", ["backbone."])]
    return stages


def randomize_parameters(model: nn.Module, prefixes: Sequence[str], generator: torch.Generator) -> int:
    """Draw afresh (in place) every parameter whose name starts with one of ``prefixes``; the count.

    Matrices and kernels get N(0, 1 / fan_in), norm scales 1 + N(0, 0.1^2), everything else N(0, 0.02^2);
    BatchNorm statistics of a randomised module are reset (those of the trained weights no longer fit).
    """
    count = 0
    with torch.no_grad():
        for name, param in model.named_parameters():
            if not any(name.startswith(p) for p in prefixes):
                continue
            if param.dim() >= 2 and name.endswith("weight"):
                values = torch.randn(param.shape, generator=generator) / max(param[0].numel(), 1) ** 0.5
            elif name.endswith("weight"):
                values = 1.0 + 0.1 * torch.randn(param.shape, generator=generator)
            else:
                values = 0.02 * torch.randn(param.shape, generator=generator)
            param.copy_(values.to(param.dtype))
            count += 1
        for name, module in model.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and any(
                    f"{name}.".startswith(p) or name.startswith(p) for p in prefixes):
                module.reset_running_stats()
    return count


def randomized_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with every stage randomised (the last step of the cascade)."""
    clone = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    for _, prefixes in randomisation_stages(clone):
        randomize_parameters(clone, prefixes, generator)
    return clone


def abs_rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """|Spearman| of two maps of one shape: 1.0 when both are constant (nothing changed), 0.0 when
    exactly one is (a flat map shares no ranking with a structured one)."""
    x, y = _flat(a), _flat(b)
    flat_x, flat_y = np.ptp(x) == 0, np.ptp(y) == 0
    if flat_x or flat_y:
        return 1.0 if flat_x and flat_y else 0.0
    return float(abs(spearmanr(x, y).statistic))


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman correlation of two maps, sign kept (a map must repeat itself, not its negative): 1.0 when
    both are the same constant, 0.0 when exactly one is constant."""
    x, y = _flat(a), _flat(b)
    flat_x, flat_y = np.ptp(x) == 0, np.ptp(y) == 0
    if flat_x or flat_y:
        return 1.0 if flat_x and flat_y and np.array_equal(x, y) else 0.0
    return float(spearmanr(x, y).statistic)


def map_ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM over frames of two (T, h, w) maps, each scaled to [0, 1] by its own range.

    The window is the largest odd size up to 7 that fits the token grid (scikit-image needs >= 3).
    """
    from skimage.metrics import structural_similarity

    x, y = _unit(a), _unit(b)
    if x.ndim == 2:
        x, y = x[None], y[None]
    side = min(x.shape[-2:])
    window = min(7, side if side % 2 else side - 1)
    if window < 3:
        raise ValueError(f"SSIM needs maps of at least 3 x 3, got {x.shape[-2:]}")
    return float(np.mean([structural_similarity(x[t], y[t], data_range=1.0, win_size=window)
                          for t in range(x.shape[0])]))


@dataclass(frozen=True)
class SanityStep:
    """Similarity of the maps after one randomisation step with the original maps (mean over clips)."""

    stage: str
    spearman: float
    ssim: float


@dataclass(frozen=True)
class SanityResult:
    cascading: list[SanityStep]
    independent: list[SanityStep]
    threshold: float = SANITY_THRESHOLD
    final_maps: torch.Tensor | None = None  # the maps with every stage randomised, per clip

    @property
    def final(self) -> SanityStep:
        return self.cascading[-1]

    @property
    def passed(self) -> bool | None:
        """None when the maps could not be compared (every similarity NaN)."""
        if math.isnan(self.final.spearman) or math.isnan(self.final.ssim):
            return None
        return self.final.spearman <= self.threshold and self.final.ssim <= self.threshold


MapFn = Callable[[nn.Module], torch.Tensor]  # model -> (K, T, h, w) maps of the judged clips


def sanity_check(model: nn.Module, maps_of: MapFn, seed: int = 0, *, original: torch.Tensor | None = None,
                 independent: bool = True, every_stage: bool = True) -> SanityResult:
    """Run the cascading protocol (and the independent one, unless ``independent`` is False) with
    ``maps_of`` (the method's maps of fixed clips for a given model); ``original``: the maps of ``model``
    when the caller has them already.

    ``every_stage`` False: randomise all stages before the one map, so the cascade holds only its last
    step.  The stages draw from the generator in the cascade's order, so that model, and its maps, are
    exactly the full cascade's last ones (what the verdict reads), for one map instead of one per stage.
    """
    original = (maps_of(model) if original is None else original).detach().cpu()
    stages = randomisation_stages(model)
    cascade = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    cascading = []
    for n, (label, prefixes) in enumerate(stages):
        randomize_parameters(cascade, prefixes, generator)
        if every_stage or n == len(stages) - 1:
            final = maps_of(cascade).detach().cpu()
            cascading.append(_compare(label, original, final))
    del cascade
    alone_steps = []
    for i, (label, prefixes) in enumerate(stages if independent else ()):
        alone = copy.deepcopy(model)
        randomize_parameters(alone, prefixes, torch.Generator().manual_seed(seed + 1 + i))
        alone_steps.append(_compare(label, original, maps_of(alone)))
    return SanityResult(cascading, alone_steps, final_maps=final)


def _compare(label: str, original: torch.Tensor, randomised: torch.Tensor) -> SanityStep:
    randomised = randomised.detach().cpu()
    rho = [abs_rank_correlation(original[i], randomised[i]) for i in range(original.shape[0])]
    try:
        ssim = [map_ssim(original[i], randomised[i]) for i in range(original.shape[0])]
    except ValueError:  # a grid under 3 x 3
        ssim = [math.nan]
    return SanityStep(label, float(np.nanmean(rho)), float(np.nanmean(ssim)) if not all(map(math.isnan, ssim))
                      else math.nan)


def _flat(a: torch.Tensor) -> np.ndarray:
    return a.detach().double().cpu().reshape(-1).numpy()


def _unit(a: torch.Tensor) -> np.ndarray:
    x = a.detach().double().cpu().numpy()
    span = np.ptp(x)
    return np.zeros_like(x) if span == 0 else (x - x.min()) / span
