"""The raw attention of every layer and head, read as maps a person can look at.

Explanation methods fuse heads and layers; researchers also want to see the
heads one by one.  Per layer l and head h we keep what the clip's class token
(0, 0) reads in that layer, spatial attention after temporal attention:

* spatial: patch s of frame t weighs ``As[l][0][0, s] * At[l][s][0, t]`` (the class
  row's spatial attention to position s, times the share of frame t that position's
  temporal class query took), a (g, g) map per frame;
* temporal: the frame's patch mass of that map, a (T,) curve.

The spatial class rows of frames t >= 1 are not read: in the last layer the logit
never uses them (explain.attention_methods.RawAttention reads the same paths).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..attribution.attention_methods import last_block_paths
from ..attribution.capture import AttentionCapture


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
            # per head: (N+1, T+1, T+1) temporal and (T+1, N+1, N+1) spatial, batch of one per head
            paths = last_block_paths(ta.transpose(0, 1), sa.transpose(0, 1))  # (H, T+1, N+1)
            patches = paths[:, 1:, 1:]  # (H, T, N)
            grid = int(round(patches.shape[-1] ** 0.5))
            spatial.append(patches.reshape(patches.shape[0], patches.shape[1], grid, grid))
            temporal.append(patches.sum(dim=-1))  # (H, T)
    prob = torch.sigmoid(logits) if logits.dim() == 1 else torch.softmax(logits, -1)[:, 1]
    return HeadAttention(torch.stack(spatial).float().cpu().numpy(), torch.stack(temporal).float().cpu().numpy(),
                         float(prob[0]))
