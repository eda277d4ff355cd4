"""ISTVT models: the family file (``istvt``), its layers and LRP rules, presets, weights, and how a model
runs (``device``, ``precision``, ``inference``) and ships (``pretrained``).  Names resolve on first use."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["backbone", "checkpoint_file", "config", "device", "inference", "istvt", "layers", "limits",
                "precision", "presets", "pretrained", "weights"],
    submod_attrs={
        "backbone": ["XceptionEntryFlow", "filter_xception_state_dict", "load_xception_weights"],
        "checkpoint_file": ["check_weight_file"],
        "config": ["ISTVTConfig", "token_grid_size"],
        "istvt": ["ATTENTION_KINDS", "ISTVT", "create_model", "expected_tensors", "load_model"],
        "limits": ["CONFIG_LIMITS", "MAX_PARAMETERS", "TEMPERATURE_RANGE"],
        "presets": ["PRESETS", "available_presets", "preset_config"],
        "pretrained": ["DEMO_WEIGHTS", "PRETRAINED", "load_demo_model", "load_pretrained"],
        "weights": ["CheckpointError", "load_checkpoint", "read_config", "read_state_dict", "read_temperature",
                    "save_checkpoint"],
    },
)
