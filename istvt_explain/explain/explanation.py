"""The one result object every explanation method returns and every consumer reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F


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

    def select(self, index: int) -> Explanation:
        """The explanation of one clip of the batch, still batched (B = 1)."""
        sl = slice(index, index + 1)
        return Explanation(self.spatial[sl], self.temporal[sl], self.fake_probability[sl], self.logits[sl],
                           self.method, self.target, dict(self.settings), dict(self.extras))
