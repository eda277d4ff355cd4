"""The bounds a checkpoint or a config must keep before anything is built from it: data, in one place.

Why bounds at all: a checkpoint is a file from anywhere.  Without them ``mlp_ratio = 2000`` builds a
1.5 GB model before a shape check refuses it, a header of a million empty tensors is parsed for
minutes, and ``temperature = 1e-300`` turns into 0 in float32 and makes every clip "real".  Every
number here is generous (the largest preset, ``paper``, times a margin) yet finite.  Torch-free, so
that the command line checks a checkpoint before it imports torch.  docs/model.md explains them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# field -> (lowest, highest), both allowed.  The comment names the paper preset's value and the margin.
CONFIG_LIMITS: dict[str, tuple[float, float]] = {
    "frames": (2, 32),           # 6: about 5x
    "image_size": (32, 640),     # 300: about 2x (token grid 39 x 39; spatial attention grows with its square)
    "embed_dim": (1, 2048),      # 728: about 3x
    "depth": (1, 48),            # 12: 4x
    "heads": (1, 32),            # 8: 4x
    "dim_head": (1, 256),        # 64: 4x
    "mlp_ratio": (0.125, 16.0),  # 4: 4x
    "dropout": (0.0, 0.9),       # 0
    "num_classes": (1, 1000),    # 1
}
INTEGER_FIELDS = frozenset({"frames", "image_size", "embed_dim", "depth", "heads", "dim_head", "num_classes"})
MAX_NAME_LENGTH = 64
"""Longest preset name a config may carry (it is printed in reports and errors)."""

MAX_PARAMETERS = 400_000_000
"""Largest model (entry flow included) built from a config: about 4.5x the paper preset's 89.5 M, 1.6 GB in
float32.  The fields' bounds alone allow far more when several are at their top at once."""

TEMPERATURE_RANGE = (0.05, 20.0)
"""The calibration temperatures a checkpoint may hold, both allowed: the range ``fit_temperature`` searches
(docs/calibration.md).  Outside it a value is a broken or crafted file, not a calibration."""

MAX_HEADER_BYTES = 4 * 2**20
"""Largest safetensors header read at all (the paper preset's is about 30 kB, its metadata a few kB)."""

MAX_TENSORS = 4096
"""Most tensors a weight file may list (the paper preset has 285, timm's whole Xception about 240)."""

HEADER_BYTES_PER_TENSOR = 512
METADATA_BYTES = 2**20
"""A checkpoint of a known config needs at most ``tensors * HEADER_BYTES_PER_TENSOR + METADATA_BYTES``
header bytes (names, dtypes, shapes, offsets, then config, metrics and training settings)."""


def check_config_values(values: Mapping[str, Any]) -> None:
    """``ValueError`` naming the first config field of the wrong type or outside ``CONFIG_LIMITS``."""
    for field, (low, high) in CONFIG_LIMITS.items():
        if field not in values:
            continue
        value = values[field]
        integer = field in INTEGER_FIELDS
        if not _is_number(value, integer):
            kind = "an integer" if integer else "a finite number"
            raise ValueError(f"model config field {field} must be {kind}, got {value!r}"[:200])
        if not low <= value <= high:
            raise ValueError(f"model config field {field} = {value!r} is outside its bounds {low:g}..{high:g}")
    name = values.get("name", "")
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"model config name must be a string of at most {MAX_NAME_LENGTH} characters")


def check_temperature(value: Any) -> float:
    """``value`` as a float when it is a number inside ``TEMPERATURE_RANGE``, else ``ValueError``."""
    low, high = TEMPERATURE_RANGE
    if not _is_number(value, integer=False) or not low <= value <= high:
        raise ValueError(f"temperature must be a number in {low:g}..{high:g}, got {value!r}"[:200])
    return float(value)


def header_byte_limit(tensors: int) -> int:
    """The most header bytes a checkpoint of ``tensors`` tensors needs (see ``HEADER_BYTES_PER_TENSOR``)."""
    return min(MAX_HEADER_BYTES, tensors * HEADER_BYTES_PER_TENSOR + METADATA_BYTES)


def _is_number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    if integer:
        return isinstance(value, int)
    return isinstance(value, (int, float)) and math.isfinite(value)
