"""The raw attention of every layer and head, read as maps a person can look at.

Explanation methods fuse heads and layers; researchers also want to see the
heads one by one.  Per layer l and head h we keep what the class tokens attend to:

* spatial: the spatial class token of frame t over that frame's patches,
  ``As[l][t+1][0, 1:]``, a (g, g) map per frame;
* temporal: the clip class token over the frames at the spatial class column,
  ``At[l][0][0, 1:]``, a (T,) curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..explain.capture import AttentionCapture


@dataclass(frozen=True)
class HeadAttention:
    """Class-token attention of one clip.

    Attributes:
        spatial: float32 (L, H, T, g, g): layer, head, frame, token grid.
        temporal: float32 (L, H, T): layer, head, frame.
        fake_probability: the model's answer on the clip (for titles).
    """

    spatial: np.ndarray
    temporal: np.ndarray
    fake_probability: float

    @property
    def layers(self) -> int:
        return self.spatial.shape[0]

    @property
    def heads(self) -> int:
        return self.spatial.shape[1]

    @property
    def frames(self) -> int:
        return self.spatial.shape[2]

    def frame_maps(self, frame: int) -> np.ndarray:
        """(L, H, g, g) spatial maps of one frame (the layout of ``render.figures.attention_figure``)."""
        if not 0 <= frame < self.frames:
            raise ValueError(f"frame {frame} out of range 0..{self.frames - 1}")
        return self.spatial[:, :, frame]


@torch.no_grad()
def head_attention(model: torch.nn.Module, clip: torch.Tensor) -> HeadAttention:
    """Capture every attention map of one normalised clip (1, T, 3, S, S) and keep the class-token rows."""
    if clip.dim() != 5 or clip.shape[0] != 1:
        raise ValueError(f"head_attention reads one clip (1, T, 3, S, S), got {tuple(clip.shape)}")
    with AttentionCapture(model) as capture:
        logits = model(clip)
        spatial, temporal = [], []
        for layer in capture.layers_captured():
            sa = capture.attention(layer, "spatial")[0]  # (T+1, H, N+1, N+1)
            ta = capture.attention(layer, "temporal")[0]  # (N+1, H, T+1, T+1)
            rows = sa[1:, :, 0, 1:]  # (T, H, N): each frame's class token over its patches
            grid = int(round(rows.shape[-1] ** 0.5))
            spatial.append(rows.transpose(0, 1).reshape(rows.shape[1], rows.shape[0], grid, grid))
            temporal.append(ta[0, :, 0, 1:])  # (H, T)
    prob = torch.sigmoid(logits) if logits.dim() == 1 else torch.softmax(logits, -1)[:, 1]
    return HeadAttention(torch.stack(spatial).float().cpu().numpy(), torch.stack(temporal).float().cpu().numpy(),
                         float(prob[0]))
