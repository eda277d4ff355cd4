"""The bundled demo weights (tiny preset), trained on pseudo-fakes; see README for what they are not."""

from __future__ import annotations

from pathlib import Path

import torch

from .models import ISTVT, CheckpointError, load_model

DEMO_WEIGHTS = Path(__file__).parent / "assets" / "demo_tiny.safetensors"


def load_demo_model(device: str | torch.device | None = None) -> ISTVT:
    """The tiny preset with the weights shipped in the package."""
    if not DEMO_WEIGHTS.is_file():
        raise CheckpointError(f"{DEMO_WEIGHTS}: the bundled demo weights are missing from this install")
    return load_model(DEMO_WEIGHTS, device=device)
