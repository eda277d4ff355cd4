"""The one result object every explanation method returns and every consumer reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

SIGNED_METHODS = frozenset({"integrated_gradients", "occlusion", "feature_ablation", "lrp"})
"""Methods whose maps carry a sign (evidence for and against "fake"): drawn on a diverging map centred
on 0 when their maps hold negative values; every other method's maps are clipped at 0 (docs/display.md)."""
DISPLAY_PERCENTILE = 99.0
"""The robust top of a display scale: one hot token does not wash the rest of a video out."""


@dataclass(frozen=True)
class DisplayScale:
    """How raw map values become display values, for one video (or one clip set): docs/display.md.

    Unsigned: ``display = clip((raw - low) / (high - low), 0, 1)``; signed: ``display = clip(raw / high, -1, 1)``
    with ``low = -high``.  ``low`` and ``high`` are robust percentiles over every frame, so frames of one
    video share one scale and compare; keeping them lets a reader map a display value back to raw.
    """

    signed: bool
    low: float
    high: float
    percentile: float = DISPLAY_PERCENTILE

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Display values of ``raw`` (any shape): [0, 1], or [-1, 1] when signed; NaN stays NaN."""
        raw = np.asarray(raw, dtype=np.float32)
        if self.signed:
            return np.clip(raw / max(self.high, 1e-30), -1.0, 1.0) if self.high > 0 else np.zeros_like(raw)
        span = self.high - self.low
        return np.clip((raw - self.low) / span, 0.0, 1.0) if span > 0 else np.zeros_like(raw)

    def to_dict(self) -> dict[str, Any]:
        return {"signed": self.signed, "low": self.low, "high": self.high, "percentile": self.percentile}


def display_scale(raw: np.ndarray | torch.Tensor, method: str, percentile: float = DISPLAY_PERCENTILE) -> DisplayScale:
    """The shared display scale of a set of raw maps (all the clips of a video, say).

    Why percentiles, not min-max per clip: min-max stretches a clip with no evidence to full colour,
    and one outlier token dims every other frame.  Signed methods keep 0 in the middle.
    """
    values = raw.detach().float().cpu().numpy() if isinstance(raw, torch.Tensor) else np.asarray(raw, np.float64)
    values = values[np.isfinite(values)].astype(np.float64)
    if values.size == 0:
        return DisplayScale(False, 0.0, 0.0, percentile)
    if method in SIGNED_METHODS and values.min() < 0:
        return DisplayScale(True, -float(np.percentile(np.abs(values), percentile)),
                            float(np.percentile(np.abs(values), percentile)), percentile)
    values = values.clip(min=0)
    return DisplayScale(False, float(np.percentile(values, 100.0 - percentile)),
                        float(np.percentile(values, percentile)), percentile)


@dataclass
class Explanation:
    """What the model looked at, where in each frame and in which frames.

    Attributes:
        spatial: (B, T, h, w) token-level map of each frame (h = w = the token grid).
        temporal: (B, T) importance of each frame.
        fake_probability: (B,) sigmoid of the fake logit (softmax of the target class
            for multi-class heads).
        logits: (B,) or (B, C) raw model output.
        method: registry name of the method ("rollout", "relevance", ...).
        target: the class / logit index that was explained (None: the fake logit).
        settings: method options, for reports and figure legends.
        extras: optional method-specific arrays (per-layer maps, convergence deltas...).
    """

    spatial: torch.Tensor
    temporal: torch.Tensor
    fake_probability: torch.Tensor
    logits: torch.Tensor
    method: str
    target: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.spatial.dim() != 4:
            raise ValueError(f"spatial maps must be (B, T, h, w), got {tuple(self.spatial.shape)}")
        if self.temporal.shape != self.spatial.shape[:2]:
            raise ValueError(f"temporal importance must be (B, T) = {tuple(self.spatial.shape[:2])}, "
                             f"got {tuple(self.temporal.shape)}")

    @property
    def batch_size(self) -> int:
        return self.spatial.shape[0]

    @property
    def frames(self) -> int:
        return self.spatial.shape[1]

    def to_pixels(self, height: int, width: int, mode: str = "bilinear") -> torch.Tensor:
        """(B, T, height, width) maps upsampled from the token grid to crop resolution."""
        b, t, h, w = self.spatial.shape
        maps = self.spatial.reshape(b * t, 1, h, w).float()
        kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
        up = F.interpolate(maps, size=(height, width), mode=mode, **kwargs)
        return up.view(b, t, height, width)

    def normalized_spatial(self) -> torch.Tensor:
        """Spatial maps scaled to [0, 1] per clip (for display; keeps the relative frame scale)."""
        s = self.spatial.float()
        flat = s.flatten(1)
        lo = flat.min(dim=1).values.view(-1, 1, 1, 1)
        hi = flat.max(dim=1).values.view(-1, 1, 1, 1)
        return (s - lo) / (hi - lo).clamp_min(1e-12)

    def display_scale(self, percentile: float = DISPLAY_PERCENTILE) -> DisplayScale:
        """The robust scale shared by every clip and frame of this explanation (``display_scale``)."""
        return display_scale(self.spatial, self.method, percentile)

    def display_spatial(self, scale: DisplayScale | None = None) -> np.ndarray:
        """(B, T, h, w) maps on the display scale: [0, 1], or [-1, 1] for signed methods (docs/display.md).

        ``spatial`` keeps the raw values; ``scale`` (default: this explanation's own) lets several
        explanations of one video share a scale.
        """
        return (scale or self.display_scale()).apply(self.spatial.detach().float().cpu().numpy())

    def select(self, index: int) -> Explanation:
        """The explanation of one clip of the batch, still batched (B = 1)."""
        sl = slice(index, index + 1)
        return Explanation(self.spatial[sl], self.temporal[sl], self.fake_probability[sl], self.logits[sl],
                           self.method, self.target, dict(self.settings), dict(self.extras))
