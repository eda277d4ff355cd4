"""``explain(model, clips, method=...)``: one entry point over the method registry."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .base import Target
from .catalogue import DEFAULT_METHOD
from .explanation import Explanation
from .registry import get_method


def explain(model: nn.Module, clips: torch.Tensor, method: str = DEFAULT_METHOD, target: Target = None,
            **options: Any) -> Explanation:
    """Explain why ``model`` scores ``clips`` (B, T, 3, H, W) as it does.

    Args:
        method: a method's name (``available_methods()``; the built-ins are listed with their facts
            in ``catalogue.BUILT_IN``): "relevance", "rollout", "attention", "spatial-only",
            "temporal-only", "lrp", "saliency", "integrated-gradients", "occlusion", "frame-ablation".
        target: the class to explain: None (the fake class of a one-logit head, the
            predicted class otherwise), "fake", "real", a class index, or one per clip.
        options: the method's settings (e.g. ``fusion="max"`` for rollout, ``n_steps``
            for Integrated Gradients); unknown ones raise ValueError.

    The input is never modified; work runs on the model's device, in eval mode.
    """
    return get_method(method)(model, **options).attribute(clips, target=target)
