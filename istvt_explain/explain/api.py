"""``explain(model, clips, method=...)``: one entry point over the method registry."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Target
from .explanation import Explanation
from .registry import get_method


def explain(model: nn.Module, clips: torch.Tensor, method: str = "relevance", target: Target = None,
            **options: Any) -> Explanation:
    """Explain why ``model`` scores ``clips`` (B, T, 3, H, W) as it does.

    Args:
        method: a registered name (``available_methods()``): "attention", "rollout",
            "relevance", "lrp", "spatial-only", "temporal-only", "integrated_gradients",
            "saliency", "occlusion", "feature_ablation".
        target: the class to explain: None (the fake class of a one-logit head, the
            predicted class otherwise), "fake", "real", a class index, or one per clip.
        options: the method's settings (e.g. ``fusion="max"`` for rollout, ``n_steps``
            for Integrated Gradients); unknown ones raise ValueError.

    The input is never modified; work runs on the model's device, in eval mode.
    """
    return get_method(method)(model, **options).attribute(clips, target=target)
