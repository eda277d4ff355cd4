"""Presets: data, not code.  The same architecture at three sizes."""

from __future__ import annotations

from .config import ISTVTConfig

PRESETS: dict[str, ISTVTConfig] = {
    # Zhao et al. 2023, as the authors' code builds it (docs/model.md).
    "paper": ISTVTConfig(name="paper"),
    # A CPU-friendly model that keeps the paper's 300 x 300 crops and 19 x 19 grid.
    "small": ISTVTConfig(name="small", embed_dim=256, depth=6, heads=4, dim_head=64),
    # Tests, laptops and the bundled demo weights: 160 x 160 crops, a 10 x 10 grid.
    "tiny": ISTVTConfig(name="tiny", image_size=160, embed_dim=96, depth=4, heads=4, dim_head=24),
}


def available_presets() -> list[str]:
    return sorted(PRESETS)


def preset_config(name: str, **overrides) -> ISTVTConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {', '.join(available_presets())}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]
