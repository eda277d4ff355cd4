"""Xception's entry flow (timm ``legacy_xception`` up to ``block3``) and its weight loading."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import timm
import torch
from torch import nn

ENTRY_FLOW_MODULES = ("conv1", "bn1", "act1", "conv2", "bn2", "act2", "block1", "block2", "block3")
_TRUNK_PREFIXES = tuple(f"{name}." for name in ENTRY_FLOW_MODULES)


class XceptionEntryFlow(nn.Module):
    """conv1 .. block3 of Xception: (N, 3, H, W) -> (N, 728, h, w), 19 x 19 for 300 x 300 crops.

    Built from timm's own modules so that timm's and the FaceForensics++
    Xception weights load by name.  timm's ``features_only`` stride-16 level
    is deliberately not used: it sits after the middle flow.
    """

    def __init__(self) -> None:
        super().__init__()
        full = timm.create_model("legacy_xception", pretrained=False, num_classes=0)
        for name in ENTRY_FLOW_MODULES:
            self.add_module(name, getattr(full, name))
        del full

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in ENTRY_FLOW_MODULES:
            x = getattr(self, name)(x)
        return x


def filter_xception_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a timm or FaceForensics++ Xception state dict onto the entry flow.

    Handles the usual differences: ``module.``/``model.`` prefixes from
    wrappers, 2-D pointwise weights in the original ``xception-b5690688.pth``
    (which need the trailing 1 x 1), and everything past ``block3``, dropped.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in ("module.", "model.", "backbone.", "base_model."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        if not key.startswith(_TRUNK_PREFIXES):
            continue
        if key.endswith("pointwise.weight") and value.dim() == 2:
            value = value[:, :, None, None]
        out[key] = value
    return out


def load_xception_weights(backbone: XceptionEntryFlow, path: str | Path) -> None:
    """Load ImageNet Xception weights from a local file (never a download)."""
    from .weights import CheckpointError, read_state_dict

    state = filter_xception_state_dict(read_state_dict(path))
    expected = backbone.state_dict()
    missing = sorted(k for k in expected if k not in state and not k.endswith("num_batches_tracked"))
    if missing:
        raise CheckpointError(
            f"{path}: not an Xception checkpoint ({len(missing)} entry-flow weights missing, e.g. {missing[0]})"
        )
    for key, value in state.items():
        if key in expected and expected[key].shape != value.shape:
            raise CheckpointError(f"{path}: weight {key} has shape {tuple(value.shape)}, "
                             f"expected {tuple(expected[key].shape)}")
    backbone.load_state_dict(state, strict=False)
