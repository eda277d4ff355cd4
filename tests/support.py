"""Helpers shared by every test module: the small test model, seeded clips, a booby-trapped pickle.

Imported as a plain module (``from support import tiny_model``), the way ``analysis_support`` and
``e2e_support`` are: pytest puts ``tests/`` on the path because ``conftest.py`` lives there.
``conftest.py`` exposes the same helpers as fixtures.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import torch

import istvt_explain as ie
from istvt_explain.models import ISTVTConfig

# The factory's defaults: 64 px crops (a 4 x 4 token grid), 3 frames, 2 blocks.  Read-only, so that a
# test building a training config from it (``dict(SMALL)``, ``{**SMALL, "depth": 1}``) cannot change it.
SMALL = MappingProxyType({"image_size": 64, "frames": 3, "depth": 2})
# Pass for a size to keep the tiny preset's own value: tiny_model(image_size=PRESET, frames=PRESET, depth=1).
PRESET = None


def tiny_model(*, image_size: int | None = 64, frames: int | None = 3, depth: int | None = 2,
               seed: int | None = None, **options) -> ie.ISTVT:
    """``ie.create_model("tiny", ...)`` at test sizes, in eval mode.

    ``image_size``, ``frames`` and ``depth`` default to ``SMALL``; ``PRESET`` (None) leaves the preset's
    own value (160 px, 6 frames, 4 blocks), so ``tiny_model(image_size=PRESET, frames=PRESET,
    depth=PRESET)`` is the shipped preset.  ``seed`` calls ``torch.manual_seed`` just before the model is built (the
    initial weights come from the global generator).  ``options`` go to ``create_model`` as they are:
    more config overrides (``num_classes``) and ``weights`` / ``backbone_weights``.
    """
    sizes = {"image_size": image_size, "frames": frames, "depth": depth}
    if seed is not None:
        torch.manual_seed(seed)
    return ie.create_model("tiny", **{k: v for k, v in sizes.items() if v is not None}, **options)


def random_clips(model_or_config: ie.ISTVT | ISTVTConfig, batch: int, seed: int = 0) -> torch.Tensor:
    """(batch, T, 3, S, S) float clips uniform in [-1, 1) (the model's normalised input) of the model's
    frame count and crop size, from a fresh ``torch.Generator`` seeded with ``seed``: the same seed
    gives the same clips whatever ran before."""
    config = getattr(model_or_config, "config", model_or_config)
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, config.frames, 3, config.image_size, config.image_size, generator=gen) * 2 - 1


class PickleExploit:
    """An object whose unpickling calls ``open(marker, "w")``: the marker file appears if and only if
    a loader ran code from the pickle.  Harmless when it does run (an empty file in a test folder)."""

    def __init__(self, marker: str | Path) -> None:
        self.marker = Path(marker)

    def __reduce__(self):
        return (open, (str(self.marker), "w"))
