"""Captum baselines on the same interface: Integrated Gradients, Saliency, Occlusion over
space-time patches, FeatureAblation per frame.

Captum sees the model through ``_ClassScores`` (one column per class, see
``base.class_scores``); the model itself is never patched.  Pixel
attributions (B, T, 3, H, W) are summed over colour channels and
average-pooled to the token grid, so every method returns the same
token-level ``Explanation``; the pixel maps stay in ``extras["pixels"]``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from captum.attr import FeatureAblation, IntegratedGradients, Occlusion, Saliency
from torch import nn

from .base import Attribution, MethodResult, Target, class_scores, raw_logits
from .catalogue import BUILT_IN
from .registry import register_method


class _ClassScores(nn.Module):
    """model(clips) -> (B, C) class scores of the raw (uncalibrated) logits, the forward Captum calls."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return class_scores(self.model, raw_logits(self.model, self.model(clips)))


class _CaptumMethod(Attribution):
    """Shared plumbing: target from a no-grad forward, Captum call, pooling to the token grid."""

    def _attribute(self, clips: torch.Tensor, target: Target) -> MethodResult:
        with torch.no_grad():
            logits = self.model(clips)
        index = self._index(target, logits)
        forward = _ClassScores(self.model)
        pixels, extras = self._captum(forward, clips, index)
        per_pixel = pixels.sum(dim=2)  # (B, T, H, W)
        b, t, h, w = per_pixel.shape
        g = self.model.config.grid
        spatial = F.adaptive_avg_pool2d(per_pixel.reshape(b * t, 1, h, w), g).reshape(b, t, g, g)
        extras.setdefault("pixels", per_pixel.detach())
        return MethodResult(spatial, per_pixel.flatten(2).sum(dim=-1), logits, index, extras)

    def _captum(self, forward: nn.Module, clips: torch.Tensor, index: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, Any]]:
        raise NotImplementedError


def _positive_int(name: str, value: int) -> int:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


@register_method
class IntegratedGradientsMethod(_CaptumMethod):
    """Integrated Gradients (Sundararajan et al. 2017) from a grey clip (0 after normalisation).

    ``extras["delta"]`` is Captum's convergence delta (completeness error) per clip.
    """

    facts = BUILT_IN["integrated-gradients"]

    def __init__(self, model, *, n_steps: int = 50, internal_batch_size: int | None = 8,
                 **options: Any) -> None:
        super().__init__(model, **options)
        self.settings = {"n_steps": _positive_int("n_steps", n_steps),
                         "internal_batch_size": internal_batch_size}

    def _captum(self, forward, clips, index):
        ig = IntegratedGradients(forward)
        attr, delta = ig.attribute(clips, baselines=torch.zeros_like(clips), target=index,
                                   return_convergence_delta=True, **self.settings)
        return attr, {"delta": delta.detach()}


@register_method
class SaliencyMethod(_CaptumMethod):
    """Saliency (Simonyan et al. 2014): |d score / d pixel|, Captum's default absolute value."""

    facts = BUILT_IN["saliency"]

    def __init__(self, model, *, abs: bool = True, **options: Any) -> None:  # noqa: A002 (Captum's name)
        super().__init__(model, **options)
        self.settings = {"abs": bool(abs)}

    def _captum(self, forward, clips, index):
        clips.requires_grad_(True)  # our private copy; spares Captum's warning
        return Saliency(forward).attribute(clips, target=index, abs=self.settings["abs"]), {}


@register_method
class OcclusionMethod(_CaptumMethod):
    """Occlusion (Zeiler & Fergus 2014) with space-time patches: a grey box of
    ``patch_frames`` frames x ``patch`` x ``patch`` pixels slid with ``stride``
    pixels (one frame in time).  Defaults: a quarter of the crop, half-overlapping."""

    facts = BUILT_IN["occlusion"]

    def __init__(self, model, *, patch: int | None = None, stride: int | None = None, patch_frames: int = 2,
                 perturbations_per_eval: int = 8, **options: Any) -> None:
        super().__init__(model, **options)
        size = model.config.image_size
        patch = patch if patch is not None else max(1, size // 4)
        stride = stride if stride is not None else max(1, patch // 2)
        if not 1 <= patch_frames <= model.config.frames:
            raise ValueError(f"patch_frames must be in 1..{model.config.frames}, got {patch_frames}")
        self.settings = {"patch": _positive_int("patch", patch), "stride": _positive_int("stride", stride),
                         "patch_frames": patch_frames,
                         "perturbations_per_eval": _positive_int("perturbations_per_eval",
                                                                 perturbations_per_eval)}

    def _captum(self, forward, clips, index):
        s = self.settings
        attr = Occlusion(forward).attribute(
            clips, sliding_window_shapes=(s["patch_frames"], 3, s["patch"], s["patch"]),
            strides=(1, 3, s["stride"], s["stride"]), baselines=0.0, target=index,
            perturbations_per_eval=s["perturbations_per_eval"])
        return attr, {}


@register_method
class FrameAblationMethod(_CaptumMethod):
    """FeatureAblation with one feature per frame: each frame replaced by a grey frame in turn.

    The drop of the class score is the frame's importance; the spatial map of
    a frame is constant (per-frame ablation has no spatial resolution).
    """

    facts = BUILT_IN["frame-ablation"]

    def __init__(self, model, *, perturbations_per_eval: int = 2, **options: Any) -> None:
        super().__init__(model, **options)
        self.settings = {"perturbations_per_eval": _positive_int("perturbations_per_eval",
                                                                 perturbations_per_eval)}

    def _captum(self, forward, clips, index):
        t = clips.shape[1]
        mask = torch.arange(t, device=clips.device).view(1, t, 1, 1, 1).expand_as(clips)
        attr = FeatureAblation(forward).attribute(clips, baselines=0.0, target=index, feature_mask=mask,
                                                  **self.settings)
        # Every pixel of a frame carries the frame's drop; divide so the per-frame sum is that drop.
        per_pixel_count = clips.shape[2] * clips.shape[3] * clips.shape[4]
        return attr / per_pixel_count, {}
