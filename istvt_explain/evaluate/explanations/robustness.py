"""Robustness of an explanation to perturbations that leave the answer alone (docs/judging.md).

Max-sensitivity (Yeh et al., NeurIPS 2019): over ``draws`` perturbations ``delta`` drawn uniformly from
the L-infinity ball of ``radius`` (in the model's normalised units: 0.02 is 2.5 grey levels), the largest
change of the map relative to the map, ``max ||E(x + delta) - E(x)|| / ||E(x)||`` (Frobenius norms over
the clip's token maps).  Perturbations that change the predicted class are left out: a map should move
when the answer moves.  The local Lipschitz estimate (Alvarez-Melis & Jaakkola 2018) is the same maximum
of ``||E(x + delta) - E(x)|| / ||delta||`` and is reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .settings import ROBUSTNESS_RADIUS as RADIUS

DRAWS = 4
SENSITIVITY_LIMIT = 0.5  # a map that moves by half its own size under a perturbation this small is no map

MapsFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]  # clips -> (maps (B, T, g, g), fake prob (B,))


def max_sensitivity(maps_of: MapsFn, clips: torch.Tensor, *, radius: float = RADIUS, draws: int = DRAWS,
                    generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(max-sensitivity, local Lipschitz estimate) per clip of ``clips`` (B, T, 3, H, W); NaN for a clip
    every perturbation of which flipped the prediction."""
    maps, probability = maps_of(clips)
    base = maps.flatten(1).double().cpu()
    predicted = probability.cpu() >= 0.5
    sensitivity = torch.full((clips.shape[0],), float("nan"), dtype=torch.float64)
    lipschitz = sensitivity.clone()
    for _ in range(draws):
        delta = (torch.rand(clips.shape, generator=generator, dtype=torch.float64) * 2 - 1) * radius
        moved, moved_probability = maps_of(clips + delta.to(clips.device, clips.dtype))
        same = (moved_probability.cpu() >= 0.5) == predicted
        change = (moved.flatten(1).double().cpu() - base).norm(dim=1)
        relative = change / base.norm(dim=1).clamp_min(1e-300)
        per_input = change / delta.flatten(1).norm(dim=1)
        sensitivity = torch.where(same, torch.fmax(sensitivity, relative), sensitivity)
        lipschitz = torch.where(same, torch.fmax(lipschitz, per_input), lipschitz)
    return sensitivity.numpy(), lipschitz.numpy()
