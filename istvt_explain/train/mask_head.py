"""An auxiliary training target: which tokens of each frame were blended.

Pseudo-fakes come with their blend mask.  Asking the network to also say, token by token, where the
blend is (as Face X-ray and later self-blending work do) gives each clip one target per patch token
instead of one per clip: a model trained from scratch on a CPU finds the blending boundary far sooner,
and its class token then reads evidence that sits where the manipulation is.

The head is a linear layer on the final (normalised) patch tokens, attached for training only: it is
not part of the model, checkpoints never hold it, and inference and explanations do not see it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MaskHead(nn.Module):
    """Patch tokens (B, T, N, D) -> blend logits (B, T, N); reads the model's tokens through a hook."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        dim = model.config.embed_dim
        self.proj = nn.Linear(dim, 1)
        self._tokens: torch.Tensor | None = None
        # The final norm's output is the token grid the class head reads; hook it, not the model's code.
        self._handle = model.norm.register_forward_hook(self._keep)

    def _keep(self, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        self._tokens = output

    def remove(self) -> None:
        self._handle.remove()

    def loss(self, masks: torch.Tensor) -> torch.Tensor:
        """BCE between the last forward pass's token predictions and ``masks`` (B, T, S, S) in [0, 1],
        averaged to the token grid."""
        if self._tokens is None:
            raise RuntimeError("MaskHead.loss needs a forward pass of the model first")
        patches = self._tokens[:, 1:, 1:]  # drop the temporal class row and each frame's class token
        self._tokens = None
        b, t, n, _ = patches.shape
        grid = int(round(n ** 0.5))
        target = F.adaptive_avg_pool2d(masks.reshape(b * t, 1, *masks.shape[-2:]).float(), grid)
        logits = self.proj(patches.float()).reshape(b * t, 1, grid, grid)
        return F.binary_cross_entropy_with_logits(logits, target.to(logits.device))
