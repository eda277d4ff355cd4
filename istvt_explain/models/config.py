"""Model configuration: one frozen dataclass, presets are plain instances of it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from .limits import check_config_values

BACKBONE_CHANNELS = 728  # channels at the end of Xception's entry flow (block3)


@dataclass(frozen=True)
class ISTVTConfig:
    """Every number that shapes an ISTVT model, each within its bounds (``limits.CONFIG_LIMITS``).

    ``embed_dim`` is the token width inside the transformer.  The paper feeds
    the raw 728-d Xception features (``embed_dim == 728``, no projection);
    smaller presets insert one linear projection 728 -> ``embed_dim``.
    """

    frames: int = 6
    image_size: int = 300
    embed_dim: int = BACKBONE_CHANNELS
    depth: int = 12
    heads: int = 8
    dim_head: int = 64
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    num_classes: int = 1
    name: str = "paper"

    def __post_init__(self) -> None:
        check_config_values(dataclasses.asdict(self))  # types and bounds first: a checkpoint's config is foreign
        if self.frames < 2:
            raise ValueError(f"frames must be >= 2 (self-subtract needs a neighbour), got {self.frames}")
        if self.depth < 1 or self.heads < 1 or self.dim_head < 1 or self.embed_dim < 1:
            raise ValueError("depth, heads, dim_head and embed_dim must all be positive")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {self.num_classes}")
        # Raises a clear error when the crop is too small for the entry flow.
        token_grid_size(self.image_size)

    @property
    def grid(self) -> int:
        """Side of the square token grid (19 for 300 x 300 crops)."""
        return token_grid_size(self.image_size)

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    @property
    def tokens_per_frame(self) -> int:
        """Patch tokens plus the spatial class token."""
        return self.num_patches + 1

    @property
    def inner_dim(self) -> int:
        return self.heads * self.dim_head

    @property
    def mlp_dim(self) -> int:
        return int(round(self.embed_dim * self.mlp_ratio))

    @property
    def projects_features(self) -> bool:
        return self.embed_dim != BACKBONE_CHANNELS

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ISTVTConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown model config key(s): {', '.join(unknown)}")
        return cls(**values)

    def replace(self, **overrides: Any) -> ISTVTConfig:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown model config key(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **overrides)


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def token_grid_size(image_size: int) -> int:
    """Spatial size after Xception's entry flow, the way its layers shrink the crop.

    conv1 (3x3, s2, no pad), conv2 (3x3, no pad), then three blocks whose
    stride-2 max pool (3x3, pad 1) halves the size: 300 -> 149 -> 147 -> 74 -> 37 -> 19.
    """
    size = _conv_out(image_size, 3, 2, 0)
    size = _conv_out(size, 3, 1, 0)
    for _ in range(3):
        size = _conv_out(size, 3, 2, 1)
    if image_size < 32 or size < 1:
        raise ValueError(f"image_size {image_size} is too small for the Xception entry flow (need >= 32)")
    return size
