"""Weight-randomisation sanity check (Adebayo et al. 2018, "Sanity Checks for Saliency Maps").

A map that survives randomising the model's weights explains the input, not
the model.  We re-initialise every parameter of a copy of the model (the
caller's model is untouched) and report the Spearman rank correlation between
the maps before and after: lower means the method passes.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn


def randomized_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with every parameter drawn afresh (same shapes, same mode)."""
    clone = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in clone.named_parameters():
            if param.dim() >= 2:
                fan_in = param[0].numel()
                values = torch.randn(param.shape, generator=generator) / max(fan_in, 1) ** 0.5
            elif name.endswith("weight"):  # norm scales
                values = 1.0 + 0.1 * torch.randn(param.shape, generator=generator)
            else:
                values = 0.02 * torch.randn(param.shape, generator=generator)
            param.copy_(values.to(param.dtype))
        for module in clone.modules():  # BatchNorm statistics that match no longer exist
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
    return clone


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman correlation of two maps of the same shape (NaN when either is constant)."""
    x, y = a.detach().double().cpu().reshape(-1).numpy(), b.detach().double().cpu().reshape(-1).numpy()
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)
