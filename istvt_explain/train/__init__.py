"""Training: YAML configs, the (DDP-ready) loop, resumable state, pseudo-fake data."""

from .config import ConfigError, TrainConfig, available_configs, config_from_dict, load_config
from .loop import FitResult, fit
from .pseudofake_data import FACE_PICTURES, MaterialClipSource, PictureClipSource, PseudoFakeDataset

__all__ = [
    "FACE_PICTURES", "ConfigError", "FitResult", "MaterialClipSource", "PictureClipSource", "PseudoFakeDataset", "TrainConfig",
    "available_configs", "config_from_dict", "fit", "load_config",
]
