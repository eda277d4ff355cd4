"""Weights that ship inside the package, named as timm names its weights: ``preset.tag``.

Only ``tiny.demo`` exists: the tiny preset trained on pseudo-fakes of a few dozen people, enough to
run the whole pipeline and not a forensic tool (README, docs/demo_weights.md).  Weights of one's
own load from a path (``load_model``); nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .istvt import ISTVT, load_model
from .weights import CheckpointError

ASSETS = Path(__file__).resolve().parent.parent / "assets"

PRETRAINED: dict[str, Path] = {"tiny.demo": ASSETS / "demo_tiny.safetensors"}
"""``preset.tag`` -> the weight file in the package."""

DEMO_TAG = "tiny.demo"
DEMO_WEIGHTS = PRETRAINED[DEMO_TAG]


def load_pretrained(tag: str, device: str | torch.device | None = None) -> ISTVT:
    """The model with the bundled weights ``tag`` (a key of ``PRETRAINED``)."""
    if tag not in PRETRAINED:
        raise CheckpointError(f"no bundled weights named {tag!r}; the package has {', '.join(PRETRAINED)}")
    path = PRETRAINED[tag]
    if not path.is_file():
        raise CheckpointError(f"{path}: the bundled {tag} weights are missing from this install")
    return load_model(path, device=device)


def load_demo_model(device: str | torch.device | None = None) -> ISTVT:
    """The tiny preset with the demo weights shipped in the package (``tiny.demo``)."""
    return load_pretrained(DEMO_TAG, device=device)
