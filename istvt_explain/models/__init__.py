"""ISTVT models: the family file, presets, weights."""

from .backbone import XceptionEntryFlow, filter_xception_state_dict, load_xception_weights
from .config import ISTVTConfig, token_grid_size
from .istvt import ATTENTION_KINDS, ISTVT, create_model, load_model
from .presets import PRESETS, available_presets, preset_config
from .weights import (
    CheckpointError,
    load_checkpoint,
    read_config,
    read_state_dict,
    read_temperature,
    save_checkpoint,
)

__all__ = [
    "ATTENTION_KINDS", "ISTVT", "ISTVTConfig", "PRESETS", "CheckpointError", "XceptionEntryFlow",
    "available_presets", "create_model", "filter_xception_state_dict", "load_checkpoint", "load_model",
    "load_xception_weights", "preset_config", "read_config", "read_state_dict", "read_temperature",
    "save_checkpoint", "token_grid_size",
]
