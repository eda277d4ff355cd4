"""The one result object every explanation method returns and every consumer reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .registry import method_facts

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
    and one outlier token dims every other frame.  Signed methods (``MethodFacts.signed``) keep 0 in the
    middle when their maps hold negative values; every other method's maps are clipped at 0.
    """
    values = raw.detach().float().cpu().numpy() if isinstance(raw, torch.Tensor) else np.asarray(raw, np.float64)
    values = values[np.isfinite(values)].astype(np.float64)
    if values.size == 0:
        return DisplayScale(False, 0.0, 0.0, percentile)
    if method_facts(method).signed and values.min() < 0:
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

    @classmethod
    def cat(cls, parts: Sequence[Explanation]) -> Explanation:
        """One explanation of every clip of ``parts`` (explanations by the same method), in order.

        Tensors are detached, float32 and on the CPU: the batches of a long video or a data set are
        kept, not the graphs and devices they were made on.  An ``extras`` entry is kept when every
        part has it as a tensor with one row per clip (it is concatenated) or as the same plain value
        (a list of names); other extras are dropped.
        """
        if not parts:
            raise ValueError("Explanation.cat needs at least one explanation")
        first = parts[0]
        if any(p.method != first.method for p in parts):
            raise ValueError(f"cannot join explanations of different methods: {sorted({p.method for p in parts})}")

        def joined(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
            return torch.cat([t.detach().float().cpu() for t in tensors])

        extras = {}
        for key, value in first.extras.items():
            if all(isinstance(p.extras.get(key), torch.Tensor) and p.extras[key].dim() > 0
                   and len(p.extras[key]) == p.batch_size for p in parts):
                extras[key] = joined([p.extras[key] for p in parts])
            elif not isinstance(value, torch.Tensor) and all(p.extras.get(key) == value for p in parts):
                extras[key] = value  # a setting or a list of names, the same for every part
        return cls(joined([p.spatial for p in parts]), joined([p.temporal for p in parts]),
                   joined([p.fake_probability for p in parts]), joined([p.logits for p in parts]),
                   first.method, first.target if all(p.target == first.target for p in parts) else None,
                   dict(first.settings), extras)

    @property
    def batch_size(self) -> int:
        return self.spatial.shape[0]

    @property
    def signed(self) -> bool:
        """Whether the method's maps carry a sign (``MethodFacts.signed``)."""
        return method_facts(self.method).signed

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

    def clips(self, start: int, stop: int) -> Explanation:
        """The explanation of clips ``start`` to ``stop - 1`` of the batch (per-clip extras sliced too)."""
        sl = slice(start, stop)
        extras = {k: v[sl] if isinstance(v, torch.Tensor) and v.dim() > 0 and len(v) == self.batch_size else v
                  for k, v in self.extras.items()}
        return Explanation(self.spatial[sl], self.temporal[sl], self.fake_probability[sl], self.logits[sl],
                           self.method, self.target, dict(self.settings), extras)

    def select(self, index: int) -> Explanation:
        """The explanation of one clip of the batch, still batched (B = 1)."""
        return self.clips(index, index + 1)
